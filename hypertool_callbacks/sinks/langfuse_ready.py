"""The sink's finished spans that carry their own OTLP bytes (see langfuse_wire).

Why: the export used to read every span back through ``ReadableSpan``'s properties (each
copies events, links or attributes) to encode it, and ``ReadableSpan.__init__`` parses a
dozen keyword arguments per span. A :class:`WireReadySpan` is written once, when the sink
makes it, from the values it is made of; and it is made by setting its fields at once,
where ``ReadableSpan.__init__`` provably does only that (checked at import).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

UNSET = Status(StatusCode.UNSET)  # the status of every span without an error
_INTERNAL = SpanKind.INTERNAL


class WireReadySpan(ReadableSpan):
    """A finished span that carries its ``ScopeSpans.spans`` field (``wire``), written by
    ``langfuse_wire.WireEncoder`` from the values it was made of, and whether the SDK's
    media handling must look at it (``media``). Anyone else sees a ``ReadableSpan``."""

    __slots__ = ("media", "wire")

    wire: bytes
    media: bool


# ReadableSpan's own fields, read directly (its properties copy events, links and
# attributes on each read) when its layout is the one this was written against.
_FIELDS = {"_name", "_context", "_kind", "_instrumentation_info", "_instrumentation_scope",
           "_parent", "_start_time", "_end_time", "_attributes", "_events", "_links",
           "_resource", "_status"}
READS_FIELDS = set(vars(ReadableSpan("probe", resource=Resource.get_empty()))) == _FIELDS


def ready_span(name: str, context: SpanContext, parent: SpanContext, resource: Resource,
               attributes: dict[str, Any], info: Any, status: Status, start: int, end: int,
               scope: Any, wire: bytes, media: bool) -> WireReadySpan:
    """``WireReadySpan(name=name, ..., kind=INTERNAL)`` with ``wire`` and ``media`` set;
    its fields set at once where ``ReadableSpan.__init__`` provably only assigns them."""
    if _ASSIGNS:
        span = _new(WireReadySpan)
        span.__dict__.update({
            "_name": name, "_context": context, "_kind": _INTERNAL, "_instrumentation_info": info,
            "_instrumentation_scope": scope, "_parent": parent, "_start_time": start,
            "_end_time": end, "_attributes": attributes, "_events": (), "_links": (),
            "_resource": resource, "_status": status})
    else:  # pragma: no cover - another SDK's ReadableSpan
        span = WireReadySpan(name=name, context=context, parent=parent, resource=resource,
                             attributes=attributes, kind=_INTERNAL, instrumentation_info=info,
                             status=status, start_time=start, end_time=end,
                             instrumentation_scope=scope)
    span.wire = wire
    span.media = media
    return span


def _assigns_only() -> bool:
    """Whether ``ReadableSpan.__init__`` is the one that assigns its arguments to these
    fields (and makes a resource when given none), and :func:`ready_span` makes the same."""
    code = ReadableSpan.__init__.__code__
    if not READS_FIELDS or set(code.co_names) != _FIELDS | {"Resource", "create"}:
        return False
    context, parent, resource = SpanContext(1, 2, False), SpanContext(1, 3, True), Resource({})
    attributes, scope = {"a": 1}, InstrumentationScope("s")
    made = ready_span("n", context, parent, resource, attributes, None, UNSET, 4, 5, scope,
                      b"", False)
    sdk = WireReadySpan(name="n", context=context, parent=parent, resource=resource,
                        attributes=attributes, kind=_INTERNAL, instrumentation_info=None,
                        status=UNSET, start_time=4, end_time=5, instrumentation_scope=scope)
    return vars(made) == vars(sdk)


_new = object.__new__
_ASSIGNS = True  # for the check itself
_ASSIGNS = _assigns_only()
