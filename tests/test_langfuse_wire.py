"""The Langfuse export's own OTLP encoding writes exactly the bytes of the SDK's encoder."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from hypertool_callbacks.sinks.langfuse_wire import WireEncoder, WireSpanExporter
from tests.otlp_receiver import OTLPReceiver


class Text(str):
    """A str subclass, as LangChain's message ``.text`` accessor is."""


VALUES: list[object] = [Text("sub"), [Text("a")],
    "plain", "", "ünïcødé ✓ 𝄞", "x" * 5000, True, False, 0, 1, -1, 2**40, -(2**63),
    2**63 - 1, 0.0, 1.5, -2.25, float("inf"), ["a", "b"], [], [1, 2], [True], [1.5, 2.5],
    ("t",), [""],
]


def _spans(limits: SpanLimits | None = None) -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "n": 3}),
                              span_limits=limits, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    lf = provider.get_tracer("langfuse-sdk", "5.2.0", attributes={"public_key": "pk"})
    other = provider.get_tracer("other", schema_url="https://schema")
    remote = trace.SpanContext(0xABC, 0xDEF, True, trace.TraceFlags(1),
                               trace.TraceState([("k", "v"), ("a", "b")]))
    with lf.start_as_current_span("root", attributes={"langfuse.internal.as_root": True}):
        for index, value in enumerate(VALUES):
            kind = [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.SERVER][index % 3]
            span = lf.start_span(f"s{index}", kind=kind, attributes={"v": value, "k": "same"})
            if index % 4 == 0:
                span.set_status(Status(StatusCode.ERROR, f"bad {index}"))
            elif index % 4 == 1:
                span.set_status(Status(StatusCode.OK))
            span.end()
        lf.start_span("", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
                      start_time=0).end(end_time=5)
        with_event = other.start_span("event")
        with_event.add_event("e", {"a": 1})
        with_event.end()
        other.start_span("link", links=[Link(remote, {"l": "x"})]).end()
        other.start_span("mapping", attributes={"m": "x"}).end()
        lf.start_span("many", attributes={f"a{i}": i for i in range(5)}).end()
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return spans


def _check(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> None:
    expected = encode_spans(spans).SerializePartialToString()
    encoder = WireEncoder()
    assert encoder.encode(spans) == expected
    assert encoder.encode(spans) == expected  # again, from its caches


def test_same_bytes_as_the_sdk_encoder() -> None:
    _check(_spans())


def test_same_bytes_with_dropped_attributes_and_unusual_values() -> None:
    spans = list(_spans(SpanLimits(max_span_attributes=1)))
    # Values an attribute can hold only when set around the SDK's cleaning: the SDK's
    # encoder handles them (a mapping, None, bytes, an int beyond int64 raises there).
    raw = ReadableSpan(name="raw", context=spans[0].context, resource=spans[0].resource,
                       attributes={"m": {"k": "v"}, "n": None, "b": b"\x00"},
                       instrumentation_scope=spans[0].instrumentation_scope)
    _check([*spans, raw])


def test_no_spans() -> None:
    _check([])


def test_exporter_sends_the_encoded_batch() -> None:
    spans = _spans()
    with OTLPReceiver() as receiver:
        exporter = WireSpanExporter(endpoint=receiver.url + "/v1/traces")
        try:
            assert exporter.export(spans).name == "SUCCESS"
        finally:
            exporter.shutdown()
        assert receiver.received[0].request == encode_spans(spans)


@pytest.mark.parametrize("size", [1, 0])
def test_size_limit_is_the_sdks(size: int) -> None:
    with OTLPReceiver() as receiver:
        exporter = WireSpanExporter(endpoint=receiver.url + "/v1/traces",
                                    max_request_size=size)
        try:
            result = exporter.export(_spans())
        finally:
            exporter.shutdown()
        assert result.name == ("FAILURE" if size else "SUCCESS")
        assert len(receiver.received) == (0 if size else 1)


def test_metadata_strings_encoded_as_the_sdk_encodes_them() -> None:
    from langfuse._client.attributes import _flatten_and_serialize_metadata

    from hypertool_callbacks.sinks.langfuse_fields import metadata_attributes

    values = {"persona": "rév\"iewer\n\u2028", "stage": "", "workflow": "w", "text": Text("t"),
              "handoff_to": ["a"], "usage_estimated": True}
    ours, rest = metadata_attributes(values)
    assert {**ours, **_flatten_and_serialize_metadata(rest, "observation")} == (
        _flatten_and_serialize_metadata(values, "observation"))
    assert set(rest) == {"text", "handoff_to", "usage_estimated"}


@pytest.mark.parametrize("value", [
    {"input": 12, "output": 3, "total": 15}, {"input": 0.25, "output": 1e-7, "total": 1.5},
    {"temperature": 0.2, "stop": ["END", "ü\n"], "max_tokens": None, "stream": True},
    {"big": 2**53, "small": -(2**53)}, {"edge": 2**53 - 1}, {"nan": float("nan")},
    {"inf": float("inf")}, {"nested": {"a": 1}}, {"t": ("a", 1)}, {1: "int key"},
    {"s": Text("sub")}, {"b": b"x"}, {}, None, "text", [1, 2],
])
def test_dicts_serialised_as_the_sdk_serialises_them(value: Any) -> None:
    from langfuse._client.attributes import _serialize

    from hypertool_callbacks.sinks.langfuse_fields import sdk_json

    assert _serialize(sdk_json(value)) == _serialize(value)
