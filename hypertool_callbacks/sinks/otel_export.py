"""Where hypertool's spans can go when the app has no tracer provider: the console or a
JSON-lines file; and a flush that cannot hang the app."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hypertool_callbacks.config import OtelSettings
from hypertool_callbacks.safety import RateLimitedLog

_log = logging.getLogger(__name__)


def local_provider(settings: OtelSettings) -> trace.TracerProvider | None:
    """A private SDK provider printing to the console and/or a JSON-lines file, when asked for
    and the app has no provider of its own; else None (the global one is used).

    Never registered globally: activation may run at interpreter start-up, before the app sets
    its provider, and registering ours would make the app's own ``set_tracer_provider`` fail.
    """
    if not settings.console and not settings.jsonl_path:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        _log.info("hypertool: the app has its own tracer provider; otel.console/jsonl_path "
                  "are ignored")
        return None
    provider = TracerProvider()
    if settings.console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    if settings.jsonl_path:
        exporter = JsonLinesSpanExporter(settings.jsonl_path, max_bytes=settings.jsonl_max_bytes)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def flush(provider: Any, timeout: float) -> None:
    """``provider.force_flush()`` bounded by ``timeout`` (the SDK's batch flush exports on the
    calling thread and ignores its own timeout when the endpoint hangs)."""
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is None:
        return
    worker = threading.Thread(target=force_flush, args=(int(timeout * 1000),), daemon=True,
                              name="hypertool-otel-flush")
    worker.start()
    worker.join(timeout)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one line of JSON (the SDK's own span encoding).

    Bounded: when a batch would take the file past ``max_bytes``, the file first moves to
    ``<path>.1`` (replacing the previous backup), so at most about twice ``max_bytes`` stay on
    disk. ``max_bytes=0``: never rotate.

    Example::

        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter("spans.jsonl")))
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = 10 * 1024 * 1024) -> None:
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._warn = RateLimitedLog(_log)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(span.to_json(indent=None) + "\n" for span in spans).encode("utf-8")
        try:
            with self._lock:
                self._rotate(len(data))
                with open(self.path, "ab") as file:
                    file.write(data)
        except OSError as exc:
            self._warn.warning("jsonl", "hypertool: cannot write spans to %s: %r", self.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _rotate(self, incoming: int) -> None:
        if not self.max_bytes:
            return
        try:
            size = os.path.getsize(self.path)
        except OSError:  # not there yet
            return
        if size and size + incoming > self.max_bytes:
            os.replace(self.path, self.path + ".1")

    def shutdown(self) -> None:
        """Nothing to release: the file is opened per batch."""
