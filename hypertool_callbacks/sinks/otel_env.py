"""Where spans go when the app configured no OpenTelemetry SDK itself.

An app activated by ``HYPERTOOL_CALLBACKS`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, but not
run under ``opentelemetry-instrument`` and without its own ``TracerProvider``, would otherwise
export nothing, silently. :class:`AppOrEnvProvider` decides per span:

1. the app's SDK provider, when one is registered globally (it may be set after activation);
2. else a private provider built, at the first span, from the standard variables:
   ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, any ``opentelemetry_traces_exporter`` entry
   point; ``none``), ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` / ``_PROTOCOL`` / ``_HEADERS``
   (read by the exporters themselves), ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``.
   Never registered globally: the app's own ``set_tracer_provider`` must keep working;
3. else the global (no-op) provider, with one warning that spans go nowhere.

The private provider is flushed by ``Tracker.shutdown()`` (start-up activation calls it at exit,
bounded), not by the SDK's unbounded exit hook.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlparse

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.util._decorator import _agnosticcontextmanager

_log = logging.getLogger(__name__)

ENV_EXPORTER = "OTEL_TRACES_EXPORTER"
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_warned_nowhere = threading.Event()
# trace.get_tracer_provider() looks the variable below up in os.environ on every call while
# no provider is set (a KeyError raised and caught: ~1 us, paid per root run). It is read once
# here; the provider itself is the API module's global, read on every call.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_GLOBAL = "_TRACER_PROVIDER"
_READABLE = hasattr(trace, _GLOBAL)  # else: the public function, whatever it costs
_PROXY = trace.ProxyTracerProvider()
# The current span is an entry of the context in a ContextVar (the default runtime context):
# read directly, a root run with no current span costs one lookup instead of six calls.
_RUNTIME = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_CONTEXT_VAR = (getattr(_RUNTIME, "_current_context", None)
                if type(_RUNTIME) is ContextVarsRuntimeContext else None)
_SPAN_KEY = getattr(trace.propagation, "_SPAN_KEY", None)
if not (isinstance(_CONTEXT_VAR, ContextVar) and isinstance(_SPAN_KEY, str)):
    _CONTEXT_VAR = None  # another runtime context: the public functions


def propagated_trace_id() -> str | None:
    """The trace id of the current span (e.g. from a W3C traceparent the app extracted), as
    32 hex digits; None when there is none or it is invalid."""
    if _CONTEXT_VAR is not None:
        span = _CONTEXT_VAR.get().get(_SPAN_KEY)
        if span is None or not isinstance(span, trace.Span):
            return None
    else:
        span = trace.get_current_span()
    current = span.get_span_context()
    return format(current.trace_id, "032x") if current.is_valid else None


def current_provider() -> trace.TracerProvider:
    """What ``trace.get_tracer_provider()`` answers now (the app's provider once it sets
    one, a proxy until then), without its per-call environment lookup."""
    if _READABLE and not _PROVIDER_FROM_ENV:
        provider: trace.TracerProvider | None = getattr(trace, _GLOBAL)
        if provider is None:
            return _PROXY
        return provider
    return trace.get_tracer_provider()


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the ``OTEL_*`` variables ask for; [] when they ask for none.

    ``OTEL_TRACES_EXPORTER`` decides when set; else an OTLP endpoint variable means ``otlp``
    (the SDK's default exporter, which nobody would configure an endpoint for otherwise)."""
    raw = environ.get(ENV_EXPORTER)
    if raw is not None and raw.strip():
        names = [name.strip().lower() for name in raw.split(",") if name.strip()]
        return [name for name in names if name != "none"]
    return ["otlp"] if any(environ.get(var) for var in ENDPOINT_VARS) else []


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """``grpc`` or ``http/protobuf``: the protocol variable, else guessed from the endpoint's
    port (4317 is OTLP/gRPC's), else the specification's default, ``http/protobuf``."""
    for var in PROTOCOL_VARS:
        if environ.get(var):
            return environ[var].strip().lower()
    endpoint = next((environ[var] for var in ENDPOINT_VARS if environ.get(var)), "")
    try:
        port = urlparse(endpoint).port
    except ValueError:
        port = None
    return "grpc" if port == 4317 else "http/protobuf"


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        if otlp_protocol(environ) == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from importlib.metadata import entry_points

    for entry_point in entry_points(group="opentelemetry_traces_exporter", name=name):
        exporter: SpanExporter = entry_point.load()()
        return exporter
    raise ValueError(f"unknown span exporter {name!r} in {ENV_EXPORTER}")


