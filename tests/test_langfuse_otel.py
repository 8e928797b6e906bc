"""Langfuse next to the OTel sink: each LLM call reaches Langfuse exactly once, Langfuse spans
stay out of the app's exporters, and both backends share the run's trace id.

The app's provider here is set up as an app sets up its global one (a batch processor with an
OTLP exporter) and sends to the same receiver, on the standard ``/v1/traces`` path.
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.sinks.langfuse import LangfuseSink
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import LF_PATH, Recorder, observations, team

OTEL_PATH = "/v1/traces"


pytestmark = pytest.mark.usefixtures("reset_langfuse")


def test_each_llm_call_once_in_langfuse_with_otel_sink_on_app_provider(
        monkeypatch: pytest.MonkeyPatch, registry: CollectorRegistry) -> None:
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", f"pk-{uuid.uuid4().hex[:12]}")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-test")
        monkeypatch.setenv("LANGFUSE_BASE_URL", receiver.url)
        app_provider = TracerProvider()
        app_provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.url + OTEL_PATH)))
        global_before = trace.get_tracer_provider()
        otel_sink = OtelSink(tracer_provider=app_provider)
        langfuse_sink, recorder = LangfuseSink(registry=registry), Recorder()
        tracker = Tracker(Config(), [otel_sink, langfuse_sink, recorder,
                                     PrometheusSink(registry)])
        try:
            team().invoke({"messages": [("user", "build it")]}, config={
                "callbacks": [HypertoolCallbackHandler(tracker)],
                "configurable": {"thread_id": "t-1"}})
            assert langfuse_sink.flush(10.0)
            assert app_provider.force_flush(10_000)
        finally:
            tracker.shutdown(5.0)
            app_provider.shutdown()
        llm_calls = len(recorder.of_kind(RunKind.LLM))
        assert llm_calls == 3

        in_langfuse = observations(receiver, LF_PATH)
        in_app = observations(receiver, OTEL_PATH)
        # Langfuse: only its own observations, one generation per LLM call.
        assert {o.scope for o in in_langfuse} == {"langfuse-sdk"}
        assert len([o for o in in_langfuse if o.type == "generation"]) == llm_calls
        assert not [o for o in in_langfuse if any(k.startswith("gen_ai.") for k in o.attrs)]
        assert len(in_langfuse) == len(recorder.runs)
        # The app's exporter: our GenAI spans only, no Langfuse spans.
        assert {o.scope for o in in_app} == {"hypertool_callbacks"}
        assert len([o for o in in_app if o.attrs.get("gen_ai.operation.name") == "chat"]) == (
            llm_calls)
        # One id finds the run everywhere.
        root_trace = recorder.runs[-1].trace_id
        assert recorder.runs[-1].parent is None
        assert {o.trace_id for o in in_langfuse} == {o.trace_id for o in in_app} == {root_trace}
        # The SDK did not register or replace the global provider.
        assert trace.get_tracer_provider() is global_before
