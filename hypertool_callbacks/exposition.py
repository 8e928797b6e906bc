"""Serving ``/metrics``: loopback by default, multiprocess-aware."""

from __future__ import annotations

import logging
import os
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

_log = logging.getLogger(__name__)


def scrape_registry(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """What to expose: the given registry, or in multiprocess mode a merged view of all."""
    if registry is not None:
        return registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def serve_metrics(
    port: int = 9464,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Start a ``/metrics`` endpoint in a daemon thread; ``port=0`` picks a free port
    (read it from ``server.server_port``). Bound to 127.0.0.1 unless told otherwise."""
    server, thread = start_http_server(port, addr=addr, registry=scrape_registry(registry))
    return server, thread


def serve_metrics_if_free(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None,
) -> WSGIServer | None:
    """:func:`serve_metrics` for activation paths: a taken port (a second worker, a reloader
    child, metrics already served) is a warning, not a failure. Returns the server or None."""
    try:
        server, _ = serve_metrics(port, addr, registry)
    except OSError as exc:
        _log.warning("hypertool-callbacks: cannot serve metrics on port %d: %s", port, exc)
        return None
    _log.info("hypertool-callbacks: metrics on http://%s:%d/metrics", addr, server.server_port)
    return server
