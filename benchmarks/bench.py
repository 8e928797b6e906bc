"""Overhead of hypertool's handler next to LangChain's floor and the peers, in one command:

    .venv/bin/python benchmarks/bench.py            # both workloads, every configuration

Two measures, side by side:

* **instructions per invoke** counted by cachegrind (``valgrind --tool=cachegrind
  --cache-sim=no``): one valgrind process imports everything once, then forks two children per
  configuration that run the same set-up and warm-up and then ``short`` and ``long`` invokes;
  the difference of their totals divided by ``long - short`` is the cost of one invoke, with
  start-up, imports and set-up cancelled out. Repeats agree within ~1%. Background work
  (exporter threads, the final flush) is included: it is CPU the app's process pays.
* **µs per invoke**, wall clock, in interleaved rounds in one process (every configuration
  once per round, in rotating order) so that a noisy neighbour hurts all of them alike;
  the median round is reported. On a shared machine trust the instructions first.

Configurations: see ``cases.CONFIGS``. The peers (``[bench]`` extra) are measured only when
installed; Langfuse (ours and the peer's) exports to a local receiver in another process.
Numbers are reported, never asserted: no test depends on them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cachegrind
from cases import CONFIGS, DEFAULT_CONFIGS, NEEDS_RECEIVER, PEERS, WORKLOAD_TITLES, make_case

HERE = Path(__file__).resolve().parent
LENGTHS = {"chain": (20, 220), "graph": (5, 45)}  # (short, long) invokes under cachegrind
WARMUP = 20
TIMES, NONE = "\u00d7", "\u2013"  # the multiplication sign, and an en dash for "no value"
PEER_TITLES = {"peer-langfuse": "Langfuse", "peer-openinference": "OpenInference",
               "peer-openllmetry": "OpenLLMetry"}


def available(configs: Iterable[str]) -> list[str]:
    """The configurations whose packages are installed."""
    needs = {"peer-langfuse": "langfuse.langchain",
             "peer-openinference": "openinference.instrumentation.langchain",
             "peer-openllmetry": "opentelemetry.instrumentation.langchain",
             "ours-otel": "opentelemetry.sdk", "ours-all": "langfuse"}
    found = []
    for name in configs:
        module = needs.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                print(f"skipping {name}: {module} is not installed", file=sys.stderr)
                continue
        found.append(name)
    return found


# -- wall clock ---------------------------------------------------------------------------

def time_configs(workload: str, configs: list[str], url: str | None, rounds: int,
                 n: int) -> dict[str, float]:
    """Median µs per invoke of each configuration, in interleaved rounds."""
    cases = {name: make_case(name, workload, url) for name in configs}
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for case in cases.values():  # warm-up (first calls build caches, import lazily)
        case.enter()
        for _ in range(WARMUP):
            case.invoke()
        case.finish()
        case.exit()
        case.reset()
    for r in range(rounds):
        order = configs[r % len(configs):] + configs[:r % len(configs)]
        for name in order:
            case = cases[name]
            case.enter()
            start = time.perf_counter()
            for _ in range(n):
                case.invoke()
            elapsed = time.perf_counter() - start
            # Background export is settled outside the timed loop, before the next config.
            case.finish()
            case.exit()
            case.reset()
            samples[name].append(elapsed / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


# -- instructions -------------------------------------------------------------------------

def _batch(name: str, workload: str, url: str | None, count: int) -> None:
    case = make_case(name, workload, url)
    case.enter()
    for _ in range(WARMUP + count):
        case.invoke()
    case.finish()
    case.exit()


def cachegrind_worker(args: argparse.Namespace) -> None:
    """Runs under valgrind: a forked child per (workload, configuration, length)."""
    plan: list[dict[str, Any]] = []
    for workload in args.workloads:
        for name in args.configs:
            for count in LENGTHS[workload]:
                child = cachegrind.run_child(
                    f"{workload}/{name}", functools.partial(_batch, name, workload, args.url,
                                                            count))
                plan.append({"workload": workload, "config": name, "count": count, **child})
    Path(args.plan).write_text(json.dumps(plan))


def count_instructions(workloads: list[str], configs: list[str], url: str | None,
                       seeds: int) -> dict[tuple[str, str], dict[int, float]]:
    """Instructions per invoke, by (workload, configuration), by hash seed."""
    worker_args = ["--workloads", *workloads, "--configs", *configs,
                   *(["--url", url] if url else [])]
    return cachegrind.per_seed(Path(__file__), worker_args, LENGTHS, seeds=seeds)


# -- report -------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("langchain-core", "langgraph", "prometheus-client", "opentelemetry-sdk",
                 "langfuse", "openinference-instrumentation-langchain",
                 "opentelemetry-instrumentation-langchain"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; " + ", ".join(versions))


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return NONE if value is None else format(value, spec) + suffix


def table(workload: str, configs: list[str], instr: dict[tuple[str, str], dict[int, float]],
          micros: dict[str, float]) -> str:
    def above(name: str) -> float | None:
        return cachegrind.mean_above(instr, workload, name)

    def above_us(name: str) -> float | None:
        if "none" not in micros or name not in micros:
            return None
        return micros[name] - micros["none"]

    floor, floor_us = above("noop"), above_us("noop")
    peers = [p for p in PEERS if p in configs]
    seeds = cachegrind.seeds_measured(instr)
    head = ["configuration", "instructions above none, per invoke", f"{TIMES} floor",
            *([f"range over {seeds} hash seeds"] if seeds > 1 else []),
            "µs per invoke", "µs above none", f"{TIMES} floor (µs)",
            *(f"{TIMES} {PEER_TITLES[p]}" for p in peers)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in configs:
        extra, extra_us = above(name), above_us(name)
        totals = list(instr.get((workload, name), {}).values())
        cells = [
            CONFIGS[name],
            (f"0 ({cachegrind.mean(totals) / 1e6:.2f} M in all)"
             if name == "none" and totals
             else _fmt(None if extra is None else extra / 1e6, "+.3f", " M")),
            _fmt(extra / floor if extra is not None and floor else None, ".2f"),
            *([cachegrind.range_above(instr, workload, name) or NONE] if seeds > 1 else []),
            _fmt(micros.get(name), ".0f"),
            "0" if name == "none" else _fmt(extra_us, "+.0f"),
            _fmt(extra_us / floor_us if extra_us is not None and floor_us else None, ".1f"),
        ]
        for peer in peers:
            theirs = above(peer)
            ours = name.startswith("ours-") and extra is not None and theirs
            cells.append(_fmt(extra / theirs if ours else None, ".2f"))  # type: ignore[operator]
        rows.append("| " + " | ".join(cells) + " |")
    return f"**{WORKLOAD_TITLES[workload]}**\n\n" + "\n".join(rows)


def profile(args: argparse.Namespace, url: str | None) -> None:
    """Where the time goes: one configuration on one workload under a profiler."""
    name, workload = args.configs[0], args.workloads[0]
    case = make_case(name, workload, url)
    case.enter()
    for _ in range(WARMUP):
        case.invoke()
    n = args.n if workload == "chain" else max(1, args.n // 5)
    if args.profile == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        for _ in range(n):
            case.invoke()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    else:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            case.invoke()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
    case.finish()
    case.exit()


@contextlib.contextmanager
def receiving(needed: bool = True) -> Iterator[str | None]:
    """A local OTLP receiver (receiver.py) in another process while inside: its URL, or None
    when not ``needed``."""
    if not needed:
        yield None
        return
    process = subprocess.Popen([sys.executable, str(HERE / "receiver.py")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["chain", "graph"],
                        choices=list(WORKLOAD_TITLES))
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS),
                        help="also: noop-chat, ours-adapter, ours-tracker (where the "
                             "instructions go; see cases.CONFIGS)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--n", type=int, default=200,
                        help="chain invokes per round (the graph gets a fifth)")
    parser.add_argument("--no-cachegrind", action="store_true", help="wall clock only")
    parser.add_argument("--no-timing", action="store_true", help="instructions only")
    parser.add_argument("--seeds", type=int, default=3,
                        help="cachegrind workers, one per hash seed, averaged (see cachegrind.py)")
    parser.add_argument("--out", help="also write the markdown report here")
    parser.add_argument("--profile", choices=["cprofile", "pyinstrument"],
                        help="profile the first --configs on the first --workloads instead")
    parser.add_argument("--cachegrind-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Peers log and warn per call (Langfuse: "not able to parse the LLM model" for fakes).
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if args.cachegrind_worker:
        cachegrind_worker(args)
        return
    configs = available(args.configs)
    with receiving(bool(NEEDS_RECEIVER & set(configs))) as url:
        if args.profile:
            profile(args, url)
            return
        instr: dict[tuple[str, str], dict[int, float]] = {}
        if not args.no_cachegrind:
            if shutil.which("valgrind") is None:
                print("valgrind not found: instruction counts skipped", file=sys.stderr)
            else:
                instr = count_instructions(args.workloads, configs, url, args.seeds)
        micros: dict[str, dict[str, float]] = {}
        if not args.no_timing:
            for workload in args.workloads:
                n = args.n if workload == "chain" else max(1, args.n // 5)
                micros[workload] = time_configs(workload, configs, url, args.rounds, n)
    report = "\n\n".join([*(table(w, configs, instr, micros.get(w, {}))
                            for w in args.workloads), f"Machine: {machine()}."])
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
