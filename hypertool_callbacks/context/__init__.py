"""Framework- and backend-neutral state: run tree, persona/stage inference, gates, budgets."""

from hypertool_callbacks.context.records import BudgetStatus, Handoff, PersonaStint, PersonaSwitch
from hypertool_callbacks.context.runs import UNKNOWN, Run, Source, Status
from hypertool_callbacks.context.tracker import Tracker

__all__ = [
    "UNKNOWN", "BudgetStatus", "Handoff", "PersonaStint", "PersonaSwitch", "Run", "Source",
    "Status", "Tracker",
]
