"""Getting spans out: OTLP/HTTP on the wire, a dead endpoint, console and JSON-lines files,
and the global provider (in subprocesses, so this process never sets one)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import JsonLinesSpanExporter, OtelSink
from tests.fakes import reply
from tests.otlp_receiver import OTLPReceiver
from tests.test_otel_support import Spans, run_python

MODEL = "fake-messages-list-chat-model"


def _invoke(tracker: Tracker, q: str = "hi") -> Any:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    return (prompt | model).invoke({"q": q}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:reviewer"]})


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


def test_spans_reach_an_otlp_http_receiver(make_tracker: Callable[..., Tracker]) -> None:
    with OTLPReceiver() as receiver:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", timeout=5)))
        try:
            _invoke(make_tracker(sinks=[OtelSink(provider)]))
            assert provider.force_flush(5_000)
            spans = receiver.wait_for_spans(3)
        finally:
            provider.shutdown()
    assert {r.path for r in receiver.received} == {"/v1/traces"}
    assert {r.headers["content-type"] for r in receiver.received} == {"application/x-protobuf"}
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"invoke_workflow RunnableSequence", "chain ChatPromptTemplate",
                            f"chat {MODEL}"}
    root, llm = by_name["invoke_workflow RunnableSequence"], by_name[f"chat {MODEL}"]
    assert llm.parent_span_id == root.span_id and root.parent_span_id == b""
    assert llm.trace_id == root.trace_id
    attributes = {kv.key: _value(kv.value) for kv in llm.attributes}
    assert attributes["hypertool.persona"] == "reviewer"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    scopes = {ss.scope.name for r in receiver.received for rs in r.request.resource_spans
              for ss in rs.scope_spans}
    assert scopes == {"hypertool_callbacks"}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=["hang", "closed-port"])
def dead_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "hang":
        with OTLPReceiver("hang") as receiver:
            yield receiver.url
    else:
        yield _closed_port_url()


def test_dead_endpoint_neither_breaks_nor_blocks_the_app(
    make_tracker: Callable[..., Tracker], dead_endpoint: str
) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    # Export early and often, so an export is hanging/retrying while the app keeps invoking.
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=dead_endpoint + "/v1/traces", timeout=2),
        schedule_delay_millis=5))
    tracker = make_tracker(sinks=[OtelSink(provider)])
    try:
        started = time.monotonic()
        for i in range(30):
            assert _invoke(tracker, f"q{i}").content == "hello"
            time.sleep(0.005)
        assert time.monotonic() - started < 2.0  # one blocked export alone takes 2 s
        assert tracker.live_runs == 0
        started = time.monotonic()
        # The SDK's own flush would wait for the stuck export, then try again (~4 s).
        tracker.shutdown(timeout=0.3)
        assert time.monotonic() - started < 1.5
    finally:
        provider.shutdown()


def _plain(q: str) -> Any:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    return (prompt | model).invoke({"q": q})


@pytest.mark.parametrize("status", [401, 503])
def test_an_endpoint_refusing_with_401_or_503_changes_nothing_for_the_app(
    make_tracker: Callable[..., Tracker], sample: Callable[..., float], status: int
) -> None:
    with OTLPReceiver(status) as receiver:
        provider = TracerProvider(shutdown_on_exit=False)
        # A small queue, exported early: batches are refused while the app keeps invoking.
        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", timeout=2),
            schedule_delay_millis=5, max_queue_size=8, max_export_batch_size=4)
        provider.add_span_processor(processor)
        tracker = make_tracker(sinks=[OtelSink(provider)])
        try:
            for i in range(30):
                result = _invoke(tracker, f"q{i}").model_dump(exclude={"id"})  # id: per run
                assert result == _plain(f"q{i}").model_dump(exclude={"id"})
            assert tracker.live_runs == 0
            assert tracker.live_executions == 0
            assert sample("hypertool_internal_errors_total", component="sink:otel") == 0
            deadline = time.monotonic() + 10
            while receiver.posts == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.posts > 0  # the exports were made, and refused
            assert receiver.spans() == []
            started = time.monotonic()
            tracker.shutdown(timeout=0.3)
            assert time.monotonic() - started < 1.5  # 503 is retried by the SDK for 2 s
        finally:
            provider.shutdown()


def test_jsonl_exporter_writes_one_span_per_line(
    make_tracker: Callable[..., Tracker], tmp_path: Path
) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    _invoke(make_tracker(sinks=[OtelSink(provider)]))
    _invoke(make_tracker(sinks=[OtelSink(provider)]))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    records = [json.loads(line) for line in lines]
    llms = [r for r in records if r["name"] == f"chat {MODEL}"]
    assert len(llms) == 2
    assert llms[0]["attributes"]["hypertool.persona"] == "reviewer"
    assert llms[0]["attributes"]["gen_ai.usage.input_tokens"] == 12
    assert len({r["context"]["trace_id"] for r in records}) == 2


def test_jsonl_exporter_failure_is_reported_not_raised(tmp_path: Path) -> None:
    exporter = JsonLinesSpanExporter(tmp_path)  # a directory: cannot be opened for writing
    spans = Spans()
    spans.provider.get_tracer("t").start_span("s").end()
    assert exporter.export(spans.finished) is SpanExportResult.FAILURE


# -- the global provider: subprocesses only -------------------------------------------------

_PRELUDE = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from langchain_core.runnables import RunnableLambda
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink, default_sinks

def invoke(tracker):
    handler = HypertoolCallbackHandler(tracker)
    return RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [handler]})
"""


