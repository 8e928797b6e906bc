"""Facts the tracker derives across runs, handed to sinks next to the runs themselves.

Read-only by convention. The ones made on every switch are not frozen: a frozen dataclass
sets each field through ``object.__setattr__``, four times the cost of building it."""

from __future__ import annotations

from dataclasses import dataclass

from hypertool_callbacks.context.runs import Run


@dataclass(slots=True)
class PersonaSwitch:
    """The acting persona of one workflow execution changed from ``from_persona``."""

    from_persona: str
    to_persona: str
    workflow: str
    execution: str
    run: Run  # the run whose start made the switch
    time_ns: int


@dataclass(slots=True)
class PersonaStint:
    """A persona stopped acting (switch or end of execution) after ``seconds``."""

    persona: str
    workflow: str
    execution: str
    seconds: float


@dataclass(slots=True)
class GateVerdict:
    """A gate run's verdict is settled: it counts (``run.gate_result``), or a retry of its
    LangGraph node superseded it (``retried``)."""

    run: Run
    retried: bool = False


@dataclass(slots=True)
class Handoff:
    """A run handed control to another agent (``transfer_to_x`` tool, ``Command(goto=x)``)."""

    from_persona: str
    to_persona: str
    workflow: str
    run: Run


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A persona's budget after a change (or a check before an LLM call), in ``unit``:
    ``tokens`` (``budget_tokens``) or ``usd`` (``budget_usd``)."""

    persona: str
    limit: float
    used: float
    scope: str
    unit: str = "tokens"

    @property
    def remaining(self) -> float:
        # May go negative: an overrun must stay visible.
        return self.limit - self.used

    @property
    def exceeded(self) -> bool:
        return self.used >= self.limit
