"""The direct path's pieces against the SDK's: one span's every operation, the probe's
refusals, a processor added later, the provider built from ``OTEL_*`` variables (see
``test_otel_direct`` for whole workloads through both paths)."""

from __future__ import annotations

import re

import pytest
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, StaticSampler

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink, default_sinks
from hypertool_callbacks.sinks.otel_direct import DirectSpan
from hypertool_callbacks.sinks.otel_env import AppOrEnvProvider
from hypertool_callbacks.sinks.otel_probe import probe
from tests.test_otel_direct import CountingIds, OnStarts, _describe, _Runs, chain


class _Shown:
    def __str__(self) -> str:
        return "shown"


def _operations(span: trace.Span, hostile: bool) -> None:
    span.set_attributes({"a": 1, "list": ["x", "y"], "b": "two"})
    span.set_attribute("a", 1.5)  # moves to the end
    span.set_attributes({"none": None, "f": 2.5, "t": ("u",)})
    if hostile:  # values only BoundedAttributes' own cleaning gets right
        span.set_attributes({"obj": _Shown(), "nested": [["deep"]]})
    span.set_attributes({"b": True})
    span.add_event("e1", {"k": "v", "n": [1, 2]}, timestamp=5)
    span.add_event("e2", timestamp=6)
    span.set_status(trace.Status(trace.StatusCode.UNSET))  # ignored
    span.set_status(trace.StatusCode.ERROR, "first")
    span.set_status(trace.Status(trace.StatusCode.OK))
    span.set_status(trace.Status(trace.StatusCode.ERROR, "after ok: ignored"))
    span.update_name("renamed")
    span.record_exception(ValueError("bad"), {"extra": "x"}, timestamp=7)
    span.end(end_time=9)


@pytest.mark.parametrize(("limits", "hostile"), [
    (None, False), (None, True), (SpanLimits(max_span_attributes=4), False)])
def test_every_span_operation_matches_the_sdk(limits: SpanLimits | None, hostile: bool) -> None:
    described = []
    for direct in (False, True):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(id_generator=CountingIds(), span_limits=limits,
                                  shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("t")
        parent = trace.INVALID_SPAN_CONTEXT
        if direct:
            opened = probe(tracer).start(  # type: ignore[union-attr]
                "span", parent, trace.SpanKind.CLIENT, {"s": "start", "l": ["a"]}, 3)
            assert isinstance(opened, DirectSpan)
            span: trace.Span = opened
        else:
            span = tracer.start_span("span", kind=trace.SpanKind.CLIENT, start_time=3,
                                     attributes={"s": "start", "l": ["a"]})
        _operations(span, hostile)
        described.append([_describe(s) for s in exporter.get_finished_spans()])
    assert described[0] == described[1]


def test_probe_refuses_what_it_cannot_reproduce(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert probe(provider.get_tracer("t")) is not None
    assert probe(trace.NoOpTracer()) is None
    assert probe(TracerProvider(sampler=StaticSampler(Decision.RECORD_ONLY),
                                shutdown_on_exit=False).get_tracer("t")) is None
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    assert probe(TracerProvider(shutdown_on_exit=False).get_tracer("t")) is None


def test_a_processor_added_later_turns_later_runs_live() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    sink = OtelSink(provider)
    handler = HypertoolCallbackHandler(Tracker(Config(), [sink]))
    RunnableLambda(lambda q: q).invoke("q", config={"callbacks": [handler]})
    assert sink._direct is not None and sink._direct._last[2] is not None
    custom = OnStarts()
    provider.add_span_processor(custom)
    RunnableLambda(lambda q: q, name="later").invoke("q", config={"callbacks": [handler]})
    assert sink._direct._last[2] is None
    assert custom.started == ["invoke_workflow later", "ending invoke_workflow later _Span"]


def _numbered(text: str) -> str:
    """The (random) instance id, numbered in order of appearance."""
    numbers: dict[str, str] = {}
    return re.sub(r'"service.instance.id": "[^"]+"',
                  lambda m: numbers.setdefault(m.group(), f"#{len(numbers)}"), text)


def test_the_provider_built_from_otel_variables_goes_direct() -> None:
    # default_sinks' provider when the app has none (sinks/otel_env): resolved per span.
    described = []
    for direct in (False, True):
        [sink] = default_sinks(Config(), environ={"OTEL_TRACES_EXPORTER": "console"})
        assert isinstance(sink, OtelSink) and isinstance(sink.tracer_provider, AppOrEnvProvider)
        provider = sink.tracer_provider.resolve()
        assert isinstance(provider, TracerProvider)
        provider.id_generator = CountingIds()  # before its tracer is made, at the first span
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if not direct:
            sink._direct = None
        runs = _Runs()
        tracker = Tracker(Config(), [sink, runs], ManualClock())
        chain(HypertoolCallbackHandler(tracker), tracker, ManualClock(), provider)
        assert runs.direct == [direct] * 4
        described.append([(_numbered(s.to_json()), *_describe(s)[1:])
                          for s in exporter.get_finished_spans()])
        provider.shutdown()
    assert len(described[0]) == 4
    assert described[1] == described[0]
