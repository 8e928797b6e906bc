"""Exceptions hypertool-callbacks raises on purpose (everything else is swallowed and counted)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration; the message names the file or env var, the key and the reason."""


class TokenBudgetExceeded(RuntimeError):
    """Raised before an LLM call when ``on_budget_exceeded="raise"`` and the budget is spent."""

    def __init__(self, persona: str, limit: float, used: float) -> None:
        super().__init__(
            f"token budget of persona {persona!r} is spent: {used} of {limit} tokens used"
        )
        self.persona = persona
        self.limit = limit
        self.used = used


class CostBudgetExceeded(TokenBudgetExceeded):
    """Raised before an LLM call when ``on_budget_exceeded="raise"`` and the persona's USD
    budget (``budget_usd``) is spent. A subclass of :class:`TokenBudgetExceeded`, so code that
    stops on a spent budget (adapters, applications) stops on this one too."""

    def __init__(self, persona: str, limit: float, used: float) -> None:
        RuntimeError.__init__(
            self, f"USD budget of persona {persona!r} is spent: ${used:.6f} of ${limit:.6f} used"
        )
        self.persona = persona
        self.limit = limit
        self.used = used


class MetricsPortError(OSError):
    """``serve_metrics`` could not listen: the message says where and what to do instead."""

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_  # type: ignore[assignment]
