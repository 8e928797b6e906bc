"""Prometheus sink: runs and derived facts become the catalog's metrics in a given registry."""

from __future__ import annotations

import os
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable
from time import time as _time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.samples import Exemplar
from prometheus_client.values import MutexValue

from hypertool_callbacks import catalog as c
from hypertool_callbacks.context.gates import UNRECOGNISED
from hypertool_callbacks.context.records import (
    BudgetStatus,
    GateVerdict,
    Handoff,
    PersonaStint,
    PersonaSwitch,
)
from hypertool_callbacks.context.runs import UNKNOWN, Run, Status
from hypertool_callbacks.context.sink import Sink, never_needs_run
from hypertool_callbacks.events import RunKind

# Enum members read once: on Python 3.11 ``RunKind.LLM`` goes through EnumType's
# __getattr__ hook, several times the cost of a module constant.
_EVICTED = Status.EVICTED
_LLM = RunKind.LLM
_OK = Status.OK
_TOOL = RunKind.TOOL


Metric = Counter | Gauge | Histogram

# One set of metric objects per registry: a second sink on the same registry reuses them
# instead of failing with "Duplicated timeseries".
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
# Per registry, the lock every PrometheusSink on it holds while it writes (see _writer).
_WRITE_LOCKS: weakref.WeakKeyDictionary[CollectorRegistry, threading.Lock] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()
_MAX_TRACE_ID = 128 - len("trace_id")  # prometheus_client's limit on an exemplar's labels


def build_metrics(registry: CollectorRegistry) -> dict[str, Any]:
    """The catalog's metrics registered in ``registry`` (created once per registry)."""
    with _LOCK:
        existing = _BY_REGISTRY.get(registry)
        if existing is not None:
            return existing
        metrics: dict[str, Any] = {}
        for spec in c.CATALOG:
            metric: Metric
            if spec.kind == "counter":
                metric = Counter(spec.base_name, spec.help, spec.labels, registry=registry)
            elif spec.kind == "gauge":
                metric = Gauge(spec.base_name, spec.help, spec.labels, registry=registry,
                               multiprocess_mode=spec.multiprocess_mode)  # type: ignore[arg-type]
            else:
                metric = Histogram(spec.base_name, spec.help, spec.labels, registry=registry,
                                   buckets=spec.buckets)
            metrics[spec.name] = metric
        _BY_REGISTRY[registry] = metrics
        _WRITE_LOCKS[registry] = threading.Lock()
        return metrics


