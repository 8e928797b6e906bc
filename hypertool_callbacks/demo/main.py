"""``hypertool-callbacks demo``: both demo workflows in a loop, metrics on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from typing import Any

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import OtelSettings
from hypertool_callbacks.exposition import serve_metrics
from hypertool_callbacks.runtime import build_tracker

_log = logging.getLogger(__name__)


def run_demo(*, port: int = 9464, addr: str = "127.0.0.1", iterations: int = 0,
             interval: float = 2.0, scenario: str = "all", spans: str = "file",
             spans_file: str = "hypertool-spans.jsonl") -> int:
    from hypertool_callbacks.demo import pipeline, team

    otel = OtelSettings(
        enabled=spans != "none",
        console=spans == "console",
        jsonl_path=spans_file if spans == "file" else None,
    )
    config = pipeline.CONFIG.model_copy(update={"otel": otel})
    tracker = build_tracker(config)
    handler = HypertoolCallbackHandler(tracker)
    server, _ = serve_metrics(port, addr)
    url = f"http://{addr}:{server.server_port}/metrics"
    print(f"hypertool-callbacks demo: metrics at {url}", flush=True)
    if otel.jsonl_path:
        print(f"  spans appended to {otel.jsonl_path}", flush=True)
    print("  try: curl -s " + url + " | grep -E 'persona_switches|quality_gate|budget'",
          flush=True)
    print("  Ctrl-C to stop", flush=True)
    scenarios: list[tuple[str, Any, Any]] = []
    if scenario in ("all", "pipeline"):
        scenarios.append(("software-delivery (configured personas)", pipeline.build(),
                          pipeline.run_once))
    if scenario in ("all", "team"):
        scenarios.append(("research-team (zero configuration)", team.build(), team.run_once))
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
        pass
    finally:
        tracker.shutdown(5.0)
        server.shutdown()
    print(f"hypertool-callbacks demo: {done} iteration(s) done", flush=True)
    return 0