def test_console_and_jsonl_get_a_private_provider_when_the_app_has_none(tmp_path: Path) -> None:
    path = tmp_path / "out" / "spans.jsonl"
    path.parent.mkdir()
    code = _PRELUDE + f"""
config = Config.model_validate({{"otel": {{"console": True, "jsonl_path": {str(path)!r}}}}})
tracker = Tracker(config, default_sinks(config))
assert invoke(tracker) == 2
# Private to hypertool: the app can still set its own provider afterwards.
assert not isinstance(trace.get_tracer_provider(), TracerProvider)
app_provider = TracerProvider()
trace.set_tracer_provider(app_provider)
assert trace.get_tracer_provider() is app_provider
tracker.shutdown(5)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    [record] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert record["name"] == "invoke_workflow RunnableLambda"
    assert record["attributes"]["hypertool.workflow"] == "RunnableLambda"
    assert '"name": "invoke_workflow RunnableLambda"' in result.stdout  # console exporter


def test_a_provider_the_app_set_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    code = _PRELUDE + f"""
exporter = InMemorySpanExporter()
app_provider = TracerProvider()
app_provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(app_provider)
config = Config.model_validate({{"otel": {{"console": True, "jsonl_path": {str(path)!r}}}}})
tracker = Tracker(config, default_sinks(config))
invoke(tracker)
assert trace.get_tracer_provider() is app_provider
print(json.dumps([s.name for s in exporter.get_finished_spans()]))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["invoke_workflow RunnableLambda"]
    assert not path.exists()


def test_global_provider_set_after_the_sink_is_used() -> None:
    code = _PRELUDE + """
sink = OtelSink()  # before the app has a provider
tracker = Tracker(Config(), [sink])
invoke(tracker)    # no provider yet: no-op spans, nothing breaks
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with trace.get_tracer("app").start_as_current_span("request"):
    invoke(tracker)
spans = {s.name: s for s in exporter.get_finished_spans()}
root = spans["invoke_workflow RunnableLambda"]
print(json.dumps({"names": sorted(spans),
                  "nested": root.parent.span_id == spans["request"].context.span_id}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "names": ["invoke_workflow RunnableLambda", "request"], "nested": True}


def test_jsonl_exporter_rotates_past_its_size(tmp_path: Path) -> None:
    """Issue 14, item 13: the demo's file grew to 178 MB in 18 minutes."""
    path = tmp_path / "spans.jsonl"
    spans = Spans()
    tracer = spans.provider.get_tracer("t")
    for i in range(4):
        tracer.start_span(f"span-{i}").end()
    one = len(spans.finished[0].to_json(indent=None)) + 1
    exporter = JsonLinesSpanExporter(path, max_bytes=3 * one)
    for span in spans.finished:
        assert exporter.export([span]) is SpanExportResult.SUCCESS
    for span in spans.finished[:3]:  # three more: the first file moves out once more
        assert exporter.export([span]) is SpanExportResult.SUCCESS

    def names(file: Path) -> list[str]:
        return [json.loads(line)["name"] for line in file.read_text().splitlines()]

    assert sorted(p.name for p in tmp_path.iterdir()) == ["spans.jsonl", "spans.jsonl.1"]
    assert names(path.with_name("spans.jsonl.1")) == ["span-3", "span-0", "span-1"]
    assert names(path) == ["span-2"]
    assert path.stat().st_size <= 3 * one


def test_jsonl_exporter_without_a_cap_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    spans = Spans()
    for i in range(3):
        spans.provider.get_tracer("t").start_span(f"span-{i}").end()
    exporter = JsonLinesSpanExporter(path, max_bytes=0)
    for _ in range(3):
        exporter.export(spans.finished)
    assert len(path.read_text().splitlines()) == 9
    assert not path.with_name("spans.jsonl.1").exists()
