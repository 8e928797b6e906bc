"""Instructions per operation counted by cachegrind, start-up cancelled (``bench.py`` and
``bench_llamaindex.py``).

The benchmark script runs itself under ``valgrind --tool=cachegrind --cache-sim=no`` in a
worker mode: that one process imports everything, then forks one child per (workload,
configuration, length); each child builds its configuration, warms up and runs a short or a
long batch, and cachegrind writes one file per child. The difference of a long and a short
batch's totals, over the difference of their lengths, is one operation: imports, set-up and
warm-up cancel.
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
    """Run ``script --cachegrind-worker --plan PLAN *worker_args`` under cachegrind; the
    worker writes PLAN as a list of ``{workload, config, count, pid, ok}``. Instructions per
    operation, by (workload, configuration), from the (short, long) ``lengths``."""
    with tempfile.TemporaryDirectory(prefix="hypertool-cg-") as tmp:
        out, plan = Path(tmp), Path(tmp) / "plan.json"
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                   f"--cachegrind-out-file={out}/cg.%p", sys.executable, str(script.resolve()),
                   "--cachegrind-worker", "--plan", str(plan), *worker_args]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})})
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
