"""OTLP over gRPC, configured by the standard OTEL_* variables, to a local gRPC receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink
from tests.fakes import reply


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


def test_spans_reach_an_otlp_grpc_endpoint_from_otel_env_vars(
        collector: tuple[Collector, int], make_tracker: Callable[..., Tracker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    servicer, port = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the env vars
    tracker = make_tracker(sinks=[OtelSink(provider)])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(7, 2))])
    model.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                               "tags": ["persona:reviewer"]})
    assert provider.force_flush(10_000)
    provider.shutdown()
    [span] = servicer.spans
    attributes = {a.key: a.value for a in span.attributes}
    assert span.name == "chat fake-messages-list-chat-model"
    assert attributes["hypertool.persona"].string_value == "reviewer"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 7
