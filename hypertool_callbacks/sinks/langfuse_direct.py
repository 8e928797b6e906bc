"""Langfuse observations handed to the SDK's span processor as finished spans.

Why: a live OTel span per observation costs the sampler, ``Span`` and ``BoundedAttributes``
construction, the Langfuse processor's ``on_start`` (propagated attributes, app-root
bookkeeping), cleaning every attribute value again on ``set_attributes`` and a copy into a
``ReadableSpan`` at ``end``: about as much as the whole rest of the run's bookkeeping. Our
observations are only filled at run end, so nothing needs a live span: at run start we keep
the ids, at run end we build the ``ReadableSpan`` that ``Span.end`` would have built and give
it to the provider's processors (``on_end``: the Langfuse project and export filters, then
the batch queue), exactly as ``Span.end`` does.

What ``start_span`` and ``on_start`` would have done is reproduced, and :func:`probe` allows
this only where that is provably all they do (otherwise the sink keeps live spans):

* sampler ``ALWAYS_ON`` or ``ParentBased`` with ``ALWAYS_ON`` for sampled parents (our
  parents are always sampled): sampled, no sampler attributes, the parent's trace state;
* no SDK self-metrics, one processor and it is the SDK's ``LangfuseSpanProcessor`` without
  skills (so ``on_start`` propagates nothing from our fresh contexts) whose export filter
  accepts every span of its own project's tracer;
* ``on_start`` marks ``langfuse.internal.is_app_root`` on a span whose parent is not an open
  span of the processor: for us, exactly the roots (their parent is the remote one);
* attribute order: start attributes, the processor's mark, then the end attributes (none of
  them repeat a key); values cleaned as ``BoundedAttributes`` cleans them (see
  :func:`clean_attributes`), limits applied by ``BoundedAttributes`` itself when they bite.

When the sink's own exporter writes the batches (``encoder`` set), a span whose attributes
needed no limits is made a ``WireReadySpan``: its OTLP bytes are written here, from the
values it is made of, and its media pre-check done, so that the export only joins them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import NoneType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, Status, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from hypertool_callbacks.sinks.langfuse_media import attributes_may_hold_media
from hypertool_callbacks.sinks.langfuse_ready import UNSET, ready_span
from hypertool_callbacks.sinks.langfuse_wire import WireEncoder

_log = logging.getLogger(__name__)
_SDK_LOG = logging.getLogger("langfuse")

_AS_ROOT = "langfuse.internal.as_root"
_IS_APP_ROOT = "langfuse.internal.is_app_root"
_UNSET = UNSET
_INTERNAL = trace.SpanKind.INTERNAL
_FLAGS = {0: TraceFlags(TraceFlags.SAMPLED),
          TraceFlags.RANDOM_TRACE_ID: TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)}
_PLAIN = (str, bool, int, float, bytes, NoneType)  # kept as they are, subclasses too
_MIN_ATTRIBUTES = 16  # below this Langfuse's own limit logic could drop the app-root mark

try:  # the SDK's pieces we check against (private names: a missing one disables this path)
    from langfuse._client.constants import LANGFUSE_TRACER_NAME
    from langfuse._client.span_filter import is_default_export_span, is_langfuse_span
    from langfuse._client.span_processor import LangfuseSpanProcessor
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    _IMPORTED = True
except ImportError:  # pragma: no cover - another SDK layout
    _IMPORTED = False


@dataclass(slots=True)
class OpenObservation:
    """What a run's observation needs from its start: ids, start time, whether it is a root."""

    context: SpanContext
    parent: SpanContext
    root: bool
    head: bytes | None = None  # its OTLP span's id fields, when an encoder wants them


