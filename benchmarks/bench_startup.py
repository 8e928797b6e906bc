"""What activation costs at interpreter start-up: ``python benchmarks/bench_startup.py [--n 20]``.

Starts fresh interpreters of this environment (where the ``.pth`` start-up hook is installed)
running ``pass``, ``import langchain_core`` and one LangChain call, each with and without
``HYPERTOOL_CALLBACKS=true``, alternating the cases run by run (like hyperfine), and reports
the median and spread of the wall-clock time per case and what activation adds. A process
that never imports a framework should pay next to nothing; building the tracker moves to the
framework's import. Numbers, not assertions: performance targets live here, never in tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "no framework": "pass",
    "import langchain_core": "import langchain_core",
    # What an app does: the first run imports LangChain's tracing machinery either way.
    "first LangChain run": ("from langchain_core.language_models import FakeListLLM\n"
                            "FakeListLLM(responses=['x']).invoke('hi')"),
}


def _env(active: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    if active:
        env["HYPERTOOL_CALLBACKS"] = "true"
    return env


def _once(code: str, active: bool) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=_env(active), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="runs per case")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs per case")
    args = parser.parse_args()
    keys = [(name, active) for name in CASES for active in (False, True)]
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in keys}
    for round_ in range(args.warmup + args.n):
        for name, active in keys:  # interleaved: a load spike hits every case alike
            elapsed = _once(CASES[name], active)
            if round_ >= args.warmup:
                times[(name, active)].append(elapsed)
    print(f"{args.n} runs per case, {sys.executable}")
    print(f"{'case':<26}{'HYPERTOOL_CALLBACKS':>20}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for name, active in keys:
        values = times[(name, active)]
        print(f"{name:<26}{'true' if active else 'unset':>20}"
              f"{statistics.median(values) * 1000:>11.1f}{min(values) * 1000:>9.1f}"
              f"{max(values) * 1000:>9.1f}")
    for name in CASES:
        extra = statistics.median(times[(name, True)]) - statistics.median(times[(name, False)])
        print(f"activation adds {extra * 1000:+.1f} ms (median) to: {name}")


if __name__ == "__main__":
    main()
