"""Where the Langfuse sink's instructions go: ``ours-all`` with parts of the Langfuse path
switched off, counted by cachegrind like ``bench.py`` (chain workload by default):

    .venv/bin/python benchmarks/bench_langfuse_parts.py [--workloads chain graph]

* ``lf-idle``: the Langfuse client exists (its threads run) but the sink gets no runs;
* ``lf-no-content``: ``capture_content=False`` (no input/output serialisation);
* ``lf-no-queue``: observations built, not handed to the processor (no queue, no export);
* ``lf-no-export``: queued and batched, but the exporter sends nothing (no encoding, no HTTP);
* ``lf-no-timer``: all of it, but batches sent only when 512 spans are queued and at the
  final flush, not every 5 s as well: under cachegrind a run lasts ~50x longer, so the
  timer sends many more (smaller) batches per invoke than natively (~4M instructions of
  HTTP client per batch, whatever its size).

Differences between neighbours are the parts' costs. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
import cachegrind
import cases
from opentelemetry.sdk.trace.export import SpanExportResult

VARIANTS = ["none", "noop", "ours-otel", "lf-idle", "lf-no-content", "lf-no-queue", "lf-no-export",
            "lf-no-timer", "ours-all"]


def _langfuse(case: cases.Case) -> Any:
    tracker = case.keep[0]
    return tracker, next(s for s in tracker.sinks if s.name == "langfuse")


def make_case(config: str, workload: str, url: str | None) -> cases.Case:
    if not config.startswith("lf-"):
        return cases.make_case(config, workload, url)
    saved = os.environ.get("LANGFUSE_FLUSH_INTERVAL")
    if config == "lf-no-timer":  # the SDK's processor reads it when the sink is made
        os.environ["LANGFUSE_FLUSH_INTERVAL"] = "3600"
    try:
        case = cases.make_case("ours-all", workload, url)
    finally:
        if saved is None:
            os.environ.pop("LANGFUSE_FLUSH_INTERVAL", None)
        else:
            os.environ["LANGFUSE_FLUSH_INTERVAL"] = saved
    tracker, sink = _langfuse(case)
    if config == "lf-idle":
        tracker.remove_sink(sink)
    elif config == "lf-no-content":
        sink.capture_content = False
    elif config == "lf-no-queue":
        if sink._direct is not None:
            sink._direct._processor = type("Drop", (), {"on_end": lambda self, span: None})()
            sink._direct._emit = None
        else:
            sink._provider._active_span_processor._span_processors = ()
    elif config == "lf-no-export":
        exporter = sink._provider._active_span_processor._span_processors[0].span_exporter
        exporter.export = lambda spans: SpanExportResult.SUCCESS
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["chain"], choices=["chain", "graph"])
    parser.add_argument("--configs", nargs="+", default=VARIANTS)
    parser.add_argument("--cachegrind-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--lengths", nargs="+", default=[], metavar="WORKLOAD=SHORT,LONG",
                        help="invokes per batch instead of bench.py's (e.g. graph=10,130: "
                             "background work and GC weigh less per invoke in long batches)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    for item in args.lengths:
        workload, counts = item.split("=")
        short, long = (int(n) for n in counts.split(","))
        bench.LENGTHS[workload] = (short, long)  # read by bench's worker and per_operation
    bench.make_case = make_case  # the variants, in bench's own batches
    if args.cachegrind_worker:
        bench.cachegrind_worker(args)
        return
    with bench.receiving() as url:
        assert url is not None
        worker_args = ["--workloads", *args.workloads, "--configs", *args.configs,
                       "--url", url, *(["--lengths", *args.lengths] if args.lengths else [])]
        counts = cachegrind.per_operation(Path(__file__), worker_args, bench.LENGTHS)
    for workload in args.workloads:
        none = counts.get((workload, "none"), 0.0)
        floor = counts.get((workload, "noop"), 0.0) - none
        print(f"{workload}: instructions per invoke above 'none' (x the noop floor)")
        for config in args.configs:
            value = counts.get((workload, config))
            if value is None:
                print(f"  {config:15s}  failed")
                continue
            ratio = f"  ({(value - none) / floor:.2f} x)" if floor > 0 else ""
            print(f"  {config:15s} {(value - none) / 1e6:8.3f} M{ratio}")


if __name__ == "__main__":
    main()
