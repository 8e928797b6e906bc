"""What the in-memory recorder keeps (see ``sinks/recorder.py``): plain records of one
workflow execution, copied from the tracker's runs (names, numbers, statuses; no inputs,
outputs or prompts). Times are seconds from the start of the execution's root run."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypertool_callbacks.context.records import BudgetStatus
from hypertool_callbacks.events import RunKind


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
