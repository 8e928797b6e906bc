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
from typing import TYPE_CHECKING

from hypertool_callbacks.context.records import BudgetStatus, Handoff, PersonaSwitch
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.sinks.recorded import (
    ExecutionRecord,
    GateResult,
    PersonaInterval,
    RunRecord,
    StageSpan,
    Transition,
)
from hypertool_callbacks.summary import Summary

if TYPE_CHECKING:
    pass

# This sink's per-run state in Run.extra: (ExecutionRecord, RunRecord or None when over the
# cap, the root's start_mono).
_KEY = "recorder"


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


__all__ = ["ExecutionRecord", "GateResult", "PersonaInterval", "RecorderSink", "RunRecord",
           "StageSpan", "Transition"]
