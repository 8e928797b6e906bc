"""LlamaIndex runs as OpenTelemetry spans (nested under the app's span, async and concurrent
queries kept apart) and as Langfuse observations (real SDK, local receiver), same trace ids."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.otel import OtelSink
from tests.llama_support import ScriptedAgentLLM, UsageLLM
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import Recorder, observations, single
from tests.test_otel_support import Spans, attrs


def _engine() -> Any:
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is in France.")], embed_model=MockEmbedding(embed_dim=4))
    return index.as_query_engine(llm=UsageLLM(tokens=(30, 5)))


def test_query_spans_nest_under_the_app_span(
        attach_tracker: Callable[[Tracker], Tracker]) -> None:
    spans = Spans()
    engine = _engine()
    attach_tracker(Tracker(Config(), [OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("request"):
        engine.query("Where is Paris?")

    app = spans.named("request")
    root = spans.named("invoke_workflow RetrieverQueryEngine")
    assert spans.parent(root) is not None and spans.parent(root).name == "request"  # type: ignore[union-attr]
    assert root.context.trace_id == app.context.trace_id
    retrieve = spans.named("chain retrieve")
    assert spans.parent(retrieve).name == root.name  # type: ignore[union-attr]
    retriever = spans.named("retrieval VectorIndexRetriever")
    assert spans.parent(retriever).name == "chain retrieve"  # type: ignore[union-attr]
    assert attrs(retriever)["hypertool.stage"] == "retrieve"
    (llm,) = [s for s in spans.finished if s.kind is SpanKind.CLIENT
              and attrs(s).get("gen_ai.operation.name") != "embeddings"]
    assert llm.name == "text_completion usage-llm-1"
    a = attrs(llm)
    assert a["gen_ai.usage.input_tokens"] == 30 and a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.model"] == "usage-llm-1-2025"
    assert a["hypertool.stage"] == "synthesize"
    assert llm in spans.descendants(root)


def test_concurrent_async_queries_are_separate_traces(
        attach_tracker: Callable[[Tracker], Tracker]) -> None:
    spans = Spans()
    engine = _engine()
    attach_tracker(Tracker(Config(), [OtelSink(spans.provider)]))
    tracer = spans.provider.get_tracer("app")

    async def one(i: int) -> None:
        with tracer.start_as_current_span(f"request-{i}"):
            await engine.aquery(f"q{i}")

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(3)))

    asyncio.run(main())
    roots = spans.all_named("invoke_workflow RetrieverQueryEngine")
    assert len(roots) == 3
    for root in roots:
        parent = spans.parent(root)
        assert parent is not None and parent.name.startswith("request-")
        kinds = sorted(s.name.split(" ")[0] for s in spans.descendants(root))
        assert kinds == sorted(["chain", "retrieval", "embeddings", "chain", "text_completion"])
        assert all(s.context.trace_id == root.context.trace_id for s in spans.descendants(root))


def test_failing_tool_span_has_error_status(
        attach_tracker: Callable[[Tracker], Tracker]) -> None:
    spans = Spans()
    attach_tracker(Tracker(Config(), [OtelSink(spans.provider)]))

    def explode() -> str:
        """Fails."""
        raise RuntimeError("nope")

    agent = FunctionAgent(name="solo", description="d", tools=[explode],
                          llm=ScriptedAgentLLM(script=[("explode", {}), "done"]))
    workflow = AgentWorkflow(agents=[agent])

    async def run() -> Any:
        return await workflow.run(user_msg="x")

    asyncio.run(run())
    tool = spans.named("execute_tool explode")
    assert tool.status.status_code is StatusCode.ERROR
    assert attrs(tool)["gen_ai.tool.name"] == "explode"
    assert attrs(tool)["hypertool.persona"] == "solo"


pytestmark = pytest.mark.usefixtures("reset_langfuse")


def test_langfuse_receives_one_trace_per_query(
        public_key: str, receiver: OTLPReceiver, registry: CollectorRegistry,
        attach_tracker: Callable[[Tracker], Tracker]) -> None:
    spans = Spans()
    sink = lf.LangfuseSink(registry=registry)
    recorder = Recorder()
    engine = _engine()
    attach_tracker(Tracker(Config(), [OtelSink(spans.provider), sink, recorder]))
    try:
        engine.query("Where is Paris?")
        assert sink.flush(10.0)
    finally:
        sink.shutdown(5.0)
    found = observations(receiver)
    root = single(found, name="RetrieverQueryEngine")
    phase = single(found, name="retrieve")
    assert phase.parent_id == root.span_id
    assert single(found, type="retriever").parent_id == phase.span_id
    generation = single(found, type="generation")
    assert generation.attrs["langfuse.observation.model.name"] == "usage-llm-1-2025"
    assert generation.json("usage_details") == {"input": 30, "output": 5, "total": 35}
    assert generation.meta("stage") == "synthesize"
    assert single(found, type="retriever").meta("stage") == "retrieve"
    assert single(found, type="embedding").trace_id == root.trace_id
    assert {o.trace_id for o in found} == {root.trace_id}
    otel_root = spans.named("invoke_workflow RetrieverQueryEngine")
    assert format(otel_root.context.trace_id, "032x") == root.trace_id  # one id everywhere
