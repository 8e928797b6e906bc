"""When the OpenTelemetry sink may build finished spans itself (``otel_direct``).

:func:`probe` allows it only for a tracer whose live spans the direct ones provably equal
(otherwise the sink keeps live spans, which always work):

* the SDK's own ``Tracer`` (the classes laid out as ``otel_direct`` expects), without the
  SDK's self-metrics (they count started and live spans);
* a static sampler (always on / always off), or ``ParentBased`` whose five delegates are: the
  decision then follows from the parent's flags alone, the trace state is the parent's and
  the attributes are exactly those given. Ratio samplers, custom ones, record-only: refused;
* processors: only ``SimpleSpanProcessor`` and ``BatchSpanProcessor`` (their ``on_start`` and
  ``_on_ending`` do nothing) in the SDK's synchronous or concurrent multi-processor. Another
  processor (the app's own, Langfuse's) may need ``on_start``: refused.

:class:`DirectPaths` asks again when the tracer, its processors, sampler or limits change.
"""

from __future__ import annotations

import logging
from typing import Any

from hypertool_callbacks.sinks.otel_direct import LAYOUT_KNOWN, DirectTracer

_log = logging.getLogger(__name__)

try:  # the SDK's pieces we check against (private names: a missing one disables this path)
    from opentelemetry.sdk.trace import (
        ConcurrentMultiSpanProcessor,
        SynchronousMultiSpanProcessor,
        Tracer,
    )
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler

    _IMPORTED = True
except ImportError:  # pragma: no cover - another SDK layout
    _IMPORTED = False

_PROCESSORS = (SimpleSpanProcessor, BatchSpanProcessor) if _IMPORTED else ()
_MULTI = (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor) if _IMPORTED else ()


def _decision(sampler: Any) -> bool | None:
    """A static sampler's decision (sampled or dropped); None for any other sampler."""
    if (isinstance(sampler, StaticSampler)
            and type(sampler).should_sample is StaticSampler.should_sample):
        if sampler._decision is Decision.RECORD_AND_SAMPLE:
            return True
        if sampler._decision is Decision.DROP:
            return False
    return None


def _decisions(sampler: Any) -> tuple[bool, bool, bool, bool, bool] | None:
    static = _decision(sampler)
    if static is not None:
        return (static,) * 5
    if not (isinstance(sampler, ParentBased)
            and type(sampler).should_sample is ParentBased.should_sample):
        return None
    found = tuple(_decision(delegate) for delegate in (
        sampler._root, sampler._remote_parent_sampled, sampler._remote_parent_not_sampled,
        sampler._local_parent_sampled, sampler._local_parent_not_sampled))
    if None in found:
        return None
    return found  # type: ignore[return-value]


def probe(tracer: Any) -> DirectTracer | None:
    """A :class:`DirectTracer` for ``tracer`` when its spans provably match the live ones
    (see the module doc); None otherwise."""
    if not (_IMPORTED and LAYOUT_KNOWN):
        return None
    try:
        return _probe(tracer)
    except Exception as exc:  # an unexpected layout: the live spans, which always work
        _log.debug("hypertool: OTel direct spans off: %r", exc)
        return None


def _probe(tracer: Any) -> DirectTracer | None:
    if type(tracer) is not Tracer:
        return None
    if type(tracer._tracer_metrics) is not NoOpTracerMetrics:  # SDK self-metrics count spans
        return None
    decisions = _decisions(tracer.sampler)
    if decisions is None or not any(decisions):
        return None
    multi = tracer.span_processor
    if type(multi) not in _MULTI:
        return None
    if any(type(processor) not in _PROCESSORS for processor in multi._span_processors):
        return None
    if not (callable(tracer._is_enabled) and callable(tracer.id_generator.generate_span_id)):
        return None
    return DirectTracer(tracer, decisions)


class DirectPaths:
    """:func:`probe` once per tracer, again when its processors, sampler or limits change."""

    def __init__(self) -> None:
        # (tracer, its processors when probed, the answer): one tuple, replaced whole.
        self._last: tuple[Any, Any, DirectTracer | None] = (None, None, None)

    def get(self, tracer: Any) -> DirectTracer | None:
        last, processors, direct = self._last
        if tracer is last:
            if direct is not None:
                if (direct.multi._span_processors is direct.processors  # what probe checked
                        and tracer.sampler is direct.sampler
                        and tracer._span_limits is direct.limits):
                    return direct
            elif _processors(tracer) is processors:
                return None
        direct = probe(tracer)
        self._last = (tracer, _processors(tracer), direct)
        return direct


def _processors(tracer: Any) -> Any:
    return getattr(getattr(tracer, "span_processor", None), "_span_processors", None)
