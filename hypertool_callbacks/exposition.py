"""Serving ``/metrics``: loopback by default, multiprocess-aware, one server per port.

What is exposed is a *view* of the registry: without ``_created`` series unless asked for
(``metrics_created_series``). prometheus_client's own switch for that,
``disable_created_metrics()`` / ``PROMETHEUS_DISABLE_CREATED_SERIES``, is process-wide and would
change the app's own endpoints too; the view changes only what hypertool serves, writes and pushes.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Metric, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from hypertool_callbacks.errors import MetricsPortError

_log = logging.getLogger(__name__)

# Families whose samples include ``<name>_created`` (the time the series started).
_WITH_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


class WithoutCreated:
    """A collector view of ``source`` without the ``_created`` samples (exemplars kept)."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            if family.type in _WITH_CREATED:
                created = family.name + "_created"
                kept = [sample for sample in family.samples if sample.name != created]
                if len(kept) != len(family.samples):
                    family = _copy(family, kept)
            yield family

    def restricted_registry(self, names: Iterable[str]) -> WithoutCreated:
        """``/metrics?name[]=...`` support, as ``CollectorRegistry`` has it."""
        restrict = getattr(self._source, "restricted_registry", None)
        return WithoutCreated(restrict(names)) if restrict is not None else self


def _copy(family: Metric, samples: list[Sample]) -> Metric:
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = samples
    return copy


def scrape_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """What to expose: the given registry, or in multiprocess mode a merged view of all."""
    if registry is not None:
        return registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def exposed(registry: CollectorRegistry | None = None,
            created_series: bool = False) -> Collector:
    """The collector hypertool serves, writes to a textfile or pushes."""
    source = scrape_registry(registry)
    return source if created_series else WithoutCreated(source)


def _created_default() -> bool:
    from hypertool_callbacks.config import load_config

    return load_config().metrics_created_series


@dataclass(frozen=True, slots=True)
class _Served:
    server: WSGIServer
    thread: threading.Thread
    addr: str
    registry: CollectorRegistry | None
    created_series: bool


_lock = threading.Lock()
_served: dict[int, _Served] = {}  # by bound port


def serve_metrics(
    port: int = 9464,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    *,
    created_series: bool | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Start a ``/metrics`` endpoint in a daemon thread; ``port=0`` picks a free port
    (read it from ``server.server_port``). Bound to 127.0.0.1 unless told otherwise.

    Idempotent per port: asking again for a port this process already serves (the same
    address and registry) returns the same server, so activation by ``metrics_port`` and an
    explicit call do not collide. A port taken by anything else raises
    :class:`MetricsPortError` (an ``OSError``) with one clear sentence.
    ``created_series`` (default: the ``metrics_created_series`` key, false) keeps the
    ``_created`` series.

    Example::

        server, _ = serve_metrics(0)
        print(f"http://127.0.0.1:{server.server_port}/metrics")
    """
    created = _created_default() if created_series is None else created_series
    with _lock:
        served = _served.get(port) if port else None
        if served is not None and not served.thread.is_alive():  # shut down by its owner
            _forget(served)
            served = None
        if served is not None:
            if (served.addr, served.registry, served.created_series) == (addr, registry, created):
                return served.server, served.thread
            raise MetricsPortError(
                f"cannot serve /metrics on {addr}:{port}: this process already serves other "
                f"metrics there (on {served.addr}); use another port, or port 0 for a free one",
                errno.EADDRINUSE)
        try:
            server, thread = start_http_server(port, addr=addr,
                                               registry=exposed(registry, created))
        except OSError as exc:
            hint = ("the port is in use (another process, or another copy of this app); "
                    "pick another port, or 0 for any free port" if exc.errno == errno.EADDRINUSE
                    else exc.strerror or str(exc))
            raise MetricsPortError(f"cannot serve /metrics on {addr}:{port}: {hint}",
                                   exc.errno) from None
        _served[server.server_port] = _Served(server, thread, addr, registry, created)
    return server, thread


def stop_metrics(server: WSGIServer) -> None:
    """Stop a server started by :func:`serve_metrics` and release its port."""
    with _lock:
        served = _served.get(server.server_port)
        if served is not None and served.server is server:
            _forget(served)
            return
    server.shutdown()
    server.server_close()


def _forget(served: _Served) -> None:
    # Called with the lock held.
    _served.pop(served.server.server_port, None)
    served.server.shutdown()
    served.server.server_close()


def serve_metrics_if_free(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None,
    *, created_series: bool | None = None,
) -> WSGIServer | None:
    """:func:`serve_metrics` for activation paths: a taken port (a second worker, a reloader
    child) is one warning line, not a failure. Returns the server or None."""
    try:
        server, _ = serve_metrics(port, addr, registry, created_series=created_series)
    except OSError as exc:
        _log.warning("hypertool-callbacks: %s", exc)
        return None
    _log.info("hypertool-callbacks: metrics on http://%s:%d/metrics", addr, server.server_port)
    return server
