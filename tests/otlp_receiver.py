"""A local OTLP/HTTP trace receiver for tests: decodes what exporters really send.

Listens on 127.0.0.1 (a free port), accepts POSTs on any path, gunzips when asked, decodes
``ExportTraceServiceRequest`` protobuf and keeps every request with its path and headers.
``mode`` makes it misbehave: ``"ok"`` (200), an HTTP status code such as 401/503, or
``"hang"`` (reads the request, never answers until closed).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    request: ExportTraceServiceRequest

    def spans(self) -> Iterator[Any]:
        for resource_spans in self.request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                yield from scope_spans.spans


class OTLPReceiver:
    def __init__(self, mode: str | int = "ok") -> None:
        self.mode = mode
        self.received: list[Received] = []
        self.posts = 0  # every POST, answered or not (``received`` keeps the 200s)
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts += 1
                if receiver.mode == "hang":
                    receiver._closing.wait(30)
                    return
                if isinstance(receiver.mode, int):
                    self.send_response(receiver.mode)
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, request)
                )
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[Any]:
        return [span for received in self.received for span in received.spans()]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Poll until at least ``count`` spans arrived (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if len(spans) >= count:
                return spans
            time.sleep(0.05)
        return self.spans()
