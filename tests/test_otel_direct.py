"""Finished spans built directly (sinks/otel_direct) against today's live SDK spans: the same
workloads, ids and clock through both paths must reach the exporter as the same spans, their
``to_json()`` and OTLP encoding byte for byte, plus what neither shows (flags, containers)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.otel_direct import DirectSpan
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import StreamingFake, reply
from tests.test_otel_spans import _team

_RUN_ID = re.compile(r"lc_run--[0-9a-f-]{36}")  # LangChain's random ids in message content
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
Workload = Callable[[HypertoolCallbackHandler, Tracker, ManualClock, TracerProvider], None]
MIDWAY: list[OnStarts] = []  # processors processor_added_midway added, live run first
# One resource for both paths (it holds a random service.instance.id).
RESOURCE = Resource.create({"service.name": "direct-test", "deployment.environment": "ci"})


class CountingIds(IdGenerator):
    """Ids in order: both paths must ask for them in the same order to get the same ones."""

    def __init__(self, random: bool = True) -> None:
        self.n, self.random = 0, random

    def generate_span_id(self) -> int:
        self.n += 1
        return self.n

    def generate_trace_id(self) -> int:
        self.n += 1
        return (0xABC << 64) + self.n

    def is_trace_id_random(self) -> bool:
        return self.random


class OnStarts(SpanProcessor):
    """A processor of the app's own, with an ``on_start``: only live spans can serve it."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)
        span.set_attribute("app.tag", "set-on-start")

    def _on_ending(self, span: Any) -> None:  # the SDK hands it the live span, still open
        self.started.append(f"ending {span.name} {type(span).__name__}")


DEFAULT_SAMPLER = ParentBased(ALWAYS_ON)  # what the SDK uses when nothing is configured


@dataclass
class Setup:
    sampler: Sampler = DEFAULT_SAMPLER
    limits: SpanLimits | None = None
    batch: bool = False
    concurrent: bool = False
    custom: bool = False  # an OnStarts processor too (before the exporting one)
    random_ids: bool = True
    direct_expected: bool = True


@dataclass
class Outcome:
    spans: list[ReadableSpan]
    trace_ids: list[tuple[str, str | None]]
    leaked: list[str]
    started: list[str] = field(default_factory=list)
    direct: list[bool] = field(default_factory=list)  # per run: did it get a DirectSpan
    recording: list[bool] = field(default_factory=list)  # per run: is its span recording