class PrometheusSink(Sink):
    """Writes the catalog's metrics.

    Example::

        registry = CollectorRegistry()
        tracker = Tracker(config, sinks=[PrometheusSink(registry)])
        registry.get_sample_value("hypertool_persona_switches_total", {...})
    """

    name = "prometheus"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        m = build_metrics(self.registry)
        # Held once per sink call (not once per value, as each prometheus_client value does):
        # every write of the sink happens under it, so values are written directly (_writer).
        self._lock = _WRITE_LOCKS[self.registry]
        self._switches = m[c.PERSONA_SWITCHES.name]
        self._persona_seconds = m[c.PERSONA_DURATION.name]
        self._handoffs = m[c.PERSONA_HANDOFFS.name]
        self._tokens = m[c.PERSONA_TOKENS.name]
        self._token_details = m[c.PERSONA_TOKEN_DETAILS.name]
        self._budget_limit = m[c.BUDGET_LIMIT.name]
        self._budget_remaining = m[c.BUDGET_REMAINING.name]
        self._budget_exceeded = m[c.BUDGET_EXCEEDED.name]
        self._cost = m[c.PERSONA_COST.name]
        self._unpriced = m[c.LLM_COST_UNPRICED.name]
        self._cost_limit = m[c.COST_BUDGET_LIMIT.name]
        self._cost_remaining = m[c.COST_BUDGET_REMAINING.name]
        self._cost_exceeded = m[c.COST_BUDGET_EXCEEDED.name]
        self._stage_seconds = m[c.STAGE_DURATION.name]
        self._gates = m[c.QUALITY_GATE.name]
        self._gates_unrecognised = m[c.QUALITY_GATE_UNRECOGNISED.name]
        self._gates_retried = m[c.QUALITY_GATE_RETRIED.name]
        self._workflow_seconds = m[c.WORKFLOW_DURATION.name]
        self._llm_requests = m[c.LLM_REQUESTS.name]
        self._llm_seconds = m[c.LLM_DURATION.name]
        self._first_token = m[c.LLM_FIRST_TOKEN.name]
        self._usage_missing = m[c.LLM_USAGE_MISSING.name]
        self._tool_calls = m[c.TOOL_CALLS.name]
        self._tool_seconds = m[c.TOOL_DURATION.name]
        self._dropped = m[c.EVENTS_DROPPED.name]
        self._internal = m[c.INTERNAL_ERRORS.name]
        # Always exported (at 0): a process with hypertool active has hypertool series from the
        # start (HypertoolMetricsNotReported tells it from one without), and increase() sees
        # the first drop.
        for reason in c.DROP_REASONS:
            self._dropped.labels(reason)
        # Label values are bounded upstream, so this cache is bounded too.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._writers: dict[tuple[int, tuple[str, ...]], Callable[[float], None]] = {}
        self._markers: dict[tuple[int, tuple[str, ...]], Callable[[float, Any], None]] = {}
        # Exemplars exist only in the OpenMetrics text of a single process.
        self._exemplars = "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    def _exemplar(self, run: Run | None) -> dict[str, str] | None:
        if run is None or not self._exemplars:
            return None
        trace_id = run.trace_id
        # prometheus_client refuses exemplar labels over 128 characters in all: no exemplar
        # then (not an error that would cost the run its other samples).
        if type(trace_id) is not str or not 0 < len(trace_id) <= _MAX_TRACE_ID:
            return None
        return {"trace_id": trace_id}

    def _writer(self, metric: Any, labels: tuple[str, ...]) -> Callable[[float], None]:
        """How to add one value to a label child when there is no exemplar: straight to its
        value (a histogram: the sum and one bucket found by bisection), skipping the public
        method's checks and its Python loop over the buckets. Falls back to the public method
        if the child is not shaped as prometheus_client has made them for years."""
        key = (id(metric), labels)
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = _writer(self._child(metric, labels))
        return writer

    def _marker(self, metric: Any, labels: tuple[str, ...]) -> Callable[[float, Any], None]:
        """Like ``_writer``, for a value that carries an exemplar (see ``_exemplar_writer``)."""
        key = (id(metric), labels)
        marker = self._markers.get(key)
        if marker is None:
            marker = self._markers[key] = _exemplar_writer(self._child(metric, labels))
        return marker

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        # metric.labels() validates and locks on every call; label sets repeat endlessly.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _add(self, metric: Any, labels: tuple[str, ...], value: float,
             exemplar: dict[str, str] | None) -> None:
        """Count (a counter) or observe (a histogram) ``value`` on a label child."""
        if exemplar is None:
            writer = self._writers.get((id(metric), labels))
            (writer or self._writer(metric, labels))(value)
        else:
            marker = self._markers.get((id(metric), labels))
            (marker or self._marker(metric, labels))(value, exemplar)

    needs_run = never_needs_run  # a run that inherits everything adds no sample

    def on_run_end(self, run: Run) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._run_end(run)
        finally:
            lock.release()

    def _run_end(self, run: Run) -> None:
        status = run.status  # a StrEnum: its own label value
        kind = run.kind
        duration = run.duration
        exemplar = self._exemplar(run)  # built once per run
        add = self._add
        if kind is _LLM:
            self._llm_end(run, status, duration, exemplar)
        elif kind is _TOOL:
            add(self._tool_calls, (run.label, run.persona, status), 1, exemplar)
            add(self._tool_seconds, (run.label, run.persona), duration, exemplar)
        # run.introduces_stage, without a property call per run
        if run.stage_run is run and run.stage != UNKNOWN and status is not _EVICTED:
            add(self._stage_seconds, (run.workflow, run.stage, run.stage_persona or run.persona),
                duration, exemplar)
        if run.parent is None:
            add(self._workflow_seconds, (run.workflow, status), duration, exemplar)

    def _llm_end(self, run: Run, status: str, duration: float,
                 exemplar: dict[str, str] | None) -> None:
        model, persona = run.label, run.persona
        add = self._add
        add(self._llm_requests, (model, persona, status), 1, exemplar)
        add(self._llm_seconds, (model, persona, status), duration, exemplar)
        if run.first_token_mono is not None:
            add(self._first_token, (model, persona),
                _positive(run.first_token_mono - run.start_mono), exemplar)
        usage = run.usage
        if run.usage_in_child:  # counted at the inner call
            return
        if (usage is None or usage.estimated) and run.status is _OK:
            add(self._usage_missing, (model, persona), 1, exemplar)
        if usage is None:
            return
        estimated = usage.estimated
        if usage.input_tokens:
            add(self._tokens, (persona, model, "input_estimated" if estimated else "input"),
                usage.input_tokens, exemplar)
        if usage.output_tokens:
            add(self._tokens, (persona, model, "output_estimated" if estimated else "output"),
                usage.output_tokens, exemplar)
        if usage.cache_read_tokens or usage.cache_creation_tokens or usage.reasoning_tokens:
            for detail, count in usage.details().items():
                add(self._token_details, (persona, model, detail), count, exemplar)
        cost = run.cost
        if cost is not None:
            add(self._cost, (persona, model, "estimated" if cost.estimated else "reported"),
                cost.total_usd, exemplar)
        elif run.unpriced:
            add(self._unpriced, (persona, model), 1, exemplar)

    def _locked_add(self, metric: Any, labels: tuple[str, ...], value: float,
                    exemplar: dict[str, str] | None) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._add(metric, labels, value, exemplar)
        finally:
            lock.release()

    def on_gate(self, verdict: GateVerdict) -> None:
        run = verdict.run
        if run.gate is None or run.gate_result is None:
            return
        labels = (run.workflow, run.stage, run.gate)
        if verdict.retried:
            self._locked_add(self._gates_retried, labels, 1, self._exemplar(run))
        elif run.gate_result == UNRECOGNISED:
            self._locked_add(self._gates_unrecognised, labels, 1, self._exemplar(run))
        else:
            self._locked_add(self._gates, (*labels, run.gate_result), 1, self._exemplar(run))

    def on_switch(self, switch: PersonaSwitch) -> None:
        self._locked_add(self._switches,
                         (switch.from_persona, switch.to_persona, switch.workflow), 1,
                         self._exemplar(switch.run))

    def on_stint(self, stint: PersonaStint) -> None:
        self._locked_add(self._persona_seconds, (stint.persona, stint.workflow), stint.seconds,
                         None)

    def on_handoff(self, handoff: Handoff) -> None:
        self._locked_add(self._handoffs,
                         (handoff.from_persona, handoff.to_persona, handoff.workflow), 1,
                         self._exemplar(handoff.run))

    def on_budget(self, status: BudgetStatus) -> None:
        usd = status.unit == "usd"
        limit, remaining, exceeded = (
            (self._cost_limit, self._cost_remaining, self._cost_exceeded) if usd
            else (self._budget_limit, self._budget_remaining, self._budget_exceeded))
        limit.labels(status.persona, status.scope).set(status.limit)
        remaining.labels(status.persona, status.scope).set(status.remaining)
        # Exported at 0 before the first overrun: increase() cannot see a series born at 1,
        # and the budget-exceeded alerts would miss a process's first overrun.
        exceeded.labels(status.persona, status.scope)

    def on_budget_exceeded(self, status: BudgetStatus) -> None:
        exceeded = self._cost_exceeded if status.unit == "usd" else self._budget_exceeded
        self._locked_add(exceeded, (status.persona, status.scope), 1, None)

    def on_drop(self, reason: str) -> None:
        self._locked_add(self._dropped, (reason,), 1, None)

    def on_internal_error(self, component: str) -> None:
        self._locked_add(self._internal, (component,), 1, None)


