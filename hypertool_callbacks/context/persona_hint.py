"""One hint per tracker when most LLM and tool calls have persona ``unknown``."""

from __future__ import annotations

import logging

_log = logging.getLogger(__name__)
HINT_AFTER_CALLS = 20  # LLM/tool calls seen before judging whether personas are set up
HINT = ("hypertool: %d of %d LLM and tool calls so far have persona 'unknown'. Name who "
        "works: give agents and graphs names (create_agent(name=...), "
        "graph.compile(name=...)), keep the LangGraph node names as personas "
        "(node_personas = true), tag runs persona:<name> or set metadata hypertool_persona, "
        "or add [personas.<name>] rules to hypertool.toml (README: 'persona is unknown').")


class PersonaHint:
    """Counts calls until it can judge: after ``HINT_AFTER_CALLS`` calls, or at shutdown for
    a short script. Logs at INFO at most once, then stops counting. Not thread-safe (the
    tracker's lock)."""

    def __init__(self) -> None:
        self.calls = self.unknown = 0
        self.done = False

    def call(self, unknown: bool) -> None:
        self.calls += 1
        self.unknown += unknown
        if self.calls >= HINT_AFTER_CALLS:
            self.judge(final=False)

    def judge(self, final: bool) -> None:
        if self.done or not self.calls:
            return
        if 2 * self.unknown > self.calls:
            _log.info(HINT, self.unknown, self.calls)
            self.done = True
        elif not final:
            self.done = True  # personas are set up: stop counting
