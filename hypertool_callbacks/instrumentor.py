"""Zero-code activation through OpenTelemetry: ``opentelemetry-instrument python app.py``.

The package registers :class:`HypertoolInstrumentor` under the ``opentelemetry_instrumentor``
entry point group, so the OpenTelemetry launcher (which has already built the SDK provider from
the ``OTEL_*`` variables by then) turns hypertool on for an unmodified app (LangChain/LangGraph,
LlamaIndex: whichever it imports). It can also be used by hand::

    HypertoolInstrumentor().instrument(tracer_provider=provider)
    ...
    HypertoolInstrumentor().uninstrument()

Keyword arguments of ``instrument()``: ``tracer_provider`` (default: the global one),
``config`` (default: :func:`load_config`), ``registry`` (Prometheus; default: the
prometheus_client default registry) and ``mask`` (content masking hook, see ``OtelSink``).
With ``metrics_port`` configured, ``/metrics`` is served too (``metrics_server``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any
from wsgiref.simple_server import WSGIServer

# The module is marked ``# type: ignore`` upstream, so mypy sees it as untyped.
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from hypertool_callbacks import runtime
from hypertool_callbacks.config import load_config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.exposition import serve_metrics_if_free

_log = logging.getLogger(__name__)

# BaseInstrumentor requires *all* of these installed: naming a framework would turn
# hypertool off in an app that has the other one only (LlamaIndex without LangChain). The
# frameworks registry attaches to whichever is there.
_INSTRUMENTS: tuple[str, ...] = ()


class HypertoolInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Attaches hypertool to every LangChain / LlamaIndex run, with an OTel sink first."""

    _previous: Tracker | None = None
    _active = False
    metrics_server: WSGIServer | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        try:
            tracker = _build_tracker(kwargs)
        except Exception:
            # Raising here would also stop the launcher from loading the instrumentors after us.
            _log.exception("hypertool-callbacks: not instrumenting; the app runs without it")
            return
        self._previous = runtime.set_tracker(tracker)
        self._active = True
        runtime.instrument()
        port = tracker.config.metrics_port
        if port is not None:  # maybe already served by HYPERTOOL_CALLBACKS start-up
            self.metrics_server = serve_metrics_if_free(
                port, tracker.config.metrics_addr, kwargs.get("registry"),
                created_series=tracker.config.metrics_created_series)

    def _uninstrument(self, **kwargs: Any) -> None:
        if not self._active:
            return
        runtime.uninstrument()
        built = runtime.set_tracker(self._previous)
        if built is not None:
            built.shutdown(5.0)  # the tracker we built: flush what it holds
        self._previous, self._active = None, False
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None


def _build_tracker(kwargs: dict[str, Any]) -> Tracker:
    config = kwargs.get("config") or load_config()
    sinks = runtime.default_sinks(config, kwargs.get("registry"),
                                  tracer_provider=kwargs.get("tracer_provider"),
                                  mask=kwargs.get("mask"))
    return runtime.build_tracker(config, sinks=sinks)
