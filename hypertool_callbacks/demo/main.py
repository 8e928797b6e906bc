"""``hypertool-callbacks demo``: both demo workflows in a loop, metrics on 127.0.0.1."""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import OtelSettings
from hypertool_callbacks.errors import MetricsPortError
from hypertool_callbacks.exposition import serve_metrics, stop_metrics
from hypertool_callbacks.runtime import build_tracker

_log = logging.getLogger(__name__)


DEFAULT_PORT = 9464
SPANS_FILE = "hypertool-spans.jsonl"


def default_spans_file() -> Path:
    """Where the demo's spans go: ``$XDG_STATE_HOME/hypertool-callbacks/`` (default
    ``~/.local/state``), else the temp dir; never the working directory (often a checkout)."""
    state = os.environ.get("XDG_STATE_HOME")
    try:
        base = Path(state) if state else Path.home() / ".local" / "state"
        folder = base / "hypertool-callbacks"
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # no home, read-only home
        folder = Path(tempfile.gettempdir())
        return folder / f"hypertool-spans-{os.getuid() if hasattr(os, 'getuid') else 0}.jsonl"
    return folder / SPANS_FILE


def run_demo(*, port: int | None = None, addr: str = "127.0.0.1", iterations: int = 0,
             interval: float = 2.0, scenario: str = "all", spans: str = "file",
             spans_file: str | None = None, keep_serving: bool = False) -> int:
    from hypertool_callbacks.demo import pipeline, team

    otel = OtelSettings(
        enabled=spans != "none",
        console=spans == "console",
        jsonl_path=(spans_file or str(default_spans_file())) if spans == "file" else None,
    )
    config = pipeline.CONFIG.model_copy(update={"otel": otel})
    try:
        server = _serve(port, addr)
    except MetricsPortError as exc:
        print(f"hypertool-callbacks demo: {exc}", file=sys.stderr, flush=True)
        return 2
    tracker = build_tracker(config)
    handler = HypertoolCallbackHandler(tracker)
    url = f"http://{addr}:{server.server_port}/metrics"
    print(f"hypertool-callbacks demo: metrics at {url}", flush=True)
    if otel.jsonl_path:
        print(f"  spans appended to {otel.jsonl_path} (moved to .1 past "
              f"{otel.jsonl_max_bytes // (1024 * 1024)} MB)", flush=True)
    print("  try: curl -s " + url + " | grep -E 'persona_switches|quality_gate|budget|cost_usd'",
          flush=True)
    print("  Ctrl-C to stop", flush=True)
    scenarios: list[tuple[str, Any, Any]] = []
    if scenario in ("all", "pipeline"):
        scenarios.append(("software-delivery (configured personas)", pipeline.build(),
                          pipeline.run_once))
    if scenario in ("all", "team"):
        scenarios.append(("research-team (zero configuration)", team.build(), team.run_once))
    try:
        try:
            done, interrupted = _iterate(scenarios, handler, iterations, interval)
        finally:
            tracker.shutdown(config.exit_flush_seconds)  # spans, as a short script's exit
        print(f"hypertool-callbacks demo: {done} iteration(s) done", flush=True)
        if keep_serving and not interrupted:
            print(f"  still serving {url} (Ctrl-C to stop)", flush=True)
            _sleep_until_interrupted()
    finally:
        stop_metrics(server)
    return 0


def _iterate(scenarios: list[tuple[str, Any, Any]], handler: HypertoolCallbackHandler,
             iterations: int, interval: float) -> tuple[int, bool]:
    """Run the scenarios ``iterations`` times (0: until Ctrl-C): (runs done, interrupted)."""
    done = 0
    try:
        while iterations <= 0 or done < iterations:
            for name, app, run_once in scenarios:
                started = time.perf_counter()
                run_once(app, [handler])
                _log.info("ran %s in %.0f ms", name, (time.perf_counter() - started) * 1000)
            done += 1
            if iterations <= 0 or done < iterations:
                time.sleep(interval)
    except KeyboardInterrupt:
        return done, True
    return done, False


def _sleep_until_interrupted() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _serve(port: int | None, addr: str) -> WSGIServer:
    """The port asked for; without one, 9464 or, when that is busy, any free port."""
    try:
        server, _ = serve_metrics(DEFAULT_PORT if port is None else port, addr)
    except MetricsPortError as exc:
        if port is not None or exc.errno != errno.EADDRINUSE:
            raise
        print(f"hypertool-callbacks demo: port {DEFAULT_PORT} is busy; using a free port",
              flush=True)
        server, _ = serve_metrics(0, addr)
    return server
