"""Instructions per operation counted by cachegrind, start-up cancelled (``bench.py`` and
``bench_llamaindex.py``).

The benchmark script runs itself under ``valgrind --tool=cachegrind --cache-sim=no`` in a
worker mode: that one process imports everything, then forks one child per (workload,
configuration, length); each child builds its configuration, warms up and runs a short or a
long batch, and cachegrind writes one file per child. The difference of a long and a short
batch's totals, over the difference of their lengths, is one operation: imports, set-up and
warm-up cancel.

One such process repeats its own counts almost exactly, but they depend on the heap's layout
(which dict keys collide, which allocations need a new memory pool): the same 5-node graph
invoke measured 11.38 M to 11.47 M instructions under different hash seeds or after a few
hundred extra objects, which moves a difference of ~0.65 M by several percent. So, like
pyperf's several processes, the worker runs once per hash seed (``seeds``), one after the other
(background threads count instructions by wall time: parallel workers would slow each other),
and each operation is the mean over seeds, reported with its range.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_child(label: str, batch: Callable[[], None]) -> dict[str, Any]:
    """In the worker: run ``batch`` in a forked child; its pid (which names its cachegrind
    file) and whether it succeeded."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            batch()
        except BaseException as exc:  # report, never hang the parent
            print(f"{label}: {exc!r}", file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {"pid": pid, "ok": status == 0}


def _summary(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise ValueError(f"no summary line in {path}")


def per_operation(script: Path, worker_args: list[str], lengths: dict[str, tuple[int, int]],
                  env: dict[str, str] | None = None) -> dict[tuple[str, str], float]:
    """Instructions per operation, by (workload, configuration), from one worker run (hash
    seed 0): see :func:`per_seed`."""
    return {key: by_seed[0] for key, by_seed in
            per_seed(script, worker_args, lengths, env, seeds=1).items()}


def per_seed(script: Path, worker_args: list[str], lengths: dict[str, tuple[int, int]],
             env: dict[str, str] | None = None,
             seeds: int = 1) -> dict[tuple[str, str], dict[int, float]]:
    """Instructions per operation, by (workload, configuration), by hash seed
    ``0 .. seeds - 1`` (a configuration that failed under a seed has no value for it)."""
    found: dict[tuple[str, str], dict[int, float]] = {}
    for seed in range(seeds):
        for key, value in _one_worker(script, worker_args, lengths, env, seed).items():
            found.setdefault(key, {})[seed] = value
    return found


def _one_worker(script: Path, worker_args: list[str], lengths: dict[str, tuple[int, int]],
                env: dict[str, str] | None, seed: int) -> dict[tuple[str, str], float]:
    """Run ``script --cachegrind-worker --plan PLAN *worker_args`` under cachegrind; the
    worker writes PLAN as a list of ``{workload, config, count, pid, ok}``. Instructions per
    operation, by (workload, configuration), from the (short, long) ``lengths``."""
    with tempfile.TemporaryDirectory(prefix="hypertool-cg-") as tmp:
        out, plan = Path(tmp), Path(tmp) / "plan.json"
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                   f"--cachegrind-out-file={out}/cg.%p", sys.executable, str(script.resolve()),
                   "--cachegrind-worker", "--plan", str(plan), *worker_args]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONHASHSEED": str(seed), **(env or {})})
        counts: dict[tuple[str, str], dict[int, int]] = {}
        for entry in json.loads(plan.read_text()):
            if entry["ok"]:
                counts.setdefault((entry["workload"], entry["config"]), {})[entry["count"]] = (
                    _summary(out / f"cg.{entry['pid']}"))
    result: dict[tuple[str, str], float] = {}
    for (workload, config), by_length in counts.items():
        short, long = lengths[workload]
        if short in by_length and long in by_length:
            result[(workload, config)] = (by_length[long] - by_length[short]) / (long - short)
    return result


def above(counts: dict[tuple[str, str], dict[int, float]], workload: str,
          config: str) -> list[float]:
    """``config`` minus ``none`` on ``workload``, per hash seed both were measured under
    (empty when there is none)."""
    base, value = counts.get((workload, "none"), {}), counts.get((workload, config), {})
    return [value[seed] - base[seed] for seed in sorted(value) if seed in base]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def mean_above(counts: dict[tuple[str, str], dict[int, float]], workload: str,
               config: str) -> float | None:
    """The mean over seeds of :func:`above` (None when there is nothing to average)."""
    values = above(counts, workload, config)
    return mean(values) if values else None


def range_above(counts: dict[tuple[str, str], dict[int, float]], workload: str,
                config: str) -> str | None:
    """The range over seeds of :func:`above`, as a table cell (None for ``none`` itself or
    when there is nothing measured)."""
    values = above(counts, workload, config)
    if config == "none" or not values:
        return None
    return f"{min(values) / 1e6:+.3f} to {max(values) / 1e6:+.3f} M"


def seeds_measured(counts: dict[tuple[str, str], dict[int, float]]) -> int:
    """How many seeds the best-measured configuration has values for."""
    return max((len(by_seed) for by_seed in counts.values()), default=0)