def _exemplar_writer(child: Any) -> Callable[[float, dict[str, str]], None]:
    """Adds a value with its exemplar, as ``inc``/``observe`` with ``exemplar=`` would, for
    the caller holding the registry's write lock (see ``_writer``). prometheus_client checks
    the exemplar's labels on every call and finds the bucket in a Python loop: ours are one
    valid label name and a trace id of bounded length, checked when built (``_exemplar``)."""
    value = getattr(child, "_value", None)
    if value is not None and callable(getattr(value, "inc", None)):  # counter
        if type(value) is MutexValue:
            def add(amount: float, exemplar: dict[str, str]) -> None:
                value._value += amount
                value._exemplar = Exemplar(exemplar, amount, _time())

            return add
        return child.inc  # type: ignore[no-any-return]
    total = getattr(child, "_sum", None)
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if (type(total) is not MutexValue or not buckets or not bounds
            or len(buckets) != len(bounds)
            or not all(type(bucket) is MutexValue for bucket in buckets)):
        return child.inc if hasattr(child, "inc") else child.observe  # type: ignore[no-any-return]
    last = len(buckets)

    def observe(amount: float, exemplar: dict[str, str]) -> None:
        total._value += amount
        index = bisect_left(bounds, amount)  # the first bucket whose bound is >= amount
        if index < last:
            bucket = buckets[index]
            bucket._value += 1
            bucket._exemplar = Exemplar(exemplar, amount, _time())

    return observe


def _positive(seconds: float) -> float:
    return seconds if seconds > 0.0 else 0.0  # not max(): a builtin call costs more here


def _writer(child: Any) -> Callable[[float], None]:
    """Adds to a label child's values directly; the caller holds the registry's write lock.

    prometheus_client's own ``inc``/``observe`` take a lock per value (a histogram: two) and
    check their arguments each time; the sink takes one lock per call instead. Values that are
    not plain in-process ones (multiprocess mode's files) and children shaped unlike
    prometheus_client's go through their own methods."""
    value = getattr(child, "_value", None)
    if value is not None and callable(getattr(value, "inc", None)):  # counter
        if type(value) is MutexValue:
            def add(amount: float) -> None:
                value._value += amount

            return add
        method: Callable[[float], None] = value.inc
        return method
    total = getattr(child, "_sum", None)
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if total is None or not buckets or not bounds or len(buckets) != len(bounds):
        return child.inc if hasattr(child, "inc") else child.observe  # type: ignore[no-any-return]
    last = len(buckets)
    if type(total) is MutexValue and all(type(bucket) is MutexValue for bucket in buckets):
        def observe(amount: float) -> None:
            total._value += amount
            index = bisect_left(bounds, amount)  # the first bucket whose bound is >= amount
            if index < last:
                buckets[index]._value += 1

        return observe
    add_sum = total.inc
    add_one = [bucket.inc for bucket in buckets]

    def observe_each(amount: float) -> None:
        add_sum(amount)
        index = bisect_left(bounds, amount)
        if index < last:
            add_one[index](1)

    return observe_each
