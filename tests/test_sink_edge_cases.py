"""Edge cases of the OTel and Langfuse sinks found in review: per-run state, an app that
already uses Langfuse, failing exports, masks, odd trace ids, provider names, conversation
ids. Each asserts what the spec, the README or the sink contract asks for."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langfuse import Langfuse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from hypertool_callbacks import runtime
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from hypertool_callbacks.sinks.langfuse import LangfuseSink
from hypertool_callbacks.sinks.langfuse import default_sinks as lf_default_sinks
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.langfuse_support import langfuse_env
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import LF_PATH, Recorder, observations, team
from tests.test_otel_support import Spans, attrs

pytestmark = pytest.mark.usefixtures("reset_langfuse")


def _chain() -> Any:
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    return ChatPromptTemplate.from_messages([("user", "{q}")]) | model


@pytest.fixture
def app_langfuse(monkeypatch: pytest.MonkeyPatch,
                 receiver: OTLPReceiver) -> Iterator[tuple[Langfuse, TracerProvider,
                                                           InMemorySpanExporter]]:
    """An app that already uses Langfuse (same LANGFUSE_* env as hypertool), on the tracer
    provider it also gives hypertool's OTel sink (with the SDK's default: the global one)."""
    langfuse_env(monkeypatch, receiver.url, timeout="2")
    provider, exported = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    client = Langfuse(tracer_provider=provider)
    yield client, provider, exported
    provider.shutdown()


# -- 1. per-run state of the Langfuse sink is left in run.extra -----------------------------------

def test_langfuse_sink_removes_its_state_from_run_extra_at_end(public_key: str,
                                                                registry: CollectorRegistry
                                                                ) -> None:
    sink, recorder = LangfuseSink(registry=registry), Recorder()
    tracker = Tracker(Config(), [OtelSink(Spans().provider), sink, recorder])
    try:
        _chain().invoke({"q": "hi"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    finally:
        tracker.shutdown(5.0)
    assert len(recorder.runs) == 3
    for run in recorder.runs:  # the OTel sink pops its span; the Langfuse sink must too
        assert not run.extra, (run.name, sorted(run.extra))


# -- 2./3. the app already has a Langfuse client for the same public key --------------------------

def test_each_llm_call_once_in_langfuse_when_the_app_already_uses_langfuse(
        app_langfuse: tuple[Langfuse, TracerProvider, InMemorySpanExporter],
        receiver: OTLPReceiver, registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture) -> None:
    """The app's own Langfuse client (same key) already exports every GenAI span on its
    provider, ours included: a hypertool Langfuse sink beside it would send each call twice,
    so it stays off, loudly for a direct construction and with a warning by default."""
    app_client, provider, _ = app_langfuse
    with pytest.raises(ConfigError, match="already sends to Langfuse"):
        LangfuseSink(registry=registry)
    with caplog.at_level(logging.WARNING):
        sinks = lf_default_sinks(Config(), registry)
    assert sinks == []
    assert "duplicate observations" in caplog.text
    tracker = Tracker(Config(), [OtelSink(provider), PrometheusSink(registry)])
    try:
        _chain().invoke({"q": "hi"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
        app_client.flush()
    finally:
        tracker.shutdown(5.0)
    in_langfuse = observations(receiver, LF_PATH)
    chats = [o for o in in_langfuse if o.attrs.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 1  # the call, once


def test_hypertool_shutdown_leaves_the_apps_langfuse_client_working(
        app_langfuse: tuple[Langfuse, TracerProvider, InMemorySpanExporter],
        registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    app_client, _, _ = app_langfuse
    tracker = Tracker(Config(), lf_default_sinks(Config(), registry))
    tracker.shutdown(5.0)
    with caplog.at_level(logging.WARNING):
        app_client.create_score(name="quality", value=1.0, trace_id=uuid.uuid4().hex)
    dropped = [r.getMessage() for r in caplog.records if "shut down" in r.getMessage()]
    assert dropped == []


# -- 4. a failing Langfuse server logs on every batch -----------------------------------------

def test_failed_langfuse_exports_cost_at_most_one_rate_limited_warning(
        monkeypatch: pytest.MonkeyPatch, registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture) -> None:
    with OTLPReceiver(401) as receiver:
        langfuse_env(monkeypatch, receiver.url, timeout="2")
        sink = LangfuseSink(registry=registry)
        tracker = Tracker(Config(), [sink])
        handler = HypertoolCallbackHandler(tracker)
        try:
            with caplog.at_level(logging.WARNING):
                for _ in range(4):
                    _chain().invoke({"q": "hi"}, config={"callbacks": [handler]})
                    sink.flush(5.0)
        finally:
            tracker.shutdown(5.0)
    failures = registry.get_sample_value("hypertool_langfuse_export_failures_total",
                                         {"reason": "http_401"})
    assert failures == 4.0
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records
              if r.levelno >= logging.WARNING]
    assert len(logged) <= 1, logged


# -- 5. the masking hook does not reach Langfuse -------------------------------------------

def test_mask_given_to_the_default_sinks_also_masks_langfuse_content(
        public_key: str, receiver: OTLPReceiver, registry: CollectorRegistry) -> None:
    def mask(text: str) -> str:
        return text.replace("hunter2", "[secret]")

    sinks = runtime.default_sinks(Config(), registry, tracer_provider=Spans().provider,
                                  mask=mask)
    assert any(isinstance(s, LangfuseSink) for s in sinks)
    tracker = Tracker(Config(), sinks)
    try:
        _chain().invoke({"q": "my password is hunter2"},
                        config={"callbacks": [HypertoolCallbackHandler(tracker)]})
        langfuse = next(s for s in sinks if isinstance(s, LangfuseSink))
        assert langfuse.flush(10.0)
    finally:
        tracker.shutdown(5.0)
    got = observations(receiver, LF_PATH)
    assert got  # Langfuse did receive the runs
    leaked = [(o.name, k) for o in got for k, v in o.attrs.items() if "hunter2" in str(v)]
    assert leaked == []


# -- 6. a malformed trace id from an earlier sink --------------------------------------------

class _IntTraceId(Sink):
    """An earlier sink that sets the trace id as the OTel API hands it out: an int."""

    name = "int-trace-id"

    def on_run_start(self, run: Run) -> None:
        if run.parent is None:
            run.trace_id = uuid.uuid4().int  # type: ignore[assignment]


def test_non_string_trace_id_from_an_earlier_sink_does_not_lose_the_trace(
        public_key: str, receiver: OTLPReceiver, registry: CollectorRegistry) -> None:
    sink = LangfuseSink(registry=registry)
    tracker = Tracker(Config(), [_IntTraceId(), sink])
    try:
        _chain().invoke({"q": "hi"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
        assert sink.flush(10.0)
    finally:
        tracker.shutdown(5.0)
    got = observations(receiver, LF_PATH)
    # "invalid trace id: Langfuse gets another one", as for a malformed string.
    assert sorted(o.type for o in got) == ["chain", "chain", "generation"]
    assert len({o.trace_id for o in got}) == 1


# -- 7./8. GenAI semantic conventions -------------------------------------------------------

@pytest.mark.parametrize(("ls_provider", "expected"), [
    ("amazon_bedrock", "aws.bedrock"),
    ("google_vertexai", "gcp.vertex_ai"),
    ("google_genai", "gcp.gen_ai"),
    ("azure", "azure.ai.openai"),
    ("mistral", "mistral_ai"),
])
def test_provider_name_uses_the_semconv_well_known_value(ls_provider: str,
                                                         expected: str) -> None:
    spans = Spans()
    tracker = Tracker(Config(), [OtelSink(spans.provider)])
    run_id = uuid.uuid4()
    tracker.start(RunStart(run_id, None, RunKind.LLM, "ChatModel", model="m-1",
                           provider=ls_provider))
    tracker.end(RunEnd(run_id))
    (span,) = spans.finished
    assert attrs(span)["gen_ai.provider.name"] == expected


def test_conversation_id_is_on_chat_and_invoke_agent_spans_of_a_thread() -> None:
    spans = Spans()
    tracker = Tracker(Config(), [OtelSink(spans.provider)])
    team().invoke({"messages": [("user", "build it")]}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)], "configurable": {"thread_id": "t-9"}})
    genai = [s for s in spans.finished
             if attrs(s).get("gen_ai.operation.name") in ("chat", "invoke_agent")]
    assert len(genai) == 5  # 3 LLM calls, 2 agents
    missing = [s.name for s in genai if attrs(s).get("gen_ai.conversation.id") != "t-9"]
    assert missing == []
