"""The quick wall-clock check, kept for its old command: ``python benchmarks/bench_overhead.py``.

The chain workload only, no cachegrind, no peers: no callbacks, the no-op floor, hypertool with
the Prometheus sink and with OTel recording. ``benchmarks/bench.py`` is the full benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import main

if __name__ == "__main__":
    sys.argv[1:1] = ["--no-cachegrind", "--workloads", "chain", "--configs", "none", "noop",
                     "ours-prometheus", "ours-otel"]
    main()
