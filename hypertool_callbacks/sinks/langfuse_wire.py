"""OTLP/protobuf encoding of the Langfuse export, byte for byte what the SDK's encoder writes.

Why: the OTLP exporter's ``encode_spans`` builds one protobuf object per span, attribute and
value, and hashes the resource (a ``json.dumps``) once per span: that was about three
quarters of the export's CPU, paid in the app's process. Langfuse's observations are plain
(string, number and string-list attributes, no events or links), so their wire bytes are
written directly here, and attribute pairs that repeat from run to run (observation type,
persona, workflow, ...) are encoded once. Anything else (events, links, other values) goes
through the SDK's own span encoder, and tests compare the bytes with ``encode_spans``.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

_log = logging.getLogger(__name__)

_KIND = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4,
         SpanKind.CONSUMER: 5}
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)  # field 16: has-is-remote
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)  # ... and is-remote
_CACHE_MAX = 4096  # encoded (key, string value) pairs kept
_CACHE_VALUE_MAX = 256  # longer values (content) are not worth keeping


_SMALL = [bytes((i,)) for i in range(0x80)]


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (tags here are all one byte)."""
    size = len(payload)
    return _SMALL[tag] + (_SMALL[size] if size < 0x80 else _varint(size)) + payload


class _Unsupported(Exception):
    """A span this encoder leaves to the SDK's."""


def _any_value(value: Any) -> bytes:
    # bool before int (a bool is an int); every oneof member is written even when zero.
    kind = type(value)
    if kind is str or isinstance(value, str):  # subclasses too (LangChain's text accessor)
        return _field(0x0A, str.encode(value, "utf-8"))
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not -(1 << 63) <= value < (1 << 63):
            raise _Unsupported
        return b"\x18" + _varint(value)
    if kind is float:
        return b"\x21" + struct.pack("<d", value)
    if kind is tuple or kind is list:
        items = b"".join(_field(0x0A, _any_value(item)) for item in value)
        return _field(0x2A, items)
    raise _Unsupported


