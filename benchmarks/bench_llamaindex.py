"""LlamaIndex overhead: ``python benchmarks/bench_llamaindex.py [--rounds N]``.

Two offline workloads on real llama-index-core: a query (``MockEmbedding`` index, a
``MockLLM``, retrieve + synthesize + one LLM call) and an agent run (a ``FunctionAgent`` on a
scripted function-calling LLM: one tool call, then an answer). Each is timed with nothing on
the root dispatcher, with a no-op span + event handler (LlamaIndex's own floor for any
observer), with hypertool and the Prometheus sink, and with OTel spans recorded as well.
Rounds of each configuration are interleaved so machine noise hits them alike; the median per
operation is reported. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import time
from collections.abc import Callable
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import PrivateAttr

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink


class NoopSpans(BaseSpanHandler[SimpleSpan]):
    def span_enter(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                   parent_id: str | None = None, tags: Any = None, **kwargs: Any) -> None:
        return None

    def span_exit(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                  result: Any = None, **kwargs: Any) -> None:
        return None

    def span_drop(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                  err: BaseException | None = None, **kwargs: Any) -> None:
        return None

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


class NoopEvents(BaseEventHandler):
    def handle(self, event: Any, **kwargs: Any) -> None:
        return None


class Scripted(MockFunctionCallingLLM):
    """Calls ``add`` once, then answers; reports usage like a provider."""

    _calls: int = PrivateAttr(default=0)

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self._calls += 1
        if self._calls % 2:
            message = ChatMessage(role="assistant", blocks=[ToolCallBlock(
                tool_call_id="c", tool_name="add", tool_kwargs={"a": 1, "b": 2})])
        else:
            message = ChatMessage(role="assistant", content="3")
        return ChatResponse(message=message, raw={"usage": {"prompt_tokens": 10,
                                                            "completion_tokens": 2}})


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def workloads() -> dict[str, Callable[[], Any]]:
    index = VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                            embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8))
    agent = FunctionAgent(name="calc", description="adds", llm=Scripted(), tools=[
        FunctionTool.from_defaults(add)], streaming=False)
    loop = asyncio.new_event_loop()

    async def agent_run() -> Any:
        return await agent.run(user_msg="1+2?")

    return {"query": lambda: engine.query("Where is Paris?"),
            "agent": lambda: loop.run_until_complete(agent_run())}


def configure(name: str) -> Callable[[], None]:
    """Put configuration ``name`` on the root dispatcher; returns its undo."""
    root = get_dispatcher()
    spans, events = list(root.span_handlers), list(root.event_handlers)

    def undo() -> None:
        llamaindex.detach()
        root.span_handlers, root.event_handlers = spans, events

    if name == "noop":
        root.span_handlers, root.event_handlers = [*spans, NoopSpans()], [*events, NoopEvents()]
    elif name == "hypertool":
        llamaindex.attach(Tracker(Config(), [PrometheusSink(CollectorRegistry())]))
    elif name == "hypertool+otel":
        llamaindex.attach(Tracker(Config(), [OtelSink(TracerProvider()),
                                             PrometheusSink(CollectorRegistry())]))
    return undo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=40, help="operations per round")
    args = parser.parse_args()
    configs = ["none", "noop", "hypertool", "hypertool+otel"]
    for name, op in workloads().items():
        for _ in range(20):
            op()  # warm-up
        times: dict[str, list[float]] = {c: [] for c in configs}
        for _ in range(args.rounds):
            for config in configs:
                undo = configure(config)
                try:
                    start = time.perf_counter()
                    for _ in range(args.ops):
                        op()
                    times[config].append((time.perf_counter() - start) / args.ops * 1e6)
                finally:
                    undo()
        median = {c: statistics.median(times[c]) for c in configs}
        print(f"{name}: " + ", ".join(f"{c} {median[c]:.0f} us" for c in configs)
              + f" | hypertool above the no-op floor: {median['hypertool'] - median['noop']:.0f}"
              f" us, with OTel: {median['hypertool+otel'] - median['noop']:.0f} us")


if __name__ == "__main__":
    main()
