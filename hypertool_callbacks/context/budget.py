"""Token and USD budgets per persona (one book per unit).

Scopes: ``workflow`` -- each workflow execution starts with the full budget; ``process`` --
since the process started, or over a rolling window of ``budget_window_seconds``.

An LLM call made outside any workflow (a bare ``llm.invoke``: the call is the root run) is no
execution of its own for a budget, or it could never be stopped: under ``workflow`` scope all
such calls of a persona count against one running total in the process (per LangGraph thread
when the call carries a ``thread_id``). See :func:`budget_execution`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypertool_callbacks.config import PersonaConfig
from hypertool_callbacks.context.records import BudgetStatus
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.safety import RateLimitedLog

OUTSIDE_WORKFLOWS = "outside-workflows"
"""The execution key shared by every LLM call made outside a workflow (and any thread)."""


def budget_execution(run: Run) -> str:
    """The execution whose budget an LLM call spends under ``workflow`` scope."""
    if run.parent is None and run.thread_id is None:
        return OUTSIDE_WORKFLOWS  # a bare call: never ends, so it is never reset
    return run.execution


@dataclass(frozen=True, slots=True)
class _Limit:
    tokens: float  # the limit, in the book's unit
    scope: str
    window: float | None


class BudgetBook:
    """Counts tokens (or USD, ``unit="usd"``: ``budget_usd``) against each persona's budget;
    thread-safe, bounded memory."""

    def __init__(self, personas: Mapping[str, PersonaConfig], max_executions: int,
                 unit: str = "tokens") -> None:
        self.unit = unit
        self._limits: dict[str, _Limit] = {}
        for name, p in personas.items():
            limit = p.budget_usd if unit == "usd" else p.budget_tokens
            if limit is not None:
                self._limits[name] = _Limit(limit, p.budget_scope, p.budget_window_seconds)
        self._process: dict[str, float] = {}
        self._windows: dict[str, deque[tuple[float, float]]] = {}
        self._workflow: dict[tuple[str, str], float] = {}
        self._max_executions = max_executions
        self._lock = threading.Lock()

    def limits(self) -> list[BudgetStatus]:
        """Every budgeted persona, full: the starting values to export."""
        return [BudgetStatus(p, lim.tokens, 0, lim.scope, self.unit)
                for p, lim in self._limits.items()]

    def has_budget(self, persona: str) -> bool:
        return persona in self._limits

    def status(self, persona: str, execution: str, now: float) -> BudgetStatus | None:
        limit = self._limits.get(persona)
        if limit is None:
            return None
        with self._lock:
            return BudgetStatus(persona, limit.tokens, self._used(persona, limit, execution, now),
                                limit.scope, self.unit)

    def consume(self, persona: str, execution: str, tokens: float,
                now: float) -> BudgetStatus | None:
        limit = self._limits.get(persona)
        if limit is None:
            return None
        with self._lock:
            if limit.scope == "workflow":
                key = (execution, persona)
                used = self._workflow.pop(key, 0)  # re-inserted last: least recently used first
                if len(self._workflow) >= self._max_executions:
                    # Executions that never ended: drop the least recently used, not grow.
                    del self._workflow[next(iter(self._workflow))]
                self._workflow[key] = used + tokens
            elif limit.window is not None:
                self._windows.setdefault(persona, deque()).append((now, tokens))
            else:
                self._process[persona] = self._process.get(persona, 0) + tokens
            used = self._used(persona, limit, execution, now)
        return BudgetStatus(persona, limit.tokens, used, limit.scope, self.unit)

    def end_execution(self, execution: str) -> None:
        with self._lock:
            for key in [k for k in self._workflow if k[0] == execution]:
                del self._workflow[key]

    def _used(self, persona: str, limit: _Limit, execution: str, now: float) -> float:
        if limit.scope == "workflow":
            return self._workflow.get((execution, persona), 0)
        if limit.window is None:
            return self._process.get(persona, 0)
        window = self._windows.get(persona)
        if not window:
            return 0
        while window and window[0][0] < now - limit.window:
            window.popleft()
        return sum(tokens for _, tokens in window)


def spent_budget(books: tuple[BudgetBook, ...], run: Run, now: float, on_exceeded: str,
                 warn: RateLimitedLog, notes: list[tuple[str, Any]]) -> BudgetStatus | None:
    """Before an LLM call: note each of its persona's spent budgets (warning once a minute in
    ``warn`` mode); in ``raise`` mode, the first spent one, which refuses the call."""
    spent: BudgetStatus | None = None
    for book in books:
        status = book.status(run.persona, budget_execution(run), now)
        if status is None or not status.exceeded:
            continue
        notes.append(("on_budget_exceeded", status))
        if on_exceeded == "warn":
            message = ("USD budget of persona %r is spent ($%.6f of $%.6f)" if book.unit
                       == "usd" else "token budget of persona %r is spent (%d of %d tokens)")
            warn.warning(f"budget:{book.unit}:{run.persona}", message, run.persona,
                         status.used, status.limit)
        spent = spent or status
    return spent if on_exceeded == "raise" else None
