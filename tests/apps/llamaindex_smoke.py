"""LlamaIndex's documented offline flows, observed by the app's own handlers; prints one JSON
line of everything the app and its handlers saw. Run with and without HYPERTOOL_CALLBACKS=true,
the output must be identical (the host's behaviour, and what other observers see, unchanged)."""

import asyncio
import json
from typing import Any

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step


class EventNames(BaseEventHandler):
    names: list = []

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.names.append(type(event).__name__)


spans = SimpleSpanHandler()
events = EventNames()
get_dispatcher().add_span_handler(spans)
get_dispatcher().add_event_handler(events)
debug = LlamaDebugHandler(print_trace_on_end=False)
Settings.callback_manager = CallbackManager([debug])
Settings.llm = MockLLM(max_tokens=6)
Settings.embed_model = MockEmbedding(embed_dim=8)


class Middle(Event):
    text: str


class TwoSteps(Workflow):
    @step
    async def first(self, ctx: Context, ev: StartEvent) -> Middle:
        await ctx.store.set("seen", ev.topic)
        return Middle(text=str(await Settings.llm.acomplete(f"draft {ev.topic}")))

    @step
    async def second(self, ctx: Context, ev: Middle) -> StopEvent:
        return StopEvent(result=f"{await ctx.store.get('seen')}: {ev.text}")


async def main() -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is the capital of France."), Document(text="Rome is in Italy.")])
    # MockEmbedding gives every text the same vector: retrieve both (ties order at random).
    out["query"] = str(index.as_query_engine(similarity_top_k=2).query("capital of France?"))
    out["retrieved"] = sorted(n.node.get_content() for n in
                              index.as_retriever(similarity_top_k=2).retrieve("Italy"))
    out["chat"] = str((await Settings.llm.achat([ChatMessage(role="user", content="hi")])).message)
    stream = await Settings.llm.astream_chat([ChatMessage(role="user", content="stream me")])
    out["stream"] = [chunk.delta async for chunk in stream]
    out["workflow"] = str(await TwoSteps(timeout=10).run(topic="cats"))
    out["chat_engine"] = str(index.as_chat_engine(chat_mode="simple").chat("hello"))
    return out


result = asyncio.run(main())
result["span_names"] = sorted(s.id_.rsplit("-", 5)[0] for s in spans.completed_spans)
result["dropped_spans"] = len(spans.dropped_spans)
result["open_spans"] = len(spans.open_spans)
result["events"] = sorted(events.names)
result["legacy_events"] = {t.value: len(debug.get_event_pairs(t)) for t in CBEventType}
result["legacy_llm_outputs"] = [str(p[1].payload.get("response", p[1].payload.get("completion")))
                                for p in debug.get_llm_inputs_outputs()]
print(json.dumps(result, sort_keys=True, default=str))