def env_provider(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A private SDK provider exporting as the ``OTEL_*`` variables say; None if they say
    nothing. An exporter that cannot be built is logged and skipped."""
    env = os.environ if environ is None else environ
    names = exporter_names(env)
    if not names:
        return None
    attributes = {SERVICE_NAME: env["OTEL_SERVICE_NAME"]} if env.get("OTEL_SERVICE_NAME") else {}
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    for name in names:
        try:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
        except Exception as exc:  # a missing exporter package must not stop the app
            _log.warning("hypertool: cannot export spans with %r: %r", name, exc)
    _log.info("hypertool: the app has no OpenTelemetry SDK provider; exporting spans with %s "
              "from the OTEL_* variables", ", ".join(names))
    return provider


class AppOrEnvProvider(trace.TracerProvider):
    """The app's SDK provider if it has one, else one built from ``OTEL_*`` (see module)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._built = False
        self._own: TracerProvider | None = None

    def get_tracer(self, instrumenting_module_name: str,
                   instrumenting_library_version: str | None = None,
                   schema_url: str | None = None,
                   attributes: Any = None) -> trace.Tracer:
        return _FollowingTracer(self, (instrumenting_module_name, instrumenting_library_version,
                                       schema_url, attributes))

    def resolve(self) -> trace.TracerProvider:
        current = current_provider()
        if isinstance(current, TracerProvider):
            return current
        if not self._built:
            with self._lock:
                if not self._built:
                    self._own = env_provider(self._environ)
                    self._built = True
                    if self._own is None and not _warned_nowhere.is_set():
                        _warned_nowhere.set()  # once per process, however many trackers
                        _log.warning(
                            "hypertool: OpenTelemetry spans go nowhere: the app set no SDK "
                            "TracerProvider and no OTEL_EXPORTER_OTLP_ENDPOINT / "
                            "OTEL_TRACES_EXPORTER is set (or run under opentelemetry-instrument; "
                            "[otel] enabled = false silences this)")
        return self._own or current

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        done = True
        for provider in (self._own, current_provider()):
            if isinstance(provider, TracerProvider):
                done = provider.force_flush(timeout_millis) and done
        return done


class _FollowingTracer(trace.Tracer):
    """A tracer of whichever provider :meth:`AppOrEnvProvider.resolve` picks, per span."""

    def __init__(self, owner: AppOrEnvProvider, args: tuple[Any, ...]) -> None:
        self._owner = owner
        self._args = args
        self._provider: trace.TracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        provider = self._owner.resolve()
        if provider is not self._provider:
            self._provider = provider
            self._tracer = provider.get_tracer(*self._args)
        return self._tracer

    def start_span(self, name: str, context: Any = None,
                   kind: trace.SpanKind = trace.SpanKind.INTERNAL, attributes: Any = None,
                   links: Sequence[trace.Link] | None = None, start_time: int | None = None,
                   record_exception: bool = True,
                   set_status_on_exception: bool = True) -> trace.Span:
        return self._current().start_span(name, context, kind, attributes, links, start_time,
                                          record_exception, set_status_on_exception)

    @_agnosticcontextmanager  # the API's own decorator (what its Tracer declares)
    def start_as_current_span(self, name: str, context: Any = None,
                              kind: trace.SpanKind = trace.SpanKind.INTERNAL,
                              attributes: Any = None, links: Sequence[trace.Link] | None = None,
                              start_time: int | None = None, record_exception: bool = True,
                              set_status_on_exception: bool = True,
                              end_on_exit: bool = True) -> Iterator[trace.Span]:
        with self._current().start_as_current_span(
                name, context, kind, attributes, links, start_time, record_exception,
                set_status_on_exception, end_on_exit) as span:
            yield span
