"""OpenTelemetry spans handed to the provider's span processor as finished spans.

Why: a live SDK span costs the sampler, ``Span`` construction (a lock, ``BoundedAttributes``
cleaning every value, two ``BoundedList``), ``on_start`` through every processor, locked
``set_attributes``/``set_status``/``update_name`` calls and a ``ReadableSpan`` copy at ``end``:
about 217k instructions per span, where building the finished span costs about 38k. Nothing
reads our spans while they are open, so a :class:`DirectSpan` only notes what the sink does to
it; at ``end`` it builds the ``ReadableSpan`` that ``Span.end`` would have built and hands it
to the provider's span processor (``on_end``), as ``Span.end`` does. Where that is allowed is
decided by ``otel_probe``; given that, this module reproduces:

* ``start_span``: the sampler's decision from the parent's flags (a dropped span is left to
  ``start_span`` itself: today's non-recording span, ids included); ids from the tracer's id
  generator in its order; trace id, trace state and random-trace-id flag from a valid
  parent; resource and scope as the tracer holds them at start;
* attributes: those given at start, then every ``set_attributes``/``set_attribute`` in call
  order, a key set again moving last (``BoundedAttributes`` deletes and re-inserts), values
  cleaned as it cleans them. Where a length limit is set, the count limit could bite or a
  value needs its own cleaning, the span is replayed through the SDK's ``Span`` at its end
  (exact by construction), as it is when the processors changed while it was open;
* events as ``Span.add_event`` builds them, ``record_exception`` the SDK's own method, status
  and name as the SDK's setters leave them. A span without events (or links: we add none)
  gets an empty ``BoundedList`` of the same bound shared by the tracer's spans.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from time import time_ns
from types import NoneType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

try:  # the SDK's pieces we check against (private names: a missing one disables this path)
    from opentelemetry.sdk.trace import Event, ReadableSpan, _Span
    from opentelemetry.sdk.trace import Span as SdkSpan
    from opentelemetry.sdk.util import BoundedList

    _IMPORTED = True
except ImportError:  # pragma: no cover - another SDK layout
    _IMPORTED = False

_KEPT = frozenset({str, bool, int, float, NoneType, bytes})  # cleaning returns them as they are
_PLAIN = (str, bool, int, float, bytes, NoneType)  # so are their subclasses (no length limit)
_SLOW = object()  # a value only BoundedAttributes' own cleaning gets right
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_RANDOM = TraceFlags.RANDOM_TRACE_ID
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)


def _unset_status() -> Any:
    """The ``Status`` object a live span holds until ``set_status`` (ReadableSpan's default)."""
    return inspect.signature(ReadableSpan.__init__).parameters["status"].default


def _layout_known() -> bool:
    """Whether the SDK's classes are laid out as this module reads and builds them:
    ``SpanContext`` a tuple (trace id, span id, remote, flags, state, valid), ReadableSpan's
    parameters in the order we pass them, BoundedAttributes' fields those :func:`_bounded`
    fills in. Checked once: another layout disables the direct path."""
    context = SpanContext(1, 2, True, TraceFlags(3), None)
    parameters = list(inspect.signature(ReadableSpan.__init__).parameters)
    fields = set(vars(BoundedAttributes(1, {"k": "v"}, immutable=True)))
    return (tuple(context) == (1, 2, True, 3, context.trace_state, True)
            and parameters == ["self", *_READABLE_ORDER]
            and fields == {"_dict", "maxlen", "dropped", "max_value_len", "_lock", "_immutable"})


_READABLE_ORDER = ("name", "context", "parent", "resource", "attributes", "events", "links",
                   "kind", "instrumentation_info", "status", "start_time", "end_time",
                   "instrumentation_scope")
_UNSET: Any = _unset_status() if _IMPORTED else None
LAYOUT_KNOWN = _IMPORTED and _layout_known()


def _bounded(cleaned: dict[str, Any], maximum: int | None) -> BoundedAttributes:
    """A finished span's ``BoundedAttributes`` holding ``cleaned`` (clean values, no more
    than ``maximum``, no length limit): what the live span's holds, without cleaning every
    value a second time (the SDK's own ``__deepcopy__`` fills one in the same way)."""
    bounded = BoundedAttributes.__new__(BoundedAttributes)
    bounded._dict = cleaned
    bounded.maxlen = maximum
    bounded.dropped = 0
    bounded.max_value_len = None
    bounded._lock = threading.Lock()
    bounded._immutable = True
    return bounded


def _cleaned(value: Any) -> Any:
    """``value`` as ``BoundedAttributes`` (no length limit) stores it, or ``_SLOW``."""
    if isinstance(value, _PLAIN):
        return value
    kind = type(value)
    if (kind is list or kind is tuple) and all(isinstance(item, _PLAIN) for item in value):
        return tuple(value)
    return _SLOW


class DirectTracer:
    """Starts :class:`DirectSpan` for one SDK tracer that ``otel_probe`` allowed."""

    def __init__(self, tracer: Any, decisions: tuple[bool, bool, bool, bool, bool]) -> None:
        self.tracer = tracer
        self.multi = tracer.span_processor
        self.processors = self.multi._span_processors  # a new tuple when one is added
        self.limits = limits = tracer._span_limits
        self.sampler = tracer.sampler
        # Sampled? For: no valid parent, remote sampled/unsampled, local sampled/unsampled.
        (self._root, self._remote_sampled, self._remote_unsampled, self._local_sampled,
         self._local_unsampled) = decisions
        self._always = all(decisions)
        # Spans without events share an empty list of the same bound (ReadableSpan only
        # reads it); likewise for links, which we never add.
        self.no_events: Any = BoundedList(limits.max_events)
        self.no_links: Any = BoundedList(limits.max_links)
        self._hex: tuple[int, str] = (0, "")  # the last trace id, and as 32 hex digits

    def _sampled(self, valid: bool, remote: bool, flags: int) -> bool:
        if not valid:
            return self._root
        if remote:
            return self._remote_sampled if flags & _SAMPLED else self._remote_unsampled
        return self._local_sampled if flags & _SAMPLED else self._local_unsampled

    def start(self, name: str, parent: Any, kind: SpanKind, attributes: dict[str, Any],
              start_ns: int | None) -> DirectSpan | None:
        """What ``start_span`` would start under ``parent`` (a span context); None where the
        live path must do it: the tracer is disabled or the sampler drops the span.
        ``attributes`` are read at the span's end: the caller must not change them."""
        tracer = self.tracer
        if type(parent) is not SpanContext or not tracer._is_enabled():
            return None
        state: Any
        trace_id, _, remote, flags, state, valid = parent
        if not (self._always or self._sampled(valid, remote, flags)):
            return None
        ids = tracer.id_generator
        if valid:
            random = flags & _RANDOM
        else:  # a trace root: start_span's order of id calls
            trace_id, parent, state = ids.generate_trace_id(), None, None
            random = ids.is_trace_id_random()
        context = SpanContext(trace_id, ids.generate_span_id(), False,
                              _SAMPLED_RANDOM if random else _SAMPLED, state)
        trace_hex: str | None
        last_id, trace_hex = self._hex
        if not context[5]:  # is_valid (an id generator that gave 0)
            trace_hex = None
        elif last_id != trace_id:  # a run tree's spans share one: formatted once
            trace_hex = format(trace_id, "032x")
            self._hex = (trace_id, trace_hex)
        return DirectSpan(self, name, context, parent, kind, attributes,
                          start_ns if start_ns is not None else time_ns(), trace_hex)


class DirectSpan(trace.Span):
    """A sampled span noted as plain data until it ends (see the module doc).

    Only the sink calls it, with dicts it builds for the call and never touches again, whose
    keys are its attribute names (non-empty str).
    """

    def __init__(self, owner: DirectTracer, name: str, context: SpanContext,
                 parent: SpanContext | None, kind: SpanKind, attributes: dict[str, Any],
                 start_ns: int, trace_hex: str | None) -> None:
        tracer = owner.tracer
        self.trace_hex = trace_hex  # the trace id as ``run.trace_id`` holds it (if valid)
        self._owner = owner
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._start = start_ns
        self._attributes = attributes
        # Read at start, as start_span hands them to the live span.
        self._resource = tracer.resource
        self._info = tracer.instrumentation_info
        self._scope = tracer._instrumentation_scope
        self._updates: list[Any] = []  # set_attributes mappings and set_attribute pairs
        self._events: list[tuple[str, Any, int]] = []
        self._status: Status | None = None
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self._ended:
            self._updates.append(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if not self._ended:
            self._updates.append((key, value))

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not self._ended:  # the SDK's Event takes the time when the event is added
            self._events.append((name, attributes,
                                 timestamp if timestamp is not None else time_ns()))

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # The SDK's rule: an OK status is final, an UNSET one is ignored.
        if self._ended or (self._status is not None
                           and self._status.status_code is StatusCode.OK):
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Any = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        # The SDK's own method: it builds the event's attributes and calls self.add_event.
        SdkSpan.record_exception(self, exception, attributes,  # type: ignore[arg-type]
                                 timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        end_ns = end_time if end_time is not None else time_ns()
        owner = self._owner
        if owner.multi._span_processors is not owner.processors:
            self._replay(end_ns)  # a processor came or went while the span was open
            return
        if not owner.processors:
            return  # nobody to hand it to (on_end would loop over nothing)
        attributes = self._merged()
        if attributes is None:
            self._replay(end_ns)
            return
        events = self._finished_events() if self._events else owner.no_events
        # Positional: ReadableSpan's parameter order is checked at import (_READABLE_ORDER).
        owner.multi.on_end(ReadableSpan(
            self._name, self._context, self._parent, self._resource, attributes, events,
            owner.no_links, self._kind, self._info, self._status or _UNSET, self._start,
            end_ns, self._scope))

    def _finished_events(self) -> Any:
        """The events as ``Span.add_event`` builds them; their attributes without a second
        cleaning where no limit can bite and every value is plain."""
        limits = self._owner.limits
        maximum, length = limits.max_event_attributes, limits.max_attribute_length
        events: Any = BoundedList(limits.max_events)
        for name, given, timestamp in self._events:
            plain = dict(given) if given else {}
            if (length is None and (maximum is None or len(plain) <= maximum)
                    and "" not in plain and _KEPT.issuperset(map(type, plain.values()))):
                attributes = _bounded(plain, maximum)
            else:
                attributes = BoundedAttributes(maximum, given, max_value_len=length,
                                               immutable=True)
            events.append(Event(name, attributes, timestamp))
        return events

    def _merged(self) -> BoundedAttributes | None:
        """The finished attributes, or None when only the SDK's span can make them."""
        limits = self._owner.limits
        if limits.max_span_attribute_length is not None:
            return None
        merged = self._attributes.copy()
        for update in self._updates:
            if type(update) is tuple:
                key, value = update
                merged.pop(key, None)  # BoundedAttributes moves a key set again to the end
                merged[key] = value
                continue
            if not merged.keys().isdisjoint(update):
                for key in update:
                    merged.pop(key, None)
            merged.update(update)
        maximum = limits.max_span_attributes
        if (maximum is not None and len(merged) > maximum) or "" in merged:
            return None  # evictions (the SDK's order decides which), or a key it drops
        # Values are cleaned as they are set; a value set again replaces the cleaned one,
        # so only the last ones matter. Most are plain and stay as they are.
        if not _KEPT.issuperset(map(type, merged.values())):
            for key, value in merged.items():
                if type(value) not in _KEPT:
                    value = _cleaned(value)
                    if value is _SLOW:
                        return None
                    merged[key] = value  # same key: no resize while iterating
        return _bounded(merged, maximum)

    def _replay(self, end_ns: int) -> None:
        """Everything done to this span, done again to the SDK's own span, then ended."""
        owner = self._owner
        span = _Span(name=self._name, context=self._context, parent=self._parent,
                     sampler=owner.tracer.sampler, resource=self._resource,
                     attributes=self._attributes, span_processor=owner.multi, kind=self._kind,
                     instrumentation_info=self._info, limits=owner.limits,
                     instrumentation_scope=self._scope)
        # Started when only processors without an on_start were there: no on_start now.
        span._start_time = self._start
        if self._status is not None:
            span.set_status(self._status)
        for name, given, timestamp in self._events:
            span.add_event(name, given, timestamp)
        try:
            for update in self._updates:
                if type(update) is tuple:
                    span.set_attribute(*update)
                else:
                    span.set_attributes(update)
        finally:  # a value whose cleaning raised: ended all the same, as the sink's live span
            span.end(end_time=end_ns)
