"""LlamaIndex overhead: ``python benchmarks/bench_llamaindex.py [--rounds N] [--no-cachegrind]``.

Two offline workloads on real llama-index-core: a query (``MockEmbedding`` index, a
``MockLLM``, retrieve + synthesize + one LLM call) and an agent run (a ``FunctionAgent`` on a
scripted function-calling LLM: one tool call, then an answer). Each is timed with nothing on
the root dispatcher, with a no-op span + event handler (LlamaIndex's own floor for any
observer), with hypertool and the Prometheus sink, and with OTel spans recorded to an
in-memory exporter as well.

Two measures, as in ``bench.py``: **instructions** per operation counted by cachegrind
(``valgrind --tool=cachegrind --cache-sim=no``; one valgrind process imports everything, then
forks two children per configuration that run a short and a long batch after the same set-up
and warm-up: the difference over the difference of lengths is one operation, start-up
cancelled; repeats agree within ~1%), and **µs** per operation, wall clock, in interleaved
rounds (the median round). Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cachegrind
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from pydantic import PrivateAttr

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink


class NoopSpans(BaseSpanHandler[SimpleSpan]):
    def span_enter(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                   parent_id: str | None = None, tags: Any = None, **kwargs: Any) -> None:
        return None

    def span_exit(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                  result: Any = None, **kwargs: Any) -> None:
        return None

    def span_drop(self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None,
                  err: BaseException | None = None, **kwargs: Any) -> None:
        return None

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


class NoopEvents(BaseEventHandler):
    def handle(self, event: Any, **kwargs: Any) -> None:
        return None


class Scripted(MockFunctionCallingLLM):
    """Calls ``add`` once, then answers; reports usage like a provider."""

    _calls: int = PrivateAttr(default=0)

    @llm_chat_callback()
    async def achat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self._calls += 1
        if self._calls % 2:
            message = ChatMessage(role="assistant", blocks=[ToolCallBlock(
                tool_call_id="c", tool_name="add", tool_kwargs={"a": 1, "b": 2})])
        else:
            message = ChatMessage(role="assistant", content="3")
        return ChatResponse(message=message, raw={"usage": {"prompt_tokens": 10,
                                                            "completion_tokens": 2}})


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def workloads() -> dict[str, Callable[[], Any]]:
    index = VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                            embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8))
    agent = FunctionAgent(name="calc", description="adds", llm=Scripted(), tools=[
        FunctionTool.from_defaults(add)], streaming=False)
    loop = asyncio.new_event_loop()

    async def agent_run() -> Any:
        return await agent.run(user_msg="1+2?")

    return {"query": lambda: engine.query("Where is Paris?"),
            "agent": lambda: loop.run_until_complete(agent_run())}


CONFIGS = {"none": "nothing attached", "noop": "no-op span + event handler (the floor)",
           "hypertool": "hypertool, Prometheus sink only",
           "hypertool+otel": "hypertool, Prometheus + OTel (in-memory exporter)",
           # Where the instructions go (not in the default run): the adapter alone, then the
           # adapter and the tracker; "hypertool" minus "tracker" is the Prometheus sink.
           "adapter": "hypertool's adapter alone (tracker calls are no-ops)",
           "tracker": "hypertool's adapter and tracker, no sink"}
DEFAULT_CONFIGS = ["none", "noop", "hypertool", "hypertool+otel"]
TITLES = {"query": "query (MockEmbedding index, MockLLM: 14 spans)",
          "agent": "FunctionAgent run (2 LLM calls, 1 tool call: 15 spans)"}
LENGTHS = {"query": (10, 60), "agent": (4, 24)}  # (short, long) operations under cachegrind
WARMUP = 20
_EXPORTER = InMemorySpanExporter()


class AdapterOnly(Tracker):
    """A tracker that does nothing with the adapter's events: what the adapter costs alone.
    (A query's stage check reads the query's run: answered as a root, as the tracker would.)"""

    _ROOT = SimpleNamespace(parent=None)

    def start(self, event: Any) -> None:
        return None

    def start_run(self, *fields: Any) -> None:
        return None

    def end(self, event: Any) -> None:
        return None

    def end_run(self, *fields: Any) -> None:
        return None

    def first_token(self, run_id: Any) -> None:
        return None

    def get_run(self, run_id: Any) -> Any:
        return self._ROOT


def configure(name: str) -> Callable[[], None]:
    """Put configuration ``name`` on the root dispatcher; returns its undo."""
    root = get_dispatcher()
    spans, events = list(root.span_handlers), list(root.event_handlers)

    def undo() -> None:
        llamaindex.detach()
        root.span_handlers, root.event_handlers = spans, events
        _EXPORTER.clear()

    if name == "noop":
        root.span_handlers, root.event_handlers = [*spans, NoopSpans()], [*events, NoopEvents()]
    elif name == "hypertool":
        llamaindex.attach(Tracker(Config(), [PrometheusSink(CollectorRegistry())]))
    elif name == "adapter":
        llamaindex.attach(AdapterOnly(Config(), []))
    elif name == "tracker":
        llamaindex.attach(Tracker(Config(), []))
    elif name == "hypertool+otel":
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        llamaindex.attach(Tracker(Config(), [OtelSink(provider),
                                             PrometheusSink(CollectorRegistry())]))
    return undo


# -- wall clock ---------------------------------------------------------------------------

def time_configs(name: str, op: Callable[[], Any], configs: list[str], rounds: int,
                 ops: int) -> dict[str, float]:
    """Median µs per operation of each configuration, in interleaved (rotating) rounds."""
    for config in configs:
        undo = configure(config)
        try:
            for _ in range(WARMUP):
                op()
        finally:
            undo()
    times: dict[str, list[float]] = {c: [] for c in configs}
    for r in range(rounds):
        for config in configs[r % len(configs):] + configs[:r % len(configs)]:
            undo = configure(config)
            try:
                start = time.perf_counter()
                for _ in range(ops):
                    op()
                times[config].append((time.perf_counter() - start) / ops * 1e6)
            finally:
                undo()
    return {c: statistics.median(times[c]) for c in configs}


# -- instructions -------------------------------------------------------------------------

def _batch(name: str, config: str, count: int) -> None:
    op = workloads()[name]
    configure(config)
    for _ in range(WARMUP + count):
        op()


def cachegrind_worker(plan_path: str, names: list[str], configs: list[str]) -> None:
    """Runs under valgrind: a forked child per (workload, configuration, length)."""
    plan: list[dict[str, Any]] = []
    for name in names:
        for config in configs:
            for count in LENGTHS[name]:
                child = cachegrind.run_child(f"{name}/{config}",
                                             functools.partial(_batch, name, config, count))
                plan.append({"workload": name, "config": config, "count": count, **child})
    Path(plan_path).write_text(json.dumps(plan))


def count_instructions(names: list[str], configs: list[str],
                       seeds: int) -> dict[tuple[str, str], dict[int, float]]:
    """Instructions per operation, by (workload, configuration), by hash seed."""
    # numpy's BLAS threads spin while waiting: their instructions vary from run to run.
    return cachegrind.per_seed(Path(__file__), ["--workloads", *names, "--configs", *configs],
                               LENGTHS, {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
                               seeds=seeds)


# -- report -------------------------------------------------------------------------------

def table(name: str, configs: list[str], instr: dict[tuple[str, str], dict[int, float]],
          micros: dict[str, float]) -> str:
    def above(config: str) -> float | None:
        return cachegrind.mean_above(instr, name, config)

    def above_us(config: str) -> float | None:
        return micros[config] - micros["none"] if "none" in micros and config in micros else None

    floor, floor_us = above("noop"), above_us("noop")
    seeds = cachegrind.seeds_measured(instr)
    ranged = [f"range over {seeds} hash seeds"] if seeds > 1 else []
    head = ["configuration", "instructions above none", "\u00d7 floor", *ranged, "\u00b5s",
            "\u00b5s above none", "\u00b5s above the floor"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config in configs:
        extra, extra_us = above(config), above_us(config)
        totals = list(instr.get((name, config), {}).values())
        rows.append("| " + " | ".join([
            CONFIGS[config],
            (f"0 ({cachegrind.mean(totals) / 1e6:.2f} M in all)" if config == "none" and totals
             else "\u2013" if extra is None else f"+{extra / 1e6:.3f} M"),
            f"{extra / floor:.2f}" if extra is not None and floor else "\u2013",
            *([cachegrind.range_above(instr, name, config) or "\u2013"] if ranged else []),
            f"{micros[config]:.0f}" if config in micros else "\u2013",
            "0" if config == "none" else "\u2013" if extra_us is None else f"{extra_us:+.0f}",
            ("\u2013" if config == "none" or extra_us is None or floor_us is None
             else f"{extra_us - floor_us:+.0f}"),
        ]) + " |")
    return f"**{TITLES[name]}**\n\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(TITLES), choices=list(TITLES))
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS),
                        help="also: adapter, tracker (where the instructions go)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=40, help="queries per round (agent: a fifth)")
    parser.add_argument("--no-cachegrind", action="store_true", help="wall clock only")
    parser.add_argument("--no-timing", action="store_true", help="instructions only")
    parser.add_argument("--seeds", type=int, default=3,
                        help="cachegrind workers, one per hash seed, averaged (see cachegrind.py)")
    parser.add_argument("--cachegrind-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cachegrind_worker:
        cachegrind_worker(args.plan, args.workloads, args.configs)
        return
    instr: dict[tuple[str, str], dict[int, float]] = {}
    if not args.no_cachegrind:
        if shutil.which("valgrind") is None:
            print("valgrind not found: instruction counts skipped", file=sys.stderr)
        else:
            instr = count_instructions(args.workloads, args.configs, args.seeds)
    micros: dict[str, dict[str, float]] = {}
    if not args.no_timing:
        ops = workloads()
        for name in args.workloads:
            n = args.ops if name == "query" else max(1, args.ops // 5)
            micros[name] = time_configs(name, ops[name], args.configs, args.rounds, n)
    print("\n\n".join(table(name, args.configs, instr, micros.get(name, {}))
                      for name in args.workloads))


if __name__ == "__main__":
    main()