class DirectSpans:
    """Builds finished Langfuse spans for one SDK tracer (see the module doc)."""

    def __init__(self, tracer: Any, processor: Any, emit: Any = None) -> None:
        self._tracer = tracer
        self._processor = processor
        # The batch queue itself, when on_end provably only filters and queues (see _probe).
        self._emit = emit
        # Set by the sink when its exporter reads WireReadySpan's bytes (langfuse_wire).
        self.encoder: WireEncoder | None = None
        self._processors = processor._span_processors  # replaced when one is added
        self._new_span_id = tracer.id_generator.generate_span_id
        limits = tracer._span_limits
        self._max_attributes: int | None = limits.max_span_attributes
        self._max_length: int | None = limits.max_span_attribute_length

    def start(self, parent: SpanContext, root: bool) -> OpenObservation | None:
        """The new observation's ids; None when the tracer is disabled (nothing recorded,
        as ``start_span`` then returns a non-recording span)."""
        if not self._tracer._is_enabled():
            return None
        if type(parent) is SpanContext:  # a tuple: its items, without a property call each
            trace_id, parent_id, flags, state = parent[0], parent[1], parent[3], parent[4]
        else:
            trace_id, parent_id = parent.trace_id, parent.span_id
            flags, state = parent.trace_flags, parent.trace_state
        span_id = self._new_span_id()
        # SAMPLED, and RANDOM_TRACE_ID when the parent has it: one of two flag values.
        context = SpanContext(trace_id, span_id, False,
                              _FLAGS[flags & TraceFlags.RANDOM_TRACE_ID], state)
        head = None
        # The shared empty state first: an empty TraceState's len() is a Python call.
        if self.encoder is not None and (state is DEFAULT_TRACE_STATE or not state):
            try:  # WireEncoder.direct_span's head: trace, span and parent span id fields
                head = (b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08"
                        + span_id.to_bytes(8, "big") + b"\x22\x08"
                        + parent_id.to_bytes(8, "big"))
            except (OverflowError, TypeError, AttributeError):  # ids for the SDK's encoder
                head = None
        return OpenObservation(context, parent, root, head)

    def end(self, observation: OpenObservation, name: str, start_ns: int, end_ns: int | None,
            attributes: dict[str, Any], status: Status | None, wire: bytes | None = None,
            media: bool | None = None, plain: bool = False) -> None:
        """Hand the finished span to the processors, as ``Span.end`` does. ``attributes``
        start with the root marks for a root (see :func:`root_attributes`); ``wire`` are
        their OTLP fields in order, ``media`` whether any may hold media, ``plain`` whether
        :func:`clean_attributes` would keep them as they are (langfuse_observation)."""
        tracer = self._tracer
        maximum = self._max_attributes
        if plain and self._max_length is None and (maximum is None
                                                   or len(attributes) <= maximum):
            cleaned = attributes
        else:
            cleaned = self._attributes(attributes)
        end_time = end_ns if end_ns is not None else time.time_ns()
        status = status or _UNSET
        encoded = None
        encoder = self.encoder
        if encoder is not None and cleaned is attributes:  # none dropped, none converted
            try:  # the bytes the exporter would write for this span, from the same values
                if wire is not None and observation.head is not None:
                    encoded = encoder.direct_span(observation.head, name, start_ns, end_time,
                                                  wire, status, observation.parent)
                else:
                    encoded = encoder.span_field(observation.context, observation.parent,
                                                 name, _INTERNAL, start_ns, end_time, cleaned,
                                                 status)
            except Exception:  # a value the encoder leaves to the SDK's: exported as usual
                encoded = None
        span: ReadableSpan
        if encoded is None:
            span = ReadableSpan(
                name=name, context=observation.context, parent=observation.parent,
                resource=tracer.resource, attributes=cleaned, kind=_INTERNAL,
                instrumentation_info=tracer.instrumentation_info, status=status,
                start_time=start_ns, end_time=end_time,
                instrumentation_scope=tracer._instrumentation_scope,
            )
        else:
            span = ready_span(
                name, observation.context, observation.parent, tracer.resource, cleaned,
                tracer.instrumentation_info, status, start_ns, end_time,
                tracer._instrumentation_scope, encoded,
                attributes_may_hold_media(cleaned) if media is None else media)
        if (self._emit is not None and self._processor._span_processors is self._processors
                and not _SDK_LOG.isEnabledFor(logging.DEBUG)):
            self._emit(span)
        else:  # the SDK's debug log describes each span, or a processor was added: theirs
            self._processor.on_end(span)

    def _attributes(self, ordered: dict[str, Any]) -> Any:
        maximum = self._max_attributes
        if self._max_length is None and (maximum is None or len(ordered) <= maximum):
            cleaned = clean_attributes(ordered)
            if cleaned is not None:
                return cleaned
        # Limits that bite, or values to convert: the SDK's own container does it.
        return BoundedAttributes(maximum, ordered, immutable=True, max_value_len=self._max_length)


