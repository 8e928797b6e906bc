"""HYPERTOOL_CALLBACKS + the standard OTEL_* variables, without opentelemetry-instrument and
without an SDK provider in the app: spans reach the endpoint (issue 14.5). Unmodified scripts in
subprocesses, a real OTLP/HTTP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypertool_callbacks.sinks.otel_env import exporter_names, otlp_protocol
from tests.otlp_receiver import OTLPReceiver

APP = textwrap.dedent("""
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from opentelemetry import trace

    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)] * 2)
    print(model.invoke("hi", config={"tags": ["persona:p"]}).content)
""")


def _run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items()
             if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    child.update(HYPERTOOL_CALLBACKS="true", **env)
    return subprocess.run([sys.executable, "-c", code], env=child, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_otlp_endpoint_alone_exports_spans_with_the_service_name(tmp_path: Path) -> None:
    code = APP + "print(type(trace.get_tracer_provider()).__name__)\n"
    with OTLPReceiver() as receiver:
        done = _run(code, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                    OTEL_SERVICE_NAME="newsroom-api")
        spans = receiver.wait_for_spans(1)
        resources = [rs.resource for r in receiver.received for rs in r.request.resource_spans]
    assert done.returncode == 0, done.stderr
    # The app's behaviour is unchanged, and our provider was never registered globally.
    assert done.stdout.split() == ["ok", "ProxyTracerProvider"]
    assert [span.name for span in spans] == ["chat fake-messages-list-chat-model"]
    assert {r.path for r in receiver.received} == {"/v1/traces"}
    service = {a.value.string_value for res in resources for a in res.attributes
               if a.key == "service.name"}
    assert service == {"newsroom-api"}
    assert "spans go nowhere" not in done.stderr


def test_the_app_s_own_provider_wins_even_when_set_after_activation(tmp_path: Path) -> None:
    code = APP.replace("print(model.invoke", textwrap.dedent("""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        print(model.invoke""").strip()) + (
        "print([s.name for s in exporter.get_finished_spans()])\n")
    with OTLPReceiver() as receiver:
        done = _run(code, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        received = receiver.spans()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok", "['chat fake-messages-list-chat-model']"]
    assert received == []


def test_without_provider_or_exporter_variables_one_warning_says_spans_go_nowhere(
        tmp_path: Path) -> None:
    code = APP + 'model.invoke("again")\n'
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("OpenTelemetry spans go nowhere") == 1
    silenced = _run(code, tmp_path, HYPERTOOL_CONFIG=str(_otel_off(tmp_path)))
    assert "spans go nowhere" not in silenced.stderr


def _otel_off(tmp_path: Path) -> Path:
    path = tmp_path / "off.toml"
    path.write_text("[otel]\nenabled = false\n")
    return path


def test_exporter_and_protocol_come_from_the_standard_variables() -> None:
    assert exporter_names({}) == []
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}) == ["otlp"]
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318",
                           "OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console, otlp"}) == ["console", "otlp"]
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317"}) == "grpc"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}) == "http/protobuf"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317",
                          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}) == "http/protobuf"


def test_current_provider_answers_what_the_api_does_before_and_after_the_app_sets_one() -> None:
    # Read without the API's per-call environment lookup, it must still follow the global:
    # a proxy until the app sets a provider, then that provider. (A fresh process: the global
    # can be set once.)
    script = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from hypertool_callbacks.sinks.otel_env import current_provider
assert isinstance(current_provider(), trace.ProxyTracerProvider)
assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
provider = TracerProvider()
trace.set_tracer_provider(provider)
assert current_provider() is provider is trace.get_tracer_provider()
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
