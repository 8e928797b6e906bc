"""The Langfuse connection: SDK client on a dedicated tracer provider, export failures counted.

Why a dedicated ``TracerProvider``: without one the SDK attaches to the global provider, so
the app's exporters would also receive Langfuse spans, and Langfuse would receive every span
with a ``gen_ai.*`` attribute (our own GenAI spans included): each LLM call twice. On its own
provider, with an export filter that keeps only Langfuse-scope spans, each call is exported once.

Why our own OTLP exporter: the SDK's exporter reports only success or failure; the alert on
``hypertool_langfuse_export_failures_total{reason}`` needs to know why (401 vs. dead server).
It is configured as the SDK configures its own (endpoint, Basic auth, SDK headers, gzip).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from langfuse import Langfuse
from langfuse import __version__ as langfuse_version
from langfuse.span_filter import is_langfuse_span
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from prometheus_client import REGISTRY, CollectorRegistry

from hypertool_callbacks import catalog
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.safety import RateLimitedLog
from hypertool_callbacks.sinks.langfuse_env import ENV_PUBLIC_KEY, ENV_SECRET_KEY
from hypertool_callbacks.sinks.langfuse_media import skip_unneeded_media_checks
from hypertool_callbacks.sinks.langfuse_wire import WireSpanExporter
from hypertool_callbacks.sinks.prometheus import build_metrics

_log = logging.getLogger(__name__)

ENV_BASE_URL = "LANGFUSE_BASE_URL"
ENV_HOST = "LANGFUSE_HOST"
"""Older name of ``LANGFUSE_BASE_URL`` (used when that is not set)."""
ENV_TIMEOUT = "LANGFUSE_TIMEOUT"
"""Seconds one export (all its retries included) may take; default 5."""
ENV_SAMPLE_RATE = "LANGFUSE_SAMPLE_RATE"
"""Share of traces sent, 0..1; default 1."""
ENV_TRACES_PATH = "LANGFUSE_OTEL_TRACES_EXPORT_PATH"
"""Path of the OTLP endpoint under the base URL, for proxies (default below)."""
DEFAULT_BASE_URL = "https://cloud.langfuse.com"
TRACES_PATH = "/api/public/otel/v1/traces"


class _RecordingSession(requests.Session):
    """Remembers, per thread, how its last request ended (the exporter only says FAILURE)."""

    def __init__(self) -> None:
        super().__init__()
        self._last = threading.local()

    def outcome(self) -> str | None:
        return getattr(self._last, "outcome", None)

    def request(self, method: str, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        self._last.outcome = None
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout:  # before ConnectionError: ConnectTimeout is both
            self._last.outcome = "timeout"
            raise
        except requests.ConnectionError:
            self._last.outcome = "connection"
            raise
        except Exception:
            self._last.outcome = "error"
            raise
        status = int(response.status_code)
        self._last.outcome = f"http_{status}" if status >= 400 else None
        return response


class _QuietDuringOurExports(logging.Filter):
    """Drops the OTLP exporter's own log records while *our* export runs on this thread (the
    app's exporters keep logging): a dead server must cost one warning a minute, not one per
    batch."""

    def __init__(self) -> None:
        super().__init__()
        self.active = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.active, "on", False)


_QUIET = _QuietDuringOurExports()
logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").addFilter(_QUIET)


class CountingSpanExporter(SpanExporter):
    """An OTLP/HTTP exporter that counts each failed batch by reason in a Prometheus counter.

    Reasons: ``http_<status>`` (e.g. ``http_401``, ``http_503`` after retries), ``timeout``
    (no answer in time), ``connection`` (refused, DNS, TLS), ``error`` or ``other``.
    """

    def __init__(self, endpoint: str, headers: Mapping[str, str], timeout: float,
                 registry: CollectorRegistry | None = None) -> None:
        self._session = _RecordingSession()
        self._inner = WireSpanExporter(endpoint=endpoint, headers=dict(headers), timeout=timeout,
                                       compression=Compression.Gzip, session=self._session)
        self.reads_wire_spans = self._inner.fast
        metrics = build_metrics(REGISTRY if registry is None else registry)
        self._failures = metrics[catalog.LANGFUSE_EXPORT_FAILURES.name]
        self._warn = RateLimitedLog(_log)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        _QUIET.active.on = True  # the inner exporter logs every failed batch: we rate-limit
        try:
            result = self._inner.export(spans)
        except Exception:
            self._failed("error")
            raise
        finally:
            _QUIET.active.on = False
        if result is not SpanExportResult.SUCCESS:
            self._failed(self._session.outcome() or "other")
        return result

    def _failed(self, reason: str) -> None:
        self._failures.labels(reason).inc()  # a failure path: no child cache needed
        self._warn.warning(f"export:{reason}", "hypertool: Langfuse export failed (%s); those "
                           "observations are dropped", reason)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


@dataclass(frozen=True, slots=True)
class Connection:
    """A Langfuse client we built, on the tracer provider we made for it, and the tracer our
    observations start from."""

    client: Langfuse
    provider: TracerProvider
    tracer: trace.Tracer
    # The export joins the bytes of WireReadySpans (langfuse_wire) as they come: no SDK
    # exporter in between that would copy them into plain spans.
    wire: bool = False


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        _log.warning("hypertool: ignoring %s=%r (not a number)", name, raw)
        return default


def connect(
    *,
    public_key: str | None = None,
    secret_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """A Langfuse client on its own tracer provider, configured like the SDK from the
    ``LANGFUSE_*`` env vars (arguments win). Raises :class:`ConfigError` without keys."""
    env = os.environ if environ is None else environ
    public_key = public_key or env.get(ENV_PUBLIC_KEY)
    secret_key = secret_key or env.get(ENV_SECRET_KEY)
    if not public_key or not secret_key:
        raise ConfigError(f"Langfuse needs {ENV_PUBLIC_KEY} and {ENV_SECRET_KEY}")
    base_url = (base_url or env.get(ENV_BASE_URL) or env.get(ENV_HOST)
                or DEFAULT_BASE_URL).rstrip("/")
    timeout = timeout if timeout is not None else _number(env, ENV_TIMEOUT, 5.0)
    rate = min(1.0, max(0.0, _number(env, ENV_SAMPLE_RATE, 1.0)))
    auth = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {auth}",
        "x-langfuse-sdk-name": "python",
        "x-langfuse-sdk-version": langfuse_version,
        "x-langfuse-public-key": public_key,
        "x-langfuse-ingestion-version": "4",
    }
    path = env.get(ENV_TRACES_PATH)
    endpoint = f"{base_url}/{path.lstrip('/')}" if path else base_url + TRACES_PATH
    exporter = CountingSpanExporter(endpoint, headers, timeout, registry)
    # Ratio sampling on the trace id keeps whole traces (our roots have a sampled parent,
    # which a parent-based sampler would always follow). Exit is handled by the sink.
    provider = TracerProvider(sampler=TraceIdRatioBased(rate) if rate < 1.0 else None,
                              shutdown_on_exit=False)
    client = Langfuse(
        public_key=public_key, secret_key=secret_key, base_url=base_url,
        timeout=max(1, round(timeout)), tracer_provider=provider, span_exporter=exporter,
        should_export_span=is_langfuse_span,
    )
    # One client per public key: a second constructor call returns the app's own client,
    # whose provider and export filter already send every GenAI span (ours included, when we
    # share its provider) to Langfuse. A second stream of observations would duplicate them.
    resources = getattr(client, "_resources", None)
    if resources is not None and getattr(resources, "tracer_provider", provider) is not provider:
        provider.shutdown()
        raise ConfigError(
            f"the app already sends to Langfuse with public key {public_key}: hypertool's "
            "Langfuse sink stays off to avoid duplicate observations (hypertool's GenAI spans "
            "reach Langfuse through the app's client when they share its tracer provider)")
    tracer = getattr(client, "_otel_tracer", None)  # private in 5.x: checked, not assumed
    if tracer is None or not hasattr(tracer, "start_span"):
        raise ConfigError(f"unsupported Langfuse SDK {langfuse_version}: client has no tracer")
    skipped = [skip_unneeded_media_checks(processor)  # only on the provider we made
               for processor in getattr(provider._active_span_processor, "_span_processors", ())]
    return Connection(client, provider, tracer,
                      wire=skipped == [True] and exporter.reads_wire_spans)


def run_bounded(work: Callable[[], object], timeout: float, name: str) -> bool:
    """Run ``work`` in a daemon thread; True if it finished within ``timeout`` seconds.

    The SDK's flush blocks for as long as an export retries (seconds against a dead or
    silent server); a daemon thread lets the caller, and interpreter exit, move on.
    """

    def target() -> None:
        try:
            work()
        except Exception as exc:
            _log.warning("hypertool: Langfuse %s failed: %r", name, exc)

    thread = threading.Thread(target=target, name=f"hypertool-langfuse-{name}", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    return not thread.is_alive()