class _Runs(Sink):
    """What later sinks see: each run's ``trace_id`` at start, and what stays in ``extra``."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.trace_ids: list[tuple[str, str | None]] = []
        self.direct: list[bool] = []
        self.recording: list[bool] = []

    def on_run_start(self, run: Run) -> None:
        self.runs.append(run)
        self.trace_ids.append((run.name, run.trace_id))
        span = run.extra.get("otel_span")
        self.direct.append(type(span) is DirectSpan)
        self.recording.append(span is not None and span.is_recording())


def _run(workload: Workload, setup: Setup, *, direct: bool, capture: bool = False,
         config: dict[str, Any] | None = None) -> Outcome:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=setup.sampler, span_limits=setup.limits, shutdown_on_exit=False,
        resource=RESOURCE,
        active_span_processor=ConcurrentMultiSpanProcessor(2) if setup.concurrent else None,
        id_generator=CountingIds(setup.random_ids))
    custom = OnStarts()
    if setup.custom:
        provider.add_span_processor(custom)
    provider.add_span_processor(BatchSpanProcessor(exporter) if setup.batch
                                else SimpleSpanProcessor(exporter))
    sink = OtelSink(provider, capture_content=capture, content_max_chars=60,
                    mask=lambda text: text.replace("hi", "**"))
    if not direct:
        sink._direct = None
    runs, clock = _Runs(), ManualClock()
    tracker = Tracker(Config.model_validate(config or {}),
                      [sink, runs, PrometheusSink(CollectorRegistry())], clock)
    workload(HypertoolCallbackHandler(tracker), tracker, clock, provider)
    tracker.shutdown(5.0)  # ends what is still open (as evicted), then flushes
    provider.force_flush()
    return Outcome(list(exporter.get_finished_spans()), runs.trace_ids,
                   [run.name for run in runs.runs if "otel_span" in run.extra], custom.started,
                   runs.direct, runs.recording)


def _describe(span: ReadableSpan) -> tuple[Any, ...]:
    """Everything an exporter can read, and the containers a live span hands over."""
    scope = span.instrumentation_scope
    assert scope is not None
    attributes, events, links = span._attributes, span._events, span._links
    return (_RUN_ID.sub("x", span.to_json(indent=None)), span.context, span.parent, span.kind,
            span.status.status_code, span.status.description,
            (scope.name, scope.version, scope.schema_url, scope.attributes),
            span.resource.schema_url, span.dropped_attributes, span.dropped_events,
            span.dropped_links, [type(value) for value in span.attributes.values()],
            type(attributes), getattr(attributes, "maxlen", None),
            getattr(attributes, "max_value_len", None), type(events), type(links),
            [(e.dropped_attributes, type(e.attributes), getattr(e.attributes, "maxlen", None))
             for e in span.events])


def _otlp(spans: list[ReadableSpan]) -> bytes:
    return _RUN_ID.sub("x", encode_spans(spans).SerializeToString(deterministic=True).decode(
        "latin-1")).encode("latin-1")


def _assert_same(workload: Workload, setup: Setup, expect: list[bool] | None = None,
                 **options: Any) -> Outcome:
    live = _run(workload, setup, direct=False, **options)
    direct = _run(workload, setup, direct=True, **options)
    assert not any(live.direct)
    # Every recorded span is direct where the probe allows it (unless told otherwise).
    assert direct.direct == (expect if expect is not None else
                             live.recording if setup.direct_expected else
                             [False] * len(live.recording))
    assert [_describe(s) for s in direct.spans] == [_describe(s) for s in live.spans]
    assert _otlp(direct.spans) == _otlp(live.spans)
    assert direct.trace_ids == live.trace_ids
    assert direct.started == live.started
    assert direct.leaked == live.leaked == []
    return live


# -- workloads ------------------------------------------------------------------------------

@tool
def explode(x: str) -> str:
    """Always fails."""
    raise RuntimeError("boom")


def chain(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
          provider: TracerProvider) -> None:
    model = FakeMessagesListChatModel(responses=[reply("hello wörld hi", tokens=(12, 3))])
    runnable = (ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
                | model.bind(stop=["END"], temperature=0.2) | StrOutputParser())
    runnable.invoke({"q": "hi ünïcode"}, config={
        "callbacks": [handler], "tags": ["persona:reviewer", "workflow:triage"]})
    clock.advance(1.5)


def team(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
         provider: TracerProvider) -> None:
    _team().invoke({"messages": [("user", "go")]}, config={"callbacks": [handler]})


def tool_error(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
               provider: TracerProvider) -> None:
    with pytest.raises(RuntimeError):
        RunnableLambda(lambda x: explode.invoke(x), name="failing").invoke(
            "x", config={"callbacks": [handler]})


def streaming(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
              provider: TracerProvider) -> None:
    class SlowStart(StreamingFake):
        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            clock.advance(0.25)
            yield from super()._stream(*args, **kwargs)

    list(SlowStart(responses=[reply("a streamed answer")]).stream(
        "hi", config={"callbacks": [handler]}))


def evicted(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
            provider: TracerProvider) -> None:
    tracker.start(RunStart("root", None, RunKind.CHAIN, "gate-flow", ("workflow:ship",)))
    tracker.start(RunStart("gate", "root", RunKind.CHAIN, "check", ("gate:tests_pass",)))
    clock.advance(2)
    tracker.end(RunEnd("gate", outputs={"passed": False}))
    tracker.start(RunStart("stuck", "root", RunKind.TOOL, "deploy"))
    clock.advance(61)
    tracker.evict_now()
    tracker.start(RunStart("open", None, RunKind.CHAIN, "left-open"))  # ended by shutdown


def under_app_span(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
                   provider: TracerProvider) -> None:
    app = provider.get_tracer("app", "1.0", schema_url="https://opentelemetry.io/schemas/1.21")
    request = app.start_span("request", attributes={"http.route": "/ask"},
                             start_time=clock.wall_ns())
    with trace.use_span(request, end_on_exit=False):
        chain(handler, tracker, clock, provider)
    request.end(end_time=clock.wall_ns())


def _remote(flags: str) -> Workload:
    def workload(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock,
                 provider: TracerProvider) -> None:
        carrier = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-{flags}",
                   "tracestate": "vendor=opaque,other=1"}
        token = otel_context.attach(TraceContextTextMapPropagator().extract(carrier))
        try:
            chain(handler, tracker, clock, provider)
        finally:
            otel_context.detach(token)
    return workload


def processor_added_midway(handler: HypertoolCallbackHandler, tracker: Tracker,
                           clock: ManualClock, provider: TracerProvider) -> None:
    tracker.start(RunStart("root", None, RunKind.CHAIN, "flow", ("persona:lead",)))
    added = OnStarts()
    MIDWAY.append(added)
    provider.add_span_processor(added)  # the open span ends through the SDK's own span
    tracker.start(RunStart("step", "root", RunKind.TOOL, "lookup"))
    clock.advance(1)
    tracker.end(RunEnd("step", outputs="ok"))
    tracker.end(RunEnd("root", outputs="done"))


# -- the same spans ---------------------------------------------------------------------------

@pytest.mark.parametrize("workload", [chain, team, tool_error, streaming, under_app_span,
                                      _remote("01"), _remote("03")])
def test_direct_spans_are_the_live_spans(workload: Workload) -> None:
    live = _assert_same(workload, Setup())
    assert live.spans and all(s.resource.attributes["deployment.environment"] == "ci"
                              for s in live.spans)


def test_a_processor_added_while_a_span_is_open() -> None:
    # The open root ends through the SDK's own span; its child (started after) is live.
    MIDWAY.clear()
    live = _assert_same(processor_added_midway, Setup(), expect=[True, False])
    assert [s.name for s in live.spans] == ["execute_tool lookup", "invoke_workflow flow"]
    seen_live, seen_direct = (each.started for each in MIDWAY)
    assert seen_direct == seen_live == ["execute_tool lookup", "ending execute_tool lookup _Span",
                                        "ending invoke_workflow flow _Span"]


def test_events_exceptions_and_evictions_are_kept() -> None:
    spans = _assert_same(team, Setup()).spans
    assert sum(len(s.events) for s in spans) >= 3  # handoff and switches on the root
    failed = [s for s in _assert_same(tool_error, Setup()).spans if s.events]
    assert [s.name for s in failed] == ["execute_tool explode", "invoke_workflow failing"]
    assert failed[0].events[0].attributes["exception.escaped"] == "True"  # type: ignore[index]
    evictions = _assert_same(evicted, Setup(), config={"run_ttl_seconds": 60}).spans
    assert {s.name for s in evictions} >= {"execute_tool deploy", "invoke_workflow left-open"}


def test_content_capture_with_a_mask() -> None:
    spans = _assert_same(chain, Setup(), capture=True).spans
    assert any("gen_ai.input.messages" in (s.attributes or {}) for s in spans)


@pytest.mark.parametrize("limits", [
    SpanLimits(max_span_attributes=5),  # evictions
    SpanLimits(max_attributes=3),  # span, event (and link) attributes
    SpanLimits(max_attribute_length=6),  # cut values, span and event attributes
    SpanLimits(max_events=1, max_event_attributes=2),
    SpanLimits(max_span_attributes=0, max_events=0),
])
def test_span_limits_drop_the_same(limits: SpanLimits) -> None:
    for workload in (team, tool_error):
        _assert_same(workload, Setup(limits=limits))


@pytest.mark.parametrize("setup", [
    Setup(batch=True), Setup(concurrent=True), Setup(random_ids=False),
    Setup(sampler=ALWAYS_ON), Setup(sampler=ParentBased(ALWAYS_OFF)),
    Setup(sampler=StaticSampler(Decision.RECORD_AND_SAMPLE)),
    Setup(sampler=TraceIdRatioBased(0.5), direct_expected=False),
    Setup(sampler=ALWAYS_OFF, direct_expected=False),
    Setup(custom=True, direct_expected=False),
])
def test_other_setups(setup: Setup) -> None:
    for workload in (chain, _remote("01"), _remote("00")):
        _assert_same(workload, setup)


def test_an_unsampled_parent_records_nothing_but_names_the_trace() -> None:
    live = _assert_same(_remote("00"), Setup())
    assert live.spans == [] and {tid for _, tid in live.trace_ids} == {TRACE}
