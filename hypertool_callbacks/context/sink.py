"""The sink interface the tracker calls: every method has a no-op default, so a sink (see
``hypertool_callbacks.sinks``) implements what it needs.

Calls come from the tracker, outside its lock, possibly from several threads at once. A sink
must be cheap (no network I/O on these calls) and may raise: the tracker catches, counts and
logs (rate-limited) whatever a sink raises, so one broken backend cannot break the app.
Sinks are called in the order given; a sink that sets ``run.trace_id`` should come first so
that later sinks can use it (e.g. as a metric exemplar).
"""

from __future__ import annotations

from hypertool_callbacks.context.records import (
    BudgetStatus,
    GateVerdict,
    Handoff,
    PersonaStint,
    PersonaSwitch,
)
from hypertool_callbacks.context.runs import Run


def never_needs_run(sink: Sink, parent: Run) -> bool:
    """``needs_run`` of a sink that never needs a folded run (metrics: a run that inherits
    everything adds no sample). The tracker knows it by identity and does not ask."""
    return False


def takes_every_tree(sink: Sink, root: Run) -> bool:
    """``takes_tree`` of a sink that wants every run: the tracker knows it by identity and
    does not ask."""
    return True


class Sink:
    name = "sink"

    takes_tree = takes_every_tree
    """``takes_tree(root)``: asked once when a root run starts (resolved, before its
    ``on_run_start``): False and this sink gets no note caused by any run of that tree (run
    start/end, first token, switches, stints, gates...). For a sink that would ignore the whole
    tree anyway, e.g. an OTel sink with no recording provider. Runs evicted or ended at
    shutdown still reach every sink."""

    def needs_run(self, parent: Run) -> bool:
        """Whether this sink needs to see a child of ``parent`` that adds nothing to it (a
        prompt template, a parser, a plain lambda: same persona, stage, node and agent).
        When no sink does, the tracker folds such a run into its parent: no
        ``on_run_start``/``on_run_end`` for it, and its children hang off ``parent``. A sink
        that draws the run tree (spans, traces) answers True while it is drawing one."""
        return True

    def on_run_start(self, run: Run) -> None:
        """A run started; persona, stage, workflow and agent are resolved."""

    def on_first_token(self, run: Run) -> None:
        """A streaming LLM run produced its first token (``run.first_token_*`` set)."""

    def on_run_end(self, run: Run) -> None:
        """A run ended (``run.status`` ok/error/evicted; usage, gate result, outputs set)."""

    def on_switch(self, switch: PersonaSwitch) -> None:
        """The acting persona of an execution changed."""

    def on_stint(self, stint: PersonaStint) -> None:
        """A persona stopped acting after ``stint.seconds``."""

    def on_handoff(self, handoff: Handoff) -> None:
        """An agent handed control to another."""

    def on_gate(self, verdict: GateVerdict) -> None:
        """A gate's verdict is final, or was superseded by a retry (after the run ended)."""

    def on_budget(self, status: BudgetStatus) -> None:
        """A persona's budget changed (or was found spent before an LLM call)."""

    def on_budget_exceeded(self, status: BudgetStatus) -> None:
        """An LLM call started while its persona's budget was already spent."""

    def on_drop(self, reason: str) -> None:
        """An event could not be used (``unknown_run``, ``duplicate_run``, ``evicted``)."""

    def on_internal_error(self, component: str) -> None:
        """Our own code failed somewhere (the app was not affected)."""

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush and release resources, within ``timeout`` seconds."""
