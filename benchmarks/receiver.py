"""A minimal OTLP/HTTP sink for the benchmark's Langfuse exports: answers 200 to every POST
and keeps nothing (the tests' ``tests/otlp_receiver.py`` decodes and keeps every request;
a benchmark only needs a server that answers). Runs in its own process so that its work is
not counted in the measured one: ``python benchmarks/receiver.py [MODE]`` prints its URL, then
serves until its standard input closes. MODE: ``ok`` (200, the default), an HTTP status such as
``401`` or ``503``, or ``hang`` (reads the request, never answers)."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# An empty ExportTraceServiceResponse is zero bytes of protobuf.
_EMPTY = b""
_mode = "ok"
_closing = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if _mode == "hang":
            _closing.wait()
            return
        if _mode != "ok":
            self.send_response(int(_mode))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(_EMPTY)))
        self.end_headers()
        self.wfile.write(_EMPTY)


def main() -> None:
    global _mode
    _mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # the parent closes our stdin (or exits) when it is done
    _closing.set()
    server.shutdown()


if __name__ == "__main__":
    main()
