"""What a broken backend costs the app: invoke latency with OTLP or Langfuse healthy, dead,
hanging, answering 401 or 503.

``python benchmarks/bench_faults.py`` (about 6 min). For each backend (hypertool's OTel sink on
an SDK provider exporting OTLP/HTTP through a ``BatchSpanProcessor``, or its Langfuse sink; the
Prometheus sink beside either) and each state of the endpoint (``receiver.py`` in another
process, or a closed port for "dead"), on the chain workload: the median µs per invoke over
interleaved rounds (wall clock, and CPU of the invoking thread) and their ratio to the healthy
endpoint, whether every result was the expected one, the memory traced over ``--traced`` more
invokes (highest and last reading above the start: bounded when the exporter's queue is, with
spans beyond it dropped), the Langfuse export failures counted, and how long
``tracker.shutdown(0.5)`` took (the exit flush). The issue's target: latency within 5% of
healthy. On a shared machine the wall clock is noisy; the thread's CPU time much less so.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import WORKLOADS, _env
from prometheus_client import CollectorRegistry

from hypertool_callbacks import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink

HERE = Path(__file__).resolve().parent
MODES = ["healthy", "dead", "hang", "401", "503"]
BACKENDS = ["otlp", "langfuse"]


@dataclass
class Case:
    backend: str
    mode: str
    tracker: Tracker
    registry: CollectorRegistry
    invoke: Callable[[], Any]
    expected: Any
    wall: list[float] = field(default_factory=list)  # µs per invoke, per round
    cpu: list[float] = field(default_factory=list)  # the invoking thread's CPU µs, per round
    wrong: int = 0  # results that differ from the expected one, or raised
    memory: tuple[float, float] = (0.0, 0.0)  # traced MB above the start: max, at the end
    shutdown_s: float = 0.0


def start_receiver(mode: str) -> tuple[subprocess.Popen[str] | None, str]:
    if mode == "dead":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return None, f"http://127.0.0.1:{port}"  # nothing listens there any more
    arg = "ok" if mode == "healthy" else mode
    process = subprocess.Popen([sys.executable, str(HERE / "receiver.py"), arg],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def sinks_for(backend: str, url: str, registry: CollectorRegistry) -> list[Any]:
    if backend == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from hypertool_callbacks.sinks.otel import OtelSink

        # The SDK's defaults (10 s export timeout, 2,048-span queue), as an app would have.
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=url + "/v1/traces")))
        return [OtelSink(provider), PrometheusSink(registry)]
    from hypertool_callbacks.sinks.langfuse import LangfuseSink

    key = f"pk-faults-{uuid.uuid4().hex[:8]}"  # one client per key: a fresh one per case
    with _env(LANGFUSE_PUBLIC_KEY=key, LANGFUSE_SECRET_KEY="sk-bench", LANGFUSE_BASE_URL=url,
              LANGFUSE_HOST=None, LANGFUSE_TIMEOUT=None):
        return [LangfuseSink(registry=registry, flush_timeout=0.5), PrometheusSink(registry)]


def make_case(backend: str, mode: str, url: str, workload: str) -> Case:
    runnable, inputs, base = WORKLOADS[workload]()
    expected = runnable.invoke(inputs, config=base)
    registry = CollectorRegistry()
    tracker = Tracker(Config(), sinks_for(backend, url, registry))
    config = {**base, "callbacks": [HypertoolCallbackHandler(tracker)]}
    return Case(backend, mode, tracker, registry,
                lambda: runnable.invoke(inputs, config=config), expected)


def run(case: Case, count: int) -> tuple[float, float]:
    """Wall and invoking-thread CPU µs per invoke over ``count`` invokes; counts wrong
    results. The thread's CPU time leaves out other processes on a loaded machine (and the
    exporter's own threads, which do not delay the app's call)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        try:
            if case.invoke() != case.expected:
                case.wrong += 1
        except Exception:
            case.wrong += 1
    return (1e6 * (time.perf_counter() - wall) / count,
            1e6 * (time.thread_time() - cpu) / count)


def memory(case: Case, count: int, step: int = 100) -> tuple[float, float]:
    """Traced MB above the start over ``count`` more invokes: the highest reading (every
    ``step`` invokes, after a collection) and the last. A queue that never dropped would grow
    by every span of every invoke; a bounded one stays flat once full."""
    tracemalloc.start()
    gc.collect()
    start = tracemalloc.get_traced_memory()[0]
    readings = []
    for done in range(0, count, step):
        run(case, min(step, count - done))
        gc.collect()
        readings.append((tracemalloc.get_traced_memory()[0] - start) / 2**20)
    tracemalloc.stop()
    return max(readings), readings[-1]


def failures(case: Case) -> str:
    if case.backend != "langfuse":
        return "-"
    total = sum(s.value for metric in case.registry.collect() for s in metric.samples
                if s.name == "hypertool_langfuse_export_failures_total")
    reasons = sorted({s.labels["reason"] for metric in case.registry.collect()
                      for s in metric.samples
                      if s.name == "hypertool_langfuse_export_failures_total" and s.value})
    return f"{total:.0f} ({', '.join(reasons)})" if reasons else f"{total:.0f}"


def table(cases: list[Case]) -> str:
    lines = ["| backend | endpoint | wall µs per invoke (median) | x healthy "
             "| invoking thread's CPU µs (median) | x healthy | results identical "
             "| traced MB above start (max / end) | Langfuse failures counted "
             "| shutdown(0.5) s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base = {c.backend: c for c in cases if c.mode == "healthy"}
    for c in cases:
        wall, cpu = statistics.median(c.wall), statistics.median(c.cpu)
        healthy = base.get(c.backend)
        wall_x = wall / statistics.median(healthy.wall) if healthy else float("nan")
        cpu_x = cpu / statistics.median(healthy.cpu) if healthy else float("nan")
        lines.append(f"| {c.backend} | {c.mode} | {wall:.0f} | {wall_x:.2f} | {cpu:.0f} "
                     f"| {cpu_x:.2f} | {'yes' if c.wrong == 0 else f'NO ({c.wrong})'} "
                     f"| {c.memory[0]:.2f} / {c.memory[1]:.2f} | {failures(c)} "
                     f"| {c.shutdown_s:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="chain")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--n", type=int, default=50, help="invokes per round")
    parser.add_argument("--traced", type=int, default=2_000,
                        help="invokes under tracemalloc (enough to fill a 2,048-span queue)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    # The SDK logs each failed export; what we measure is latency, not log volume.
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    logging.getLogger("hypertool_callbacks").setLevel(logging.ERROR)
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)

    receivers: list[subprocess.Popen[str]] = []
    cases: list[Case] = []
    try:
        for backend in args.backends:
            for mode in args.modes:
                process, url = start_receiver(mode)
                if process is not None:
                    receivers.append(process)
                cases.append(make_case(backend, mode, url, args.workload))
        for case in cases:
            run(case, args.n // 2)  # warm-up
        for _ in range(args.rounds):
            for case in cases:
                wall, cpu = run(case, args.n)
                case.wall.append(wall)
                case.cpu.append(cpu)
        for case in cases:
            case.memory = memory(case, args.traced)
        for case in cases:
            started = time.perf_counter()
            case.tracker.shutdown(0.5)
            case.shutdown_s = time.perf_counter() - started
    finally:
        for process in receivers:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(10)
    text = table(cases)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
