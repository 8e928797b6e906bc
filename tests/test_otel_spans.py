"""OtelSink: span structure, names, GenAI/hypertool attributes, errors, eviction, events."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind, RunStart
from hypertool_callbacks.sinks.otel import OtelSink, default_sinks
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import ToolCallingFake, reply
from tests.test_otel_support import Spans, attrs

MODEL = "fake-messages-list-chat-model"


def _chain(model: Any, clock: ManualClock | None = None) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{q}")])

    def slow_parse(text: str) -> str:
        if clock is not None:
            clock.advance(1.5)
        return text.upper()

    return prompt | model | StrOutputParser() | RunnableLambda(slow_parse).with_config(
        run_name="shout")


def test_chain_becomes_a_span_tree_with_exact_times(
    make_tracker: Callable[..., Tracker], clock: ManualClock
) -> None:
    spans = Spans()
    tracker = make_tracker(clock=clock, sinks=[OtelSink(spans.provider)])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    out = _chain(model, clock).invoke({"q": "hi"}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)],
        "tags": ["persona:reviewer", "workflow:triage"]})

    assert out == "HELLO"
    assert sorted(spans.names()) == sorted([
        "invoke_workflow triage", "chain ChatPromptTemplate", f"chat {MODEL}",
        "chain StrOutputParser", "chain shout"])
    root = spans.named("invoke_workflow triage")
    assert root.parent is None
    assert {s.name for s in spans.children(root)} == {
        "chain ChatPromptTemplate", f"chat {MODEL}", "chain StrOutputParser", "chain shout"}
    assert {s.context.trace_id for s in spans.finished} == {root.context.trace_id}
    # Timestamps come from the tracker's clock, not from the sink.
    start = 1_000 * 10**9
    assert root.start_time == start and root.end_time == start + 1_500_000_000
    shout = spans.named("chain shout")
    assert (shout.start_time, shout.end_time) == (start, start + 1_500_000_000)
    assert spans.named(f"chat {MODEL}").end_time == start
    assert attrs(root) == {
        "hypertool.run.kind": "chain", "hypertool.persona": "reviewer",
        "hypertool.persona.source": "explicit", "hypertool.stage": "unknown",
        "hypertool.workflow": "triage", "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "triage", "hypertool.run.status": "ok",
    }
    assert tracker.live_runs == 0


def test_llm_span_carries_model_provider_parameters_and_usage(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))]).bind(
        temperature=0.2, max_tokens=256, stop=["END"], seed=7)
    _chain(model).invoke({"q": "hi"}, config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                              "tags": ["persona:reviewer"]})
    llm = spans.named(f"chat {MODEL}")
    assert llm.kind is SpanKind.CLIENT
    assert attrs(llm) == {
        "hypertool.run.kind": "llm", "hypertool.persona": "reviewer",
        "hypertool.persona.source": "inherited", "hypertool.stage": "unknown",
        "hypertool.workflow": "RunnableSequence", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL, "gen_ai.provider.name": "fakemessageslistchatmodel",
        "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 256,
        "gen_ai.request.seed": 7, "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3,
        "hypertool.run.status": "ok",
        "hypertool.cost.unpriced": True,  # a fake model has no price
    }
    assert spans.named("invoke_workflow RunnableSequence").kind is SpanKind.INTERNAL


@tool
def web_search(query: str = "agents") -> str:
    """Search the web."""
    return f"3 results for {query}"


def _team() -> Any:
    from langchain.agents import create_agent
    from langgraph_supervisor import create_supervisor

    researcher = create_agent(ToolCallingFake(responses=[
        reply("", tokens=(60, 10), calls=[("web_search", {"query": "otel"})]),
        reply("Found it.", tokens=(140, 35))]), [web_search], name="researcher")
    supervisor = ToolCallingFake(responses=[
        reply("", tokens=(50, 8), calls=[("transfer_to_researcher", {})]),
        reply("Done.", tokens=(120, 12))])
    return create_supervisor([researcher], model=supervisor).compile(name="team")


def test_agents_tools_and_persona_events_in_a_supervisor_team(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    _team().invoke({"messages": [("user", "go")]},
                   config={"callbacks": [HypertoolCallbackHandler(tracker)]})

    root = spans.named("invoke_workflow team")
    supervisors = spans.all_named("invoke_agent supervisor")
    assert len(supervisors) == 2
    researcher = spans.named("invoke_agent researcher")
    assert attrs(researcher)["gen_ai.agent.name"] == "researcher"
    assert attrs(researcher)["gen_ai.operation.name"] == "invoke_agent"
    search = spans.named("execute_tool web_search")
    assert attrs(search)["gen_ai.tool.name"] == "web_search"
    assert attrs(search)["hypertool.persona"] == "researcher"
    assert attrs(search)["gen_ai.agent.name"] == "researcher"
    assert search in spans.descendants(researcher)
    # Every span of the execution is inside the workflow span.
    assert len(spans.descendants(root)) == len(spans.finished) - 1
    # Switches and handoffs are events on the workflow span, in order.
    events = [(e.name, e.attributes["hypertool.persona.from"], e.attributes["hypertool.persona.to"])
              for e in root.events if e.attributes is not None]
    assert events == [
        ("hypertool.handoff", "supervisor", "researcher"),
        ("hypertool.persona.switch", "supervisor", "researcher"),
        ("hypertool.persona.switch", "researcher", "supervisor"),
    ]
    assert all(not s.events for s in spans.finished if s is not root)


def test_failing_tool_marks_its_span_and_ancestors_as_errors(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])

    @tool
    def flaky(x: int = 1) -> str:
        """Always fails."""
        raise ValueError("boom")

    chain = RunnableLambda(lambda q: flaky.invoke({"x": 1})).with_config(run_name="step")
    with pytest.raises(ValueError, match="boom"):
        chain.invoke("q", config={"callbacks": [HypertoolCallbackHandler(tracker)]})

    span = spans.named("execute_tool flaky")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: boom"
    assert attrs(span)["error.type"] == "ValueError"
    assert attrs(span)["hypertool.run.status"] == "error"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "boom"
    root = spans.named("invoke_workflow step")
    assert root.status.status_code is StatusCode.ERROR
    assert spans.parent(span) is root
    assert tracker.live_runs == 0


def test_successful_spans_leave_status_unset(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    RunnableLambda(lambda q: q).invoke("q", config={
        "callbacks": [HypertoolCallbackHandler(tracker)]})
    [span] = spans.finished
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in attrs(span)


def test_evicted_run_ends_its_span_as_an_error(
    make_tracker: Callable[..., Tracker], clock: ManualClock
) -> None:
    spans = Spans()
    tracker = make_tracker(clock=clock, sinks=[OtelSink(spans.provider)], run_ttl_seconds=5)
    tracker.start(RunStart("stuck-1", None, RunKind.CHAIN, "never_ends"))
    clock.advance(6)
    assert tracker.evict_now() == 1
    [span] = spans.finished
    assert span.name == "invoke_workflow never_ends"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "run never ended: evicted from the run tree"
    assert attrs(span)["hypertool.run.status"] == "evicted"
    assert attrs(span)["error.type"] == "evicted"
    assert span.end_time == 1_006 * 10**9


class _TraceIds(Sink):
    """Records what a later sink sees in ``run.trace_id``."""

    def __init__(self) -> None:
        self.at_start: dict[str, str | None] = {}

    def on_run_start(self, run: Run) -> None:
        self.at_start[run.name] = run.trace_id


def test_trace_id_is_set_for_later_sinks_and_becomes_an_exemplar(
    registry: CollectorRegistry,
) -> None:
    spans = Spans()
    seen = _TraceIds()
    tracker = Tracker(Config(), [OtelSink(spans.provider), seen, PrometheusSink(registry)])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    _chain(model).invoke({"q": "hi"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})

    trace_id = format(spans.named(f"chat {MODEL}").context.trace_id, "032x")
    assert set(seen.at_start.values()) == {trace_id}
    assert len(trace_id) == 32
    # The same id becomes the OpenMetrics exemplar of the LLM request counter.
    text = generate_latest(registry).decode()
    [line] = [line for line in text.splitlines()
              if line.startswith("hypertool_llm_requests_total{")]
    assert re.fullmatch(r'hypertool_llm_requests_total\{[^}]*\} 1\.0 '
                        rf'# \{{trace_id="{trace_id}"\}} 1\.0 [0-9.]+', line)


def test_without_recording_provider_no_trace_id_is_invented(
    make_tracker: Callable[..., Tracker],
) -> None:
    from opentelemetry.trace import NoOpTracerProvider

    seen = _TraceIds()
    tracker = make_tracker(sinks=[OtelSink(NoOpTracerProvider()), seen])
    assert RunnableLambda(lambda q: q + "!").invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)]}) == "q!"
    assert seen.at_start == {"RunnableLambda": None}
    assert tracker.live_runs == 0


def test_default_sinks_respects_enabled_false() -> None:
    assert default_sinks(Config.model_validate({"otel": {"enabled": False}})) == []
    spans = Spans()
    [sink] = default_sinks(Config(), tracer_provider=spans.provider, environ={})
    assert isinstance(sink, OtelSink)
    assert sink.tracer_provider is spans.provider
    assert sink.capture_content is False


def test_gate_and_stage_attributes(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)],
                           gates={"review": {"names": ["review"]}})
    review = RunnableLambda(lambda text: "FAIL: too short").with_config(run_name="review")
    chain = (RunnableLambda(lambda q: q) | review).with_config(tags=["stage:qa"])
    assert chain.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)]}) == (
        "FAIL: too short")
    gate = attrs(spans.named("chain review"))
    assert (gate["hypertool.gate.name"], gate["hypertool.gate.result"]) == ("review", "fail")
    assert gate["hypertool.stage"] == "qa"
    root = attrs(spans.named("invoke_workflow RunnableSequence"))
    assert "hypertool.gate.name" not in root and "hypertool.gate.result" not in root


def test_streaming_llm_span_has_time_to_first_chunk(
    make_tracker: Callable[..., Tracker], clock: ManualClock
) -> None:
    from tests.fakes import StreamingFake

    class SlowStart(StreamingFake):
        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            clock.advance(0.25)  # time to first token
            for n, chunk in enumerate(super()._stream(*args, **kwargs)):
                if n == 1:
                    clock.advance(1.0)  # the rest of the stream
                yield chunk

    spans = Spans()
    tracker = make_tracker(clock=clock, sinks=[OtelSink(spans.provider)])
    model = SlowStart(responses=[reply("a streamed answer", tokens=(7, 4))])
    chunks = list(model.stream("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)]}))
    assert "".join(str(c.content) for c in chunks) == "a streamed answer"
    llm = spans.named(f"chat {MODEL}")
    assert attrs(llm)["gen_ai.response.time_to_first_chunk"] == 0.25
    assert attrs(llm)["gen_ai.usage.output_tokens"] == 4
    assert llm.end_time is not None and llm.start_time is not None
    assert llm.end_time - llm.start_time == 1_250_000_000


def test_text_completion_and_retriever_spans(make_tracker: Callable[..., Tracker]) -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.retrievers import BaseRetriever

    class Docs(BaseRetriever):
        def _get_relevant_documents(self, query: str, *,
                                    run_manager: CallbackManagerForRetrieverRun
                                    ) -> list[Document]:
            return [Document(page_content=f"about {query}", id="doc-1")]

    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider, capture_content=True)])
    handler = HypertoolCallbackHandler(tracker)
    FakeListLLM(responses=["done"]).invoke("complete me", config={"callbacks": [handler]})
    Docs().with_config(run_name="docs").invoke("otel", config={"callbacks": [handler]})
    [llm] = [s for s in spans.finished if s.name.startswith("text_completion")]
    assert attrs(llm)["gen_ai.operation.name"] == "text_completion"
    assert attrs(llm)["gen_ai.input.messages"] == (
        '[{"role": "user", "parts": [{"type": "text", "content": "complete me"}]}]')
    assert attrs(llm)["gen_ai.output.messages"] == (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "done"}]}]')
    retrieval = attrs(spans.named("retrieval docs"))
    assert retrieval["gen_ai.operation.name"] == "retrieval"
    assert retrieval["gen_ai.retrieval.query.text"] == "otel"
    assert retrieval["gen_ai.retrieval.documents"] == '[{"content": "about otel", "id": "doc-1"}]'


def test_unencodable_content_is_dropped_not_raised(make_tracker: Callable[..., Tracker]) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider, capture_content=True)])
    out = RunnableLambda(lambda x: "fine").invoke(
        Hostile(), config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert out == "fine"
    span = attrs(spans.named("invoke_workflow RunnableLambda"))
    assert span["hypertool.content.dropped"] == "encode_error"
    assert "hypertool.input" not in span
    assert span["hypertool.output"] == "fine"


def test_process_wide_tracker_puts_the_otel_sink_first(registry: CollectorRegistry) -> None:
    from hypertool_callbacks import runtime

    tracker = runtime.build_tracker(Config(), registry=registry)
    assert isinstance(tracker.sinks[0], OtelSink)
    assert isinstance(tracker.sinks[-1], PrometheusSink)
    disabled = runtime.build_tracker(Config.model_validate({"otel": {"enabled": False}}),
                                     registry=registry)
    assert not any(isinstance(s, OtelSink) for s in disabled.sinks)


def test_langgraph_thread_is_the_conversation_id(make_tracker: Callable[..., Tracker]) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("draft", lambda state: {"messages": [("ai", "drafted")]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", END)
    graph = builder.compile(checkpointer=InMemorySaver(), name="drafting")
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    graph.invoke({"messages": [("user", "hi")]}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)],
        "configurable": {"thread_id": "t-42"}})
    root = spans.named("invoke_workflow drafting")
    assert attrs(root)["gen_ai.conversation.id"] == "t-42"
    draft = spans.named("chain draft")
    assert attrs(draft)["hypertool.stage"] == "draft"
    assert "gen_ai.conversation.id" not in attrs(draft)
