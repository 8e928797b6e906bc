"""Langfuse configuration: the standard LANGFUSE_* env vars, the [langfuse] settings, the
process-wide sink list, and an app's own client."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langfuse import Langfuse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from hypertool_callbacks import runtime
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import observations

LOGGER = "hypertool_callbacks.sinks.langfuse"


pytestmark = pytest.mark.usefixtures("reset_langfuse")


def invoke(handler: HypertoolCallbackHandler) -> None:
    model = FakeMessagesListChatModel(responses=[reply("x")])
    assert model.invoke("q", config={"callbacks": [handler]}).content == "x"


def test_default_sinks_off_without_keys_with_one_info_line(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)
    with caplog.at_level(logging.DEBUG):
        assert lf.default_sinks(Config()) == []
    assert [(r.levelno, r.name) for r in caplog.records] == [(logging.INFO, LOGGER)]
    assert "LANGFUSE_PUBLIC_KEY" in caplog.records[0].getMessage()


def test_default_sinks_off_when_disabled(public_key: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    config = Config.model_validate({"langfuse": {"enabled": False}})
    with caplog.at_level(logging.DEBUG):
        assert lf.default_sinks(config) == []
    assert [(r.levelno, r.name) for r in caplog.records] == [(logging.INFO, LOGGER)]
    assert "enabled = false" in caplog.records[0].getMessage()


def test_default_sinks_from_env_and_config(public_key: str) -> None:
    config = Config.model_validate({"langfuse": {
        "persona_as_user": True, "capture_content": False, "flush_timeout_seconds": 2.5}})
    global_before = trace.get_tracer_provider()
    (sink,) = lf.default_sinks(config)
    try:
        assert isinstance(sink, lf.LangfuseSink)
        assert (sink.persona_as_user, sink.capture_content, sink.flush_timeout) == (
            True, False, 2.5)
        # The SDK got a provider of its own: the global one is untouched.
        assert trace.get_tracer_provider() is global_before
    finally:
        sink.shutdown(5.0)


def test_process_wide_sinks_put_langfuse_before_prometheus(public_key: str) -> None:
    sinks = runtime.default_sinks(Config.model_validate({"otel": {"enabled": False}}))
    try:
        assert [type(s) for s in sinks] == [lf.LangfuseSink, PrometheusSink]
    finally:
        for sink in sinks:
            sink.shutdown(5.0)


@pytest.mark.parametrize("path_env", [None, "/proxy/otel/traces"])
def test_host_is_the_fallback_base_url_and_export_path_is_honoured(
        monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver,
        make_tracker: Callable[..., Tracker], path_env: str | None) -> None:
    key = f"pk-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-host")
    monkeypatch.delenv("LANGFUSE_BASE_URL", raising=False)
    monkeypatch.setenv("LANGFUSE_HOST", receiver.url + "/")
    if path_env:
        monkeypatch.setenv("LANGFUSE_OTEL_TRACES_EXPORT_PATH", path_env)
    else:
        monkeypatch.delenv("LANGFUSE_OTEL_TRACES_EXPORT_PATH", raising=False)
    sink = lf.LangfuseSink()
    try:
        invoke(HypertoolCallbackHandler(make_tracker(sinks=[sink])))
        assert sink.flush(10.0)
    finally:
        sink.shutdown(5.0)
    (received,) = receiver.received
    assert received.path == (path_env or "/api/public/otel/v1/traces")
    token = base64.b64encode(f"{key}:sk-host".encode()).decode()
    assert received.headers["authorization"] == f"Basic {token}"
    assert received.headers["x-langfuse-public-key"] == key


def test_missing_keys_raise_config_error_for_a_direct_sink(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY", raising=False)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk")
    with pytest.raises(ValueError, match="LANGFUSE_PUBLIC_KEY"):
        lf.LangfuseSink()


def test_injected_client_is_used_and_not_shut_down(
        receiver: OTLPReceiver, make_tracker: Callable[..., Tracker]) -> None:
    client = Langfuse(public_key=f"pk-{uuid.uuid4().hex[:8]}", secret_key="sk",
                      base_url=receiver.url, tracer_provider=TracerProvider())
    sink = lf.LangfuseSink(client)
    invoke(HypertoolCallbackHandler(make_tracker(sinks=[sink])))
    sink.shutdown(5.0)  # flushes the app's client and leaves it running
    assert [o.type for o in observations(receiver)] == ["generation"]
    with client.start_as_current_observation(name="app-span"):
        pass
    client.flush()
    assert [o.name for o in observations(receiver)] == ["FakeMessagesListChatModel", "app-span"]