def root_attributes(root: bool) -> dict[str, Any]:
    """The attributes an observation starts with: the root marks, in the order the SDK
    sets them (``as_root`` at start, then the processor's ``is_app_root``)."""
    return {_AS_ROOT: True, _IS_APP_ROOT: True} if root else {}


def plain_values(values: Iterable[Any]) -> bool:
    """Whether :func:`clean_attributes` keeps attributes with these values as they are:
    plain scalars, and tuples of them."""
    for value in values:
        if isinstance(value, _PLAIN):
            continue
        if type(value) is tuple and all(isinstance(item, _PLAIN) for item in value):
            continue
        return False
    return True


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """``attributes`` as ``BoundedAttributes`` would hold them (lists become tuples), or None
    when a value needs its full cleaning (or a key is not a non-empty string). Its cleaning
    returns these scalars, str subclasses (LangChain's text accessor) included, unchanged."""
    for key, value in attributes.items():
        if type(key) is not str or not key:
            return None
        if isinstance(value, _PLAIN):
            continue
        kind = type(value)
        if (kind is list or kind is tuple) and all(isinstance(item, _PLAIN) for item in value):
            if kind is list:
                attributes[key] = tuple(value)
            continue
        return None
    return attributes


def probe(tracer: Any) -> DirectSpans | None:
    """A :class:`DirectSpans` for ``tracer`` when it provably matches today's live spans
    (see the module doc); None otherwise, and the sink keeps live spans."""
    if not _IMPORTED:
        return None
    try:
        return _probe(tracer)
    except Exception as exc:  # an unexpected layout: the live spans, which always work
        _log.debug("hypertool: Langfuse direct spans off: %r", exc)
        return None


def _probe(tracer: Any) -> DirectSpans | None:
    sampler = tracer.sampler
    if not (sampler is ALWAYS_ON or (
            type(sampler) is ParentBased and sampler._remote_parent_sampled is ALWAYS_ON
            and sampler._local_parent_sampled is ALWAYS_ON)):
        return None
    if type(tracer._tracer_metrics) is not NoOpTracerMetrics:
        return None
    multi = tracer.span_processor
    if type(multi) is not SynchronousMultiSpanProcessor:
        return None
    processors = multi._span_processors
    if len(processors) != 1 or type(processors[0]) is not LangfuseSpanProcessor:
        return None
    processor = processors[0]
    if type(processor)._on_ending is not BatchSpanProcessor._on_ending:  # a no-op there
        return None
    if processor._available_skills is not None:
        return None
    if processor._should_export_span not in (is_langfuse_span, is_default_export_span):
        return None
    scope = tracer._instrumentation_scope
    public_key = (scope.attributes or {}).get("public_key") if scope is not None else None
    if scope is None or scope.name != LANGFUSE_TRACER_NAME or public_key != processor.public_key:
        return None
    maximum = tracer._span_limits.max_span_attributes
    if maximum is not None and maximum < _MIN_ATTRIBUTES:
        return None
    if not callable(tracer._is_enabled) or not callable(tracer.id_generator.generate_span_id):
        return None
    # LangfuseSpanProcessor.on_end on our spans: the project check and the export filter pass
    # (scope and key checked above), no app-root state to clean (on_start never ran), then
    # BatchSpanProcessor.on_end: sampled, so emit. Unless a class in between is changed.
    emit = getattr(getattr(processor, "_batch_processor", None), "emit", None)
    plain = (type(processor).on_end is LangfuseSpanProcessor.on_end
             and LangfuseSpanProcessor.__mro__[1] is BatchSpanProcessor
             and type(multi).on_end is SynchronousMultiSpanProcessor.on_end)
    return DirectSpans(tracer, multi, emit if plain and callable(emit) else None)
