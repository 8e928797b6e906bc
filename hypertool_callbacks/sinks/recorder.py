"""In-memory recorder: the last N workflow executions as plain records, for notebooks and plots.

A sink like the others, off unless asked for: it is in a tracker's sink list only inside
:func:`record` (or when passed to ``build_tracker(sinks=[...])``), and the tracker calls no
sink method a sink does not have, so a tracker without it pays nothing.

Memory is bounded: at most ``max_executions`` executions (oldest dropped first), at most
``max_runs`` runs each (later ones counted in ``dropped_runs``). Records copy names, numbers and
statuses only: no inputs, outputs, prompts or references to the tracker's live runs.
Times are seconds from the start of the execution's root run (monotonic clock).

Example::

    with hypertool_callbacks.record() as rec:
        graph.invoke(state)
    rec.last().intervals        # [PersonaInterval('planner', 0.0, 0.4), ...]
    rec.summary()               # a table in a notebook
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hypertool_callbacks.context.records import BudgetStatus, Handoff, PersonaSwitch
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.events import RunKind

if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker
    from hypertool_callbacks.summary import Summary

# This sink's per-run state in Run.extra: (ExecutionRecord, RunRecord or None when over the
# cap, the root's start_mono).
_KEY = "recorder"


@dataclass(slots=True)
class RunRecord:
    """One run of an execution. ``index`` is its position in start order (0: the root)."""

    index: int
    parent: int | None
    kind: str
    name: str
    persona: str
    stage: str
    workflow: str
    agent: str | None
    start: float
    model: str | None = None  # the bounded model label (LLM runs) or tool label (tool runs)
    end: float | None = None
    status: str = "running"
    first_token: float | None = None  # seconds after the run's own start
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_counted: bool = False  # usage reported and counted here (not in a nested call)
    cost_usd: float | None = None  # priced LLM calls only (see context.cost)
    gate: str | None = None
    gate_result: str | None = None
    handoff_to: tuple[str, ...] = ()  # agents this run handed off to
    introduces_stage: bool = False
    stage_persona: str | None = None
    error_type: str | None = None
    trace_id: str | None = None

    @property
    def duration(self) -> float:
        return 0.0 if self.end is None else max(0.0, self.end - self.start)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class PersonaInterval:
    """A persona was acting from ``start`` to ``end`` (seconds into the execution)."""

    persona: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class Transition:
    """A persona switch or a handoff at ``time`` seconds into the execution."""

    from_persona: str
    to_persona: str
    time: float


@dataclass(frozen=True, slots=True)
class StageSpan:
    stage: str
    persona: str
    start: float
    end: float
    status: str

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    stage: str
    persona: str
    result: str
    time: float


@dataclass(slots=True)
class ExecutionRecord:
    """One workflow execution (one root run), as recorded."""

    workflow: str
    root_name: str
    trace_id: str | None = None
    runs: list[RunRecord] = field(default_factory=list)
    switches: list[Transition] = field(default_factory=list)
    handoffs: list[Transition] = field(default_factory=list)
    budgets: dict[str, BudgetStatus] = field(default_factory=dict)  # last status per persona
    dropped_runs: int = 0
    # Acting persona, for the intervals; closed at the root's end.
    _acting: tuple[str, float] | None = None
    _intervals: list[PersonaInterval] = field(default_factory=list)

    @property
    def root(self) -> RunRecord:
        return self.runs[0]

    @property
    def finished(self) -> bool:
        return self.root.end is not None

    @property
    def duration(self) -> float:
        return self.root.duration

    @property
    def status(self) -> str:
        return self.root.status

    @property
    def intervals(self) -> list[PersonaInterval]:
        """Who acted when; the last interval is open (until now) while the run goes on."""
        out = list(self._intervals)
        if self._acting is not None:
            end = self.root.end if self.root.end is not None else self._latest()
            out.append(PersonaInterval(self._acting[0], self._acting[1], end))
        return out

    def _latest(self) -> float:
        return max((r.end if r.end is not None else r.start) for r in self.runs)

    @property
    def personas(self) -> list[str]:
        """Personas in order of first appearance (intervals, then any other run)."""
        seen: dict[str, None] = {}
        for interval in self.intervals:
            seen.setdefault(interval.persona)
        for run in self.runs:
            if run.persona != "unknown":
                seen.setdefault(run.persona)
        return list(seen)

    @property
    def llm_calls(self) -> list[RunRecord]:
        return [r for r in self.runs if r.kind == RunKind.LLM.value]

    @property
    def tool_calls(self) -> list[RunRecord]:
        return [r for r in self.runs if r.kind == RunKind.TOOL.value]

    @property
    def stages(self) -> list[StageSpan]:
        return [StageSpan(r.stage, r.stage_persona or r.persona, r.start,
                          r.end if r.end is not None else r.start, r.status)
                for r in self.runs if r.introduces_stage and r.end is not None]

    @property
    def gates(self) -> list[GateResult]:
        return [GateResult(r.gate, r.stage, r.stage_persona or r.persona, r.gate_result,
                           r.end or r.start)
                for r in self.runs if r.gate is not None and r.gate_result is not None]

    def children(self, index: int) -> list[RunRecord]:
        return [r for r in self.runs if r.parent == index]


class RecorderSink(Sink):
    """Keeps the last ``max_executions`` executions in memory (thread-safe)."""

    name = "recorder"

    def __init__(self, max_executions: int = 20, max_runs: int = 2000) -> None:
        if max_executions < 1 or max_runs < 1:
            raise ValueError("max_executions and max_runs must be at least 1")
        self.max_executions = max_executions
        self.max_runs = max_runs
        self._executions: OrderedDict[int, ExecutionRecord] = OrderedDict()
        self._budgets: dict[str, BudgetStatus] = {}
        self._lock = threading.Lock()
        self._serial = 0
        self.dropped_executions = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def executions(self) -> list[ExecutionRecord]:
        """Recorded executions, oldest first (live ones included)."""
        with self._lock:
            return list(self._executions.values())

    def last(self, workflow: str | None = None) -> ExecutionRecord:
        """The most recent finished execution (of ``workflow``, when given)."""
        for execution in reversed(self.executions):
            if execution.finished and workflow in (None, execution.workflow):
                return execution
        raise LookupError("no finished execution recorded"
                          + (f" for workflow {workflow!r}" if workflow else ""))

    @property
    def budgets(self) -> dict[str, BudgetStatus]:
        """The latest budget status of every budgeted persona seen."""
        with self._lock:
            return dict(self._budgets)

    def summary(self) -> Summary:
        from hypertool_callbacks.summary import Summary

        return Summary.of(self)

    def clear(self) -> None:
        with self._lock:
            self._executions.clear()

    def seed_budgets(self, statuses: list[BudgetStatus]) -> None:
        """Known limits before anything ran (a recorder attached to a running tracker)."""
        with self._lock:
            for status in statuses:
                self._budgets.setdefault(status.persona, status)

    # -- sink interface ----------------------------------------------------------------------

    def on_run_start(self, run: Run) -> None:
        parent = run.parent
        parent_index: int | None = None
        with self._lock:
            if parent is None:
                execution = self._new_execution(run)
                start = run.start_mono
            else:
                state = parent.extra.get(_KEY)
                if state is None:  # started before the recorder was attached
                    return
                execution, parent_record, start = state
                if parent_record is None or len(execution.runs) >= self.max_runs:
                    # Over the cap: counted, and its descendants too (not recorded).
                    execution.dropped_runs += 1
                    run.extra[_KEY] = (execution, None, start)
                    return
                parent_index = parent_record.index
            record = RunRecord(
                index=len(execution.runs), parent=parent_index,
                kind=run.kind.value, name=run.name,
                persona=run.persona, stage=run.stage, workflow=run.workflow, agent=run.agent,
                start=run.start_mono - start,
                model=run.label if run.kind in (RunKind.LLM, RunKind.TOOL) else None,
                gate=run.gate, introduces_stage=run.introduces_stage,
            )
            execution.runs.append(record)
            run.extra[_KEY] = (execution, record, start)
            # The first known persona starts the timeline; switches move it (on_switch).
            if execution._acting is None and run.persona != "unknown":
                execution._acting = (run.persona, record.start)

    def on_first_token(self, run: Run) -> None:
        state = run.extra.get(_KEY)
        if state is not None and state[1] is not None and run.first_token_mono is not None:
            state[1].first_token = max(0.0, run.first_token_mono - run.start_mono)

    def on_run_end(self, run: Run) -> None:
        state = run.extra.get(_KEY)
        if state is None or state[1] is None:
            return
        execution, record, base = state
        with self._lock:
            record.end = (run.end_mono if run.end_mono is not None else run.start_mono) - base
            record.status = run.status.value
            if run.kind is RunKind.LLM and run.label != record.model:
                record.model = run.label  # learned from the response
            usage = run.usage
            if usage is not None and not run.usage_in_child:
                record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
                record.tokens_counted = True
            if run.cost is not None:
                record.cost_usd = run.cost.total_usd
            record.gate_result = run.gate_result
            record.handoff_to = run.handoff_to
            record.stage_persona = run.stage_persona
            record.error_type = None if run.error is None else type(run.error).__name__
            record.trace_id = run.trace_id
            if run.parent is None:
                execution.trace_id = run.trace_id
                if execution._acting is not None:
                    persona, since = execution._acting
                    execution._intervals.append(PersonaInterval(persona, since, record.end))
                    execution._acting = None
                for persona in execution.personas:
                    if persona in self._budgets:
                        execution.budgets[persona] = self._budgets[persona]

    def on_switch(self, switch: PersonaSwitch) -> None:
        state = switch.run.extra.get(_KEY)
        if state is None:
            return
        execution, _, base = state  # a run over the cap still moves the timeline
        time = switch.run.start_mono - base
        with self._lock:
            execution.switches.append(Transition(switch.from_persona, switch.to_persona, time))
            acting = execution._acting
            if acting is not None and acting[0] != switch.to_persona:
                execution._intervals.append(PersonaInterval(acting[0], acting[1], time))
            if acting is None or acting[0] != switch.to_persona:
                execution._acting = (switch.to_persona, time)

    def on_handoff(self, handoff: Handoff) -> None:
        state = handoff.run.extra.get(_KEY)
        if state is None:
            return
        execution, _, base = state
        sender = handoff.run
        time = (sender.end_mono if sender.end_mono is not None else sender.start_mono) - base
        with self._lock:
            execution.handoffs.append(Transition(handoff.from_persona, handoff.to_persona, time))

    def on_budget(self, status: BudgetStatus) -> None:
        if status.unit != "tokens":  # the summary's budget columns are token budgets
            return
        with self._lock:
            self._budgets[status.persona] = status

    # -- internals ---------------------------------------------------------------------------

    def _new_execution(self, root: Run) -> ExecutionRecord:
        execution = ExecutionRecord(workflow=root.workflow, root_name=root.name)
        self._serial += 1
        self._executions[self._serial] = execution
        while len(self._executions) > self.max_executions:
            self._executions.popitem(last=False)
            self.dropped_executions += 1
        return execution


@contextmanager
def record(tracker: Tracker | None = None, *, max_executions: int = 20,
           max_runs: int = 2000) -> Iterator[RecorderSink]:
    """Record what ``tracker`` (default: the process-wide one) sees inside the block.

    The recorder stays readable after the block; it is removed from the tracker on exit, so
    re-running a notebook cell does not stack recorders.
    """
    if tracker is None:
        from hypertool_callbacks.wiring import get_tracker

        tracker = get_tracker()
    recorder = RecorderSink(max_executions, max_runs)
    recorder.seed_budgets(tracker.budgets.limits())
    tracker.add_sink(recorder)
    try:
        yield recorder
    finally:
        tracker.remove_sink(recorder)
