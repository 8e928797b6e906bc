"""The Prometheus sink writes values straight to a label child's value (no exemplar): the
samples must be exactly what prometheus_client's own ``inc``/``observe`` produce."""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from hypertool_callbacks import catalog
from hypertool_callbacks.sinks.prometheus import PrometheusSink, _exemplar_writer, _writer

BUCKETS = (0.1, 0.5, 1.0, 5.0)
VALUES = (0.0, 0.05, 0.1, 0.1000001, 0.5, 0.7, 1.0, 5.0, 5.5, 1e9, math.inf)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def test_histogram_writer_matches_observe_on_and_between_bounds() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = Histogram("h", "h", ["k"], buckets=BUCKETS, registry=ours).labels("a")
    reference = Histogram("h", "h", ["k"], buckets=BUCKETS, registry=theirs).labels("a")
    write = _writer(mine)
    for value in VALUES:
        write(value)
        reference.observe(value)
    assert _samples(ours) == _samples(theirs)


def test_counter_writer_matches_inc() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    write = _writer(Counter("c", "c", ["k"], registry=ours).labels("a"))
    reference = Counter("c", "c", ["k"], registry=theirs).labels("a")
    for value in (1, 2.5, 0, 1e6):
        write(value)
        reference.inc(value)
    assert _samples(ours) == _samples(theirs)


class _Opaque:
    """A child shaped unlike prometheus_client's: only the public method."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, value: float) -> None:
        self.seen.append(value)


def test_an_unknown_child_shape_falls_back_to_its_public_method() -> None:
    child = _Opaque()
    _writer(child)(3.0)
    assert child.seen == [3.0]


def _hammer(sinks: list[Any], threads: int, each: int) -> None:
    from hypertool_callbacks.context.records import PersonaStint

    stint = PersonaStint("coder", "wf", "x", 0.5)

    def work(sink: Any) -> None:
        for _ in range(each):
            sink.on_stint(stint)  # a histogram: its sum and one bucket

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: lost updates show
    try:
        workers = [threading.Thread(target=work, args=(sinks[i % len(sinks)],))
                   for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)


def test_concurrent_writes_through_the_sink_lose_nothing() -> None:
    # The sink writes values directly under one registry-wide lock instead of
    # prometheus_client's lock per value: every add from every thread must land, also from
    # two sinks on one registry (they share its metrics, so they share the lock).
    registry = CollectorRegistry()
    _hammer([PrometheusSink(registry), PrometheusSink(registry)], threads=8, each=5000)
    labels = {"persona": "coder", "workflow": "wf"}
    name = catalog.PERSONA_DURATION.name
    assert registry.get_sample_value(f"{name}_count", labels) == 40000
    assert registry.get_sample_value(f"{name}_sum", labels) == 20000



def _exemplars(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                      tuple[dict[str, str], float] | None]:
    return {(s.name, tuple(sorted(s.labels.items()))):
            (s.exemplar.labels, s.exemplar.value) if s.exemplar else None
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def test_exemplar_writers_match_observe_and_inc_with_exemplars() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = Histogram("h", "h", ["k"], buckets=BUCKETS, registry=ours).labels("a")
    reference = Histogram("h", "h", ["k"], buckets=BUCKETS, registry=theirs).labels("a")
    count = Counter("c", "c", ["k"], registry=ours).labels("a")
    count_reference = Counter("c", "c", ["k"], registry=theirs).labels("a")
    observe, inc = _exemplar_writer(mine), _exemplar_writer(count)
    for n, value in enumerate(VALUES):
        exemplar = {"trace_id": f"{n:032x}"}
        observe(value, exemplar)
        reference.observe(value, exemplar)
        inc(n, exemplar)
        count_reference.inc(n, exemplar)
    assert _samples(ours) == _samples(theirs)
    assert _exemplars(ours) == _exemplars(theirs)
    assert sum(1 for e in _exemplars(ours).values() if e) == 6  # 5 buckets hit + the counter


def test_an_overlong_trace_id_gets_no_exemplar_and_the_run_keeps_its_samples() -> None:
    from hypertool_callbacks.context.runs import Run, Status
    from hypertool_callbacks.events import RunKind

    registry = CollectorRegistry()
    sink = PrometheusSink(registry)
    run = Run("r", None, RunKind.TOOL, "search", (), {}, 0, 0.0, trace_id="f" * 121)
    run.end_mono, run.status, run.persona, run.label = 2.0, Status.OK, "coder", "search"
    sink.on_run_end(run)  # prometheus_client itself would raise on this exemplar
    labels = {"tool": "search", "persona": "coder", "status": "ok"}
    assert registry.get_sample_value("hypertool_tool_calls_total", labels) == 1.0
    assert all(e is None for e in _exemplars(registry).values())
