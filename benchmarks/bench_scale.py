"""Scale and memory: many sequential invokes and many concurrent ``ainvoke`` on one tracker.

``python benchmarks/bench_scale.py`` (100k sequential chain invokes, 1,000 concurrent ainvoke;
``--n`` / ``--concurrency`` shrink it). The handler is the default one as installed:
``HypertoolCallbackHandler(build_tracker(Config(), registry=CollectorRegistry()))`` (OTel
installed but no provider, no Langfuse keys), with its sweeper thread.

Reports, per phase: wall time and events/s (run starts + ends the tracker handled) of the
invokes timed without tracemalloc, peak RSS, tracemalloc growth per invoke (traced after the
timed invokes, with ``gc.collect()`` before each reading; also over the second half alone),
and checks that the metric totals are exact: tokens per persona = invokes x tokens per call,
LLM calls counted once each, nothing dropped, no live run or execution left. Exit status 1 if
a total is wrong. ``--traced`` sets how many sequential invokes run under tracemalloc (it
makes each about 5x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.pop("LANGFUSE_PUBLIC_KEY", None)  # as installed without Langfuse keys
os.environ.pop("LANGFUSE_SECRET_KEY", None)

from cases import WORKLOAD_TITLES, WORKLOADS
from prometheus_client import CollectorRegistry

from hypertool_callbacks import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.wiring import build_tracker

IN_TOKENS, OUT_TOKENS = 10, 5  # per LLM call (cases._USAGE)


@dataclass
class Phase:
    name: str
    invokes: int  # in all, after warm-up
    timed: int  # of which timed (without tracemalloc)
    seconds: float  # of the timed ones
    events: int  # of the timed ones
    peak_rss_mb: float
    growth_per_invoke: float  # bytes, whole measured phase
    growth_second_half: float  # bytes per invoke, second half only
    checks: list[tuple[str, bool, str]]


class _Count(Sink):
    """Counts run starts (attached for one invoke only, to learn the runs per invoke)."""

    name = "count"

    def __init__(self) -> None:
        self.starts = 0
        self.calls: dict[str, int] = {}  # LLM calls by persona

    def on_run_start(self, run: Run) -> None:
        self.starts += 1
        if run.kind is RunKind.LLM:
            self.calls[run.persona] = self.calls.get(run.persona, 0) + 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(s.value for metric in registry.collect() for s in metric.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def shape(tracker: Tracker, run_once: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """Runs and LLM calls per persona of one invoke (a counting sink attached for it)."""
    counter = _Count()
    tracker.add_sink(counter)
    run_once()
    tracker.remove_sink(counter)
    return counter.starts, counter.calls


def check_totals(registry: CollectorRegistry, tracker: Tracker, invokes: int,
                 calls: dict[str, int]) -> list[tuple[str, bool, str]]:
    checks = []
    for persona, per_invoke in sorted(calls.items()):
        n = invokes * per_invoke
        got_in = total(registry, "hypertool_persona_tokens_used_total", persona=persona,
                       token_type="input")
        got_out = total(registry, "hypertool_persona_tokens_used_total", persona=persona,
                        token_type="output")
        want = (n * IN_TOKENS, n * OUT_TOKENS)
        checks.append((f"tokens {persona} (in, out)", (got_in, got_out) == want,
                       f"{got_in:.0f}, {got_out:.0f} (want {want[0]}, {want[1]})"))
        got = total(registry, "hypertool_llm_requests_total", persona=persona, status="ok")
        checks.append((f"LLM calls {persona}", got == n, f"{got:.0f} (want {n})"))
    others = total(registry, "hypertool_llm_requests_total") - invokes * sum(calls.values())
    checks.append(("LLM calls not ok / other personas", others == 0, f"{others:.0f}"))
    dropped = total(registry, "hypertool_events_dropped_total")
    checks.append(("events dropped", dropped == 0, f"{dropped:.0f}"))
    errors = total(registry, "hypertool_internal_errors_total")
    checks.append(("internal errors", errors == 0, f"{errors:.0f}"))
    checks.append(("live runs / executions", tracker.live_runs == tracker.live_executions == 0,
                   f"{tracker.live_runs} / {tracker.live_executions}"))
    return checks


def fresh(workload: str) -> tuple[Tracker, CollectorRegistry, Callable[[], Any],
                                  Callable[[], Any]]:
    runnable, inputs, base = WORKLOADS[workload]()
    registry = CollectorRegistry()
    tracker = build_tracker(Config(), registry=registry)
    config = {**base, "callbacks": [HypertoolCallbackHandler(tracker)]}
    return (tracker, registry, lambda: runnable.invoke(inputs, config=config),
            lambda: runnable.ainvoke(inputs, config=config))


def sequential(workload: str, n: int, warmup: int, traced_n: int) -> Phase:
    """``n`` invokes timed, then ``traced_n`` more under tracemalloc (which makes every
    allocation several times slower: timing those would say little)."""
    tracker, registry, invoke, _ = fresh(workload)
    runs, calls = shape(tracker, invoke)
    for _ in range(warmup):
        invoke()
    started = time.perf_counter()
    for _ in range(n):
        invoke()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    start_bytes = traced()
    half = traced_n // 2
    for _ in range(half):
        invoke()
    half_bytes = traced()
    for _ in range(traced_n - half):
        invoke()
    end_bytes = traced()
    tracemalloc.stop()
    checks = check_totals(registry, tracker, 1 + warmup + n + traced_n, calls)
    return Phase(f"{n:,} sequential `invoke`, then {traced_n:,} traced", n + traced_n, n,
                 seconds, 2 * runs * n, peak_rss_mb(), (end_bytes - start_bytes) / traced_n,
                 (end_bytes - half_bytes) / (traced_n - half), checks)


async def _gather(ainvoke: Callable[[], Any], count: int) -> None:
    await asyncio.gather(*(ainvoke() for _ in range(count)))


def concurrent(workload: str, concurrency: int, rounds: int) -> Phase:
    tracker, registry, invoke, ainvoke = fresh(workload)
    runs, calls = shape(tracker, invoke)
    loop = asyncio.new_event_loop()
    try:
        for _ in range(2):  # warm-up: tables (task set, run map) reach their high-water size
            loop.run_until_complete(_gather(ainvoke, concurrency))
        started = time.perf_counter()
        loop.run_until_complete(_gather(ainvoke, concurrency))  # timed, untraced
        seconds = time.perf_counter() - started
        tracemalloc.start()
        start_bytes = half_bytes = traced()
        half = rounds // 2
        for i in range(rounds):
            loop.run_until_complete(_gather(ainvoke, concurrency))
            if i + 1 == half:
                half_bytes = traced()
        end_bytes = traced()
        tracemalloc.stop()
    finally:
        loop.close()
    n = concurrency * rounds
    checks = check_totals(registry, tracker, 1 + 3 * concurrency + n, calls)
    return Phase(f"{rounds} x {concurrency:,} concurrent `ainvoke` (one loop)",
                 n + concurrency, concurrency, seconds, 2 * runs * concurrency, peak_rss_mb(),
                 (end_bytes - start_bytes) / n,
                 (end_bytes - half_bytes) / (concurrency * (rounds - half)), checks)


def report(workload: str, phases: list[Phase]) -> str:
    lines = [f"**{WORKLOAD_TITLES[workload]}**, `HypertoolCallbackHandler(build_tracker(...))` "
             "as installed (OTel without provider, no Langfuse keys), tracemalloc on while "
             "measuring growth only", "",
             "| phase | invokes | timed (without tracemalloc) | µs per invoke | events/s "
             "| peak RSS MB | tracemalloc B/invoke (all / 2nd half) | totals exact |",
             "|---|---|---|---|---|---|---|---|"]
    for p in phases:
        ok = all(passed for _, passed, _ in p.checks)
        lines.append(
            f"| {p.name} | {p.invokes:,} | {p.timed:,} in {p.seconds:.1f} s "
            f"| {1e6 * p.seconds / p.timed:.0f} "
            f"| {p.events / p.seconds:,.0f} | {p.peak_rss_mb:.0f} "
            f"| {p.growth_per_invoke:+.2f} / {p.growth_second_half:+.2f} "
            f"| {'yes' if ok else 'NO'} |")
    lines += ["", "| check | phase | ok | value |", "|---|---|---|---|"]
    for p in phases:
        for label, passed, value in p.checks:
            lines.append(f"| {label} | {p.name} | {'yes' if passed else 'NO'} | {value} |")
    lines += ["", f"Python {platform.python_version()}, {platform.machine()}, "
              f"{os.cpu_count()} cores; peak RSS is the process's (cumulative over phases)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="sequential invokes")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--traced", type=int, default=20_000,
                        help="sequential invokes under tracemalloc, after the timed ones")
    parser.add_argument("--concurrency", type=int, default=1_000, help="ainvoke per gather")
    parser.add_argument("--rounds", type=int, default=4, help="measured gather rounds")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="chain")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    phases = [sequential(args.workload, args.n, args.warmup, args.traced)]
    print("sequential phase done", file=sys.stderr, flush=True)
    phases.append(concurrent(args.workload, args.concurrency, args.rounds))
    text = report(args.workload, phases)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    if not all(passed for p in phases for _, passed, _ in p.checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
