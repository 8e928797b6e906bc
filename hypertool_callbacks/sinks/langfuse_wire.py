"""OTLP/protobuf encoding of the Langfuse export, byte for byte what the SDK's encoder writes.

Why: the OTLP exporter's ``encode_spans`` builds one protobuf object per span, attribute and
value, and hashes the resource (a ``json.dumps``) once per span: that was about three
quarters of the export's CPU, paid in the app's process. Langfuse's observations are plain
(string, number and string-list attributes, no events or links), so their wire bytes are
written directly here, and attribute pairs that repeat from run to run (observation type,
persona, workflow, ...) are encoded once. Anything else (events, links, other values) goes
through the SDK's own span encoder, and tests compare the bytes with ``encode_spans``.

The sink's own finished spans (:class:`WireReadySpan`) carry their bytes, written by
:meth:`WireEncoder.span_field` from the very values the span is made of when it is made:
the export then only joins them (reading a span back through ``ReadableSpan``'s properties
cost more than writing its bytes).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from hypertool_callbacks.sinks.langfuse_ready import READS_FIELDS, UNSET, WireReadySpan

_log = logging.getLogger(__name__)

_KIND = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4,
         SpanKind.CONSUMER: 5}
_INTERNAL = SpanKind.INTERNAL
_STATUS_UNSET, _STATUS_OK = StatusCode.UNSET, StatusCode.OK
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)  # field 16: has-is-remote
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)  # ... and is-remote
_CACHE_MAX = 4096  # encoded (key, string value) pairs kept
_CACHE_VALUE_MAX = 256  # longer values (content) are not worth keeping
_pack_q = struct.Struct("<Q").pack
_pack_start_end = struct.Struct("<BQBQ").pack  # start and end time fields at once
# Observation input and output: new text each time, never looked up in the pair cache.
_CONTENT = frozenset({"langfuse.observation.input", "langfuse.observation.output"})


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


class _TwoBytes(dict[int, bytes]):
    """Two-byte varints (0x80 to 0x3FFF), each made on first use."""

    def __missing__(self, size: int) -> bytes:
        value = self[size] = bytes(((size & 0x7F) | 0x80, size >> 7))
        return value


_TWO = _TwoBytes()


def _size(size: int) -> bytes:
    """A length as a varint: one or two bytes for any attribute but a huge one."""
    if size < 0x80:
        return _SMALL[size]
    if size < 0x4000:
        return bytes(((size & 0x7F) | 0x80, size >> 7))
    return _varint(size)


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


def _status(status: Status | None) -> bytes:
    """The ``Span.status`` field (none for None)."""
    if status is None:
        return b""
    code, description = status.status_code, status.description
    if code is _STATUS_UNSET and not description:
        return b"\x7a\x00"
    body = _field(0x12, description.encode("utf-8")) if description else b""
    value = 0 if code is _STATUS_UNSET else 1 if code is _STATUS_OK else code.value
    if value:
        body += b"\x18" + _varint(value)
    return _field(0x7A, body)


class WireEncoder:
    """``encode_spans(spans).SerializePartialToString()``, faster for plain spans."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, Any], bytes] = {}
        # Pairs of a bool, and of a tuple object seen again (the sink reuses its tag tuples),
        # each kept apart: True == 1, and (1,) == (True,), would share an entry in _pairs.
        self._bools: dict[tuple[str, bool], bytes] = {}
        self._tuples: dict[tuple[str, int], tuple[tuple[Any, ...], bytes]] = {}
        self._keys: dict[str, bytes] = {}  # KeyValue.key fields
        self._names: dict[str, bytes] = {}  # Span.name fields
        self._resources: dict[int, tuple[Any, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes]] = {}

    def _key(self, key: str) -> bytes:
        key_field = self._keys.get(key)
        if key_field is None:
            if len(self._keys) >= _CACHE_MAX:
                self._keys.clear()
            key_field = self._keys[key] = _field(0x0A, key.encode("utf-8"))
        return key_field

    def text_pair(self, key: str, value: str) -> bytes:
        """The KeyValue field of uncached text (content), in as few steps as can be: here
        the interpreter's steps cost more than copying the text twice."""
        key_field = self._keys.get(key) or self._key(key)
        data = str.encode(value, "utf-8")
        size = len(data)
        if size < 0x3F80:  # every size below fits in two bytes (the _size of most content)
            any_value = b"\x0a" + (_SMALL[size] if size < 0x80 else _TWO[size]) + data
            size = len(any_value)
            pair = key_field + b"\x12" + (_SMALL[size] if size < 0x80 else _TWO[size]) + any_value
            size = len(pair)
            return b"\x4a" + (_SMALL[size] if size < 0x80 else _TWO[size]) + pair
        any_value = b"\x0a" + _size(size) + data
        pair = key_field + b"\x12" + _size(len(any_value)) + any_value
        return b"\x4a" + _size(len(pair)) + pair

    def _attribute(self, key: str, value: Any) -> bytes:
        # Exact strings and tuples of them only: (1,) == (True,) would share an entry.
        kind = type(value)
        cacheable = ((kind is str and len(value) <= _CACHE_VALUE_MAX)
                     or (kind is tuple and all(type(item) is str for item in value)))
        if cacheable:
            found = self._pairs.get((key, value))
            if found is not None:
                return found
        pair = _field(0x4A, self._key(key) + _field(0x12, _any_value(value)))
        if cacheable:
            if len(self._pairs) >= _CACHE_MAX:
                self._pairs.clear()
            self._pairs[(key, value)] = pair
        return pair

    def pair(self, key: str, value: Any) -> bytes:
        """The ``Span.attributes`` field of one attribute (KeyValue), cached when it may
        repeat; raises :class:`_Unsupported` (or a TypeError ...) for other values."""
        value_type = type(value)
        if value_type is str:
            # Content is new text each time: not worth hashing for the cache.
            if key in _CONTENT or len(value) > _CACHE_VALUE_MAX:
                return self.text_pair(key, value)
            found = self._pairs.get((key, value))
        elif value_type is bool:
            found = self._bools.get((key, value))
            if found is None:
                if len(self._bools) >= _CACHE_MAX:
                    self._bools.clear()
                found = self._bools[(key, value)] = self._attribute(key, value)
        elif value_type is tuple:
            seen = self._tuples.get((key, id(value)))
            # By identity, the tuple kept alive so that its id is not reused; only tuples
            # of strings, whose bytes cannot change.
            found = seen[1] if seen is not None and seen[0] is value else None
            if found is None:
                found = self._attribute(key, value)
                if all(type(item) is str for item in value):
                    if len(self._tuples) >= _CACHE_MAX:
                        self._tuples.clear()
                    self._tuples[(key, id(value))] = (value, found)
        else:
            found = None
        return found if found is not None else self._attribute(key, value)

    def span_field(self, context: SpanContext, parent: SpanContext | None, name: str,
                   kind: SpanKind, start: int | None, end: int | None,
                   attributes: Mapping[str, Any] | None, status: Status | None) -> bytes:
        """The ``ScopeSpans.spans`` field of a span without events, links or dropped
        attributes; raises :class:`_Unsupported` (or a TypeError ...) for other values."""
        if type(context) is SpanContext:  # a tuple: its items, without a property call each
            trace_id, span_id, _, _, state = context[:5]
        else:
            trace_id, span_id, state = context.trace_id, context.span_id, context.trace_state
        parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big"),
                 b"\x12\x08" + span_id.to_bytes(8, "big")]
        if state:
            parts.append(_field(0x1A, ",".join(f"{k}={v}" for k, v in state.items())
                                .encode("utf-8")))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if name:
            parts.append(_field(0x2A, name.encode("utf-8")))
        parts.append(b"\x30\x01" if kind is _INTERNAL else b"\x30" + bytes((_KIND[kind],)))
        if start:
            parts.append(b"\x39" + _pack_q(start))
        if end:
            parts.append(b"\x41" + _pack_q(end))
        if attributes:
            pairs, pair = self._pairs, self.pair
            for key, value in attributes.items():
                if type(value) is str and len(value) <= _CACHE_VALUE_MAX and key not in _CONTENT:
                    found = pairs.get((key, value))
                    if found is not None:
                        parts.append(found)
                        continue
                parts.append(pair(key, value))
        parts.append(_status(status))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        body = b"".join(parts)
        size = len(body)
        return b"\x12" + (_SMALL[size] if size < 0x80 else _varint(size)) + body

    def direct_span(self, head: bytes, name: str, start: int, end: int, attributes: bytes,
                    status: Status, parent: SpanContext) -> bytes:
        """:meth:`span_field` of an INTERNAL span from parts written earlier: ``head``
        (the trace, span and parent span id fields: a span without trace state) and its
        attribute fields, in order."""
        names = self._names
        name_field = names.get(name) if name else b""
        if name_field is None:
            if len(names) >= _CACHE_MAX:
                names.clear()
            name_field = names[name] = _field(0x2A, name.encode("utf-8"))
        times = (_pack_start_end(0x39, start, 0x41, end) if start and end
                 else (b"\x39" + _pack_q(start) if start else b"")
                 + (b"\x41" + _pack_q(end) if end else b""))
        body = b"".join((head, name_field, b"\x30\x01", times, attributes,
                         b"\x7a\x00" if status is UNSET else _status(status),
                         _FLAGS_REMOTE if parent[2] else _FLAGS_LOCAL))
        size = len(body)
        return b"\x12" + (_SMALL[size] if size < 0x80 else _varint(size)) + body

    def _span(self, span: ReadableSpan) -> bytes:
        if type(span) is WireReadySpan:
            return span.wire
        if READS_FIELDS and type(span) is ReadableSpan:
            fields = span.__dict__
            attributes, events, links = (fields["_attributes"], fields["_events"],
                                         fields["_links"])
            # The SDK's own containers (a live span's) may have dropped some: say so there.
            if events or links or (type(events) is not tuple and span.dropped_events) or (
                    type(links) is not tuple and span.dropped_links) or (
                    attributes is not None and type(attributes) is not dict
                    and span.dropped_attributes):
                raise _Unsupported
            context = fields["_context"]
            if context is None:
                raise _Unsupported
            return self.span_field(context, fields["_parent"], fields["_name"],
                                   fields["_kind"], fields["_start_time"], fields["_end_time"],
                                   attributes, fields["_status"])
        if span.events or span.links or span.dropped_attributes or span.dropped_events \
                or span.dropped_links:
            raise _Unsupported
        context = span.get_span_context()
        if context is None:
            raise _Unsupported
        return self.span_field(context, span.parent, span.name, span.kind, span.start_time,
                               span.end_time, span.attributes, span.status)

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
        last: tuple[Any, Any, list[bytes]] = (None, None, [])
        for span in spans:
            if type(span) is WireReadySpan and READS_FIELDS:  # the sink's own: bytes written
                data = span.wire
                fields = span.__dict__
                resource, scope = fields["_resource"], fields["_instrumentation_scope"] or None
            else:
                try:
                    data = self._span(span)
                except (_Unsupported, KeyError, AttributeError, TypeError, OverflowError,
                        struct.error):
                    data = _field(0x12, _encode_span(span).SerializePartialToString())
                if READS_FIELDS and type(span) is ReadableSpan:
                    fields = span.__dict__
                    resource = fields["_resource"]
                    scope = fields["_instrumentation_scope"] or None
                else:
                    resource, scope = span.resource, span.instrumentation_scope or None
            # Most batches: one resource and scope, as the span before.
            if resource is last[0] and scope is last[1] and last[2]:
                last[2].append(data)
                continue
            group = by_object.get((id(resource), id(scope)))
            if group is None:
                group = by_object[(id(resource), id(scope))] = (resource, scope, [])
            group[2].append(data)
            last = group
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

    @property
    def fast(self) -> bool:
        """Whether this encoder writes the batches (and so reads WireReadySpan's bytes)."""
        return self._fast

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