class WireEncoder:
    """``encode_spans(spans).SerializePartialToString()``, faster for plain spans."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, Any], bytes] = {}
        self._keys: dict[str, bytes] = {}  # KeyValue.key fields
        self._resources: dict[int, tuple[Any, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes]] = {}

    def _long_text(self, key: str, value: str) -> list[bytes]:
        """The KeyValue field of content (too long to cache), as pieces to join once: the
        content's bytes are copied once, not once per nesting level."""
        key_field = self._keys.get(key)
        if key_field is None:
            if len(self._keys) >= _CACHE_MAX:
                self._keys.clear()
            key_field = self._keys[key] = _field(0x0A, key.encode("utf-8"))
        data = str.encode(value, "utf-8")
        size = len(data)
        text_size = _varint(size)
        any_size = 1 + len(text_size) + size  # AnyValue{string_value}
        any_size_bytes = _varint(any_size)
        pair_size = len(key_field) + 1 + len(any_size_bytes) + any_size
        return [b"\x4a", _varint(pair_size), key_field, b"\x12", any_size_bytes, b"\x0a",
                text_size, data]

    def _attribute(self, key: str, value: Any) -> bytes:
        # Exact strings and tuples of them only: (1,) == (True,) would share an entry.
        kind = type(value)
        cacheable = ((kind is str and len(value) <= _CACHE_VALUE_MAX)
                     or (kind is tuple and all(type(item) is str for item in value)))
        if cacheable:
            found = self._pairs.get((key, value))
            if found is not None:
                return found
        pair = _field(0x4A, _field(0x0A, key.encode("utf-8")) + _field(0x12, _any_value(value)))
        if cacheable:
            if len(self._pairs) >= _CACHE_MAX:
                self._pairs.clear()
            self._pairs[(key, value)] = pair
        return pair

    def _span(self, span: ReadableSpan) -> bytes:
        if span.events or span.links or span.dropped_attributes or span.dropped_events \
                or span.dropped_links:
            raise _Unsupported
        context = span.get_span_context()
        if context is None:
            raise _Unsupported
        parent = span.parent
        state = context.trace_state
        parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
                 b"\x12\x08" + context.span_id.to_bytes(8, "big")]
        if state:
            parts.append(_field(0x1A, ",".join(f"{k}={v}" for k, v in state.items())
                                .encode("utf-8")))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if span.name:
            parts.append(_field(0x2A, span.name.encode("utf-8")))
        parts.append(b"\x30" + bytes((_KIND[span.kind],)))
        if span.start_time:
            parts.append(b"\x39" + struct.pack("<Q", span.start_time))
        if span.end_time:
            parts.append(b"\x41" + struct.pack("<Q", span.end_time))
        attributes = span.attributes
        if attributes:
            attribute, pairs = self._attribute, self._pairs
            for key, value in attributes.items():
                if type(value) is str:
                    if len(value) > _CACHE_VALUE_MAX:
                        parts.extend(self._long_text(key, value))
                        continue
                    found = pairs.get((key, value))
                    if found is not None:
                        parts.append(found)
                        continue
                parts.append(attribute(key, value))
        status = span.status
        if status is not None:
            body = b""
            if status.description:
                body = _field(0x12, status.description.encode("utf-8"))
            if status.status_code.value:
                body += b"\x18" + _varint(status.status_code.value)
            parts.append(_field(0x7A, body))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _field(0x12, b"".join(parts))  # ScopeSpans.spans

    def _cached(self, cache: dict[int, tuple[Any, bytes]], obj: Any, encode: Any) -> bytes:
        # By identity, with the object kept alive so its id cannot be reused: every span of
        # a provider shares one resource and one scope object.
        found = cache.get(id(obj))
        if found is not None and found[0] is obj:
            return found[1]
        data: bytes = encode(obj).SerializePartialToString()
        if len(cache) >= 64:
            cache.clear()
        cache[id(obj)] = (obj, data)
        return data

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The ExportTraceServiceRequest bytes: spans grouped by resource, then scope, in
        order of first appearance, as the SDK groups them."""
        # Grouped by object first (the SDK's dict hashes the resource, a json.dumps, per
        # span), then by equality as the SDK groups them.
        by_object: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
        for span in spans:
            try:
                data = self._span(span)
            except (_Unsupported, KeyError, AttributeError, TypeError, OverflowError,
                    struct.error):
                data = _field(0x12, _encode_span(span).SerializePartialToString())
            resource, scope = span.resource, span.instrumentation_scope or None
            group = by_object.get((id(resource), id(scope)))
            if group is None:
                group = by_object[(id(resource), id(scope))] = (resource, scope, [])
            group[2].append(data)
        groups: dict[Any, dict[Any, list[bytes]]] = {}
        for resource, scope, encoded_spans in by_object.values():
            groups.setdefault(resource, {}).setdefault(scope, []).extend(encoded_spans)
        out = []
        for resource, scopes in groups.items():
            body = [_field(0x0A, self._cached(self._resources, resource, _encode_resource))]
            for scope, encoded in scopes.items():
                scope_body = _field(0x0A, self._cached(self._scopes, scope,
                                                       _encode_instrumentation_scope))
                scope_body += b"".join(encoded)
                if scope is not None and scope.schema_url:
                    scope_body += _field(0x1A, scope.schema_url.encode("utf-8"))
                body.append(_field(0x12, scope_body))
            if resource.schema_url:
                body.append(_field(0x1A, resource.schema_url.encode("utf-8")))
            out.append(_field(0x0A, b"".join(body)))
        return b"".join(out)


class WireSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter with :class:`WireEncoder` doing the encoding.

    Sending, retries, compression, the size limit and the exporter's own metrics are the
    SDK's; an SDK whose exporter lacks those parts exports as usual."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = WireEncoder()
        self._fast = all(hasattr(self, name) for name in
                         ("_client", "_metrics", "_max_request_size", "_shutdown"))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._fast or self._shutdown:
            return super().export(spans)
        try:
            data = self._encoder.encode(spans)
        except Exception as exc:  # never lose a batch to this encoder: the SDK's then
            _log.debug("hypertool: span encoding fell back to the SDK's: %r", exc)
            return super().export(spans)
        limit = self._max_request_size
        if limit is not None and limit > 0 and len(data) > limit:
            return super().export(spans)  # the SDK's drop, with its own warning
        with self._metrics.export_operation(len(spans)) as result:
            outcome = self._client.export(data)
            if not outcome.success:
                result.error = outcome.error
                if outcome.status_code is not None:
                    result.error_attrs = {"http.response.status_code": outcome.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
