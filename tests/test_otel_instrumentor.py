"""Zero-code activation: ``HypertoolInstrumentor`` by hand, and ``opentelemetry-instrument``
running an unmodified script (tests/apps/otel_team_app.py) against a local OTLP receiver."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry

from hypertool_callbacks import runtime
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.instrumentor import HypertoolInstrumentor
from tests.fakes import reply
from tests.otlp_receiver import OTLPReceiver
from tests.test_otel_support import ROOT, Spans, attrs

MODEL = "fake-messages-list-chat-model"


def _plain_invoke() -> Any:
    """An app call with no callbacks anywhere."""
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    return (prompt | model).invoke({"q": "hi"}, config={"tags": ["persona:reviewer"]})


def test_instrument_then_uninstrument(registry: CollectorRegistry,
                                      sample: Callable[..., float]) -> None:
    spans = Spans()
    before = Tracker(Config(), [])
    original = runtime.set_tracker(before)
    instrumentor = HypertoolInstrumentor()
    assert instrumentor.instrumentation_dependencies() == ()  # any framework will do
    config = Config.model_validate({"otel": {"capture_content": True}})
    try:
        instrumentor.instrument(tracer_provider=spans.provider, registry=registry,
                                config=config, mask=lambda text: text.replace("hi", "**"))
        assert runtime.is_instrumented()
        assert runtime.get_tracker() is not before
        _plain_invoke()
        llm = spans.named(f"chat {MODEL}")
        assert attrs(llm)["hypertool.persona"] == "reviewer"
        assert attrs(llm)["gen_ai.input.messages"] == (
            '[{"role": "user", "parts": [{"type": "text", "content": "**"}]}]')
        assert sample("hypertool_llm_requests_total", model=MODEL, persona="reviewer",
                      status="ok") == 1

        instrumentor.uninstrument()
        assert not runtime.is_instrumented()
        assert runtime.get_tracker() is before
        _plain_invoke()
        assert len(spans.finished) == 3  # nothing new
        assert sample("hypertool_llm_requests_total", model=MODEL, persona="reviewer",
                      status="ok") == 1
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        runtime.set_tracker(original)


def test_otel_disabled_in_config_means_metrics_only(registry: CollectorRegistry,
                                                    sample: Callable[..., float]) -> None:
    spans = Spans()
    original = runtime.set_tracker(Tracker(Config(), []))
    instrumentor = HypertoolInstrumentor()
    try:
        instrumentor.instrument(tracer_provider=spans.provider, registry=registry,
                                config=Config.model_validate({"otel": {"enabled": False}}))
        _plain_invoke()
    finally:
        instrumentor.uninstrument()
        runtime.set_tracker(original)
    assert spans.finished == []
    assert sample("hypertool_llm_requests_total", model=MODEL, persona="reviewer",
                  status="ok") == 1


def _entry_point_installed() -> bool:
    return any(ep.name == "hypertool_callbacks"
               and ep.value == "hypertool_callbacks.instrumentor:HypertoolInstrumentor"
               for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor"))


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


def test_opentelemetry_instrument_runs_an_unmodified_script(tmp_path: Path) -> None:
    # Without a configurator (opentelemetry-distro) the launcher sets up no SDK at all.
    assert importlib.metadata.entry_points(group="opentelemetry_configurator"), (
        "opentelemetry-distro is not installed (it belongs in the otel extra)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "HYPERTOOL_", "LANGFUSE_", "PYTHONPATH"))}
    # The package's own metadata must declare it: that is what the launcher discovers.
    assert _entry_point_installed(), "pyproject.toml lost the opentelemetry_instrumentor entry"
    bin_dir = Path(sys.executable).parent
    with OTLPReceiver() as receiver:
        env.update({
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "otel-team-app",
        })
        result = subprocess.run(
            [str(bin_dir / "opentelemetry-instrument"), "--traces_exporter", "otlp",
             "--metrics_exporter", "none", "--logs_exporter", "none",
             str(bin_dir / "python"), "tests/apps/otel_team_app.py"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "Here is the answer."
        spans = receiver.wait_for_spans(20, timeout=10)
        resources = {kv.key: _value(kv.value) for r in receiver.received
                     for rs in r.request.resource_spans for kv in rs.resource.attributes}

    assert resources["service.name"] == "otel-team-app"
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [app_span] = by_name["handle_request"]
    [root] = by_name["invoke_workflow research-team"]
    assert root.parent_span_id == app_span.span_id  # nested under the app's own span
    [researcher] = by_name["invoke_agent researcher"]
    assert {_value(kv.value) for kv in researcher.attributes
            if kv.key == "gen_ai.agent.name"} == {"researcher"}
    chats = [{kv.key: _value(kv.value) for kv in s.attributes} for s in by_name[f"chat {MODEL}"]]
    assert sorted((c["hypertool.persona"], c["gen_ai.usage.input_tokens"],
                   c["gen_ai.usage.output_tokens"]) for c in chats) == [
        ("researcher", 60, 10), ("researcher", 140, 35),
        ("supervisor", 50, 8), ("supervisor", 120, 12)]
    [search] = by_name["execute_tool web_search"]
    search_attrs = {kv.key: _value(kv.value) for kv in search.attributes}
    assert search_attrs["hypertool.persona"] == "researcher"
    assert search_attrs["gen_ai.tool.name"] == "web_search"
    assert "gen_ai.tool.call.arguments" not in search_attrs  # content is off by default
    assert {s.trace_id for s in spans} == {app_span.trace_id}


def test_bad_configuration_leaves_the_app_uninstrumented(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HYPERTOOL_LABEL_CAP", "0")  # invalid: must be >= 1
    before = Tracker(Config(), [])
    original = runtime.set_tracker(before)
    instrumentor = HypertoolInstrumentor()
    try:
        with caplog.at_level(logging.ERROR, logger="hypertool_callbacks.instrumentor"):
            instrumentor.instrument()  # must not raise
        assert not runtime.is_instrumented()
        assert runtime.get_tracker() is before
        assert "label_cap" in caplog.text
        instrumentor.uninstrument()
        assert runtime.get_tracker() is before
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        runtime.set_tracker(original)


def test_configured_metrics_port_is_served_while_instrumented(
    registry: CollectorRegistry,
) -> None:
    import urllib.request

    spans = Spans()
    original = runtime.set_tracker(Tracker(Config(), []))
    instrumentor = HypertoolInstrumentor()
    try:
        instrumentor.instrument(tracer_provider=spans.provider, registry=registry,
                                config=Config(metrics_port=0))
        server = instrumentor.metrics_server
        assert server is not None
        _plain_invoke()
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        assert ('hypertool_llm_requests_total{model="fake-messages-list-chat-model",'
                'persona="reviewer",status="ok"} 1.0') in text
    finally:
        instrumentor.uninstrument()
        runtime.set_tracker(original)
    assert instrumentor.metrics_server is None
