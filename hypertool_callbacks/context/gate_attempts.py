"""Which gate verdict counts: the last attempt's, when LangGraph retries a node.

A node with a ``RetryPolicy`` that raises is run again as the same task (same
``langgraph_checkpoint_ns``), so every attempt of a gate in it ends with its own verdict. Only
the last one is the gate's result; the earlier ones are *retried* attempts. The rule:

  * a verdict outside any LangGraph node is final at once;
  * inside a node (the gate is the node, or runs in it), it waits for that node attempt:
    - the attempt ends without error -> final (LangGraph retries only failures);
    - the attempt fails -> it may be retried: a new attempt of the same task supersedes it
      (``retried``); the end of the graph that ran the task makes it final.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from hypertool_callbacks.context.records import GateVerdict
from hypertool_callbacks.context.runs import Run, Status

NAMESPACE_KEY = "langgraph_checkpoint_ns"
_HELD = "gate_verdicts"  # Run.extra key: verdicts waiting for this node attempt to end
_RETRYABLE = "gate_retryable"  # Run.extra key (a graph run): failed tasks it may retry
_MAX_RETRYABLE = 1000


class GateAttempts:
    """Holds gate verdicts until they are final; not thread-safe (the tracker's lock)."""

    def __init__(self) -> None:
        # Failed node attempts whose gate verdicts a retry may still supersede, by task.
        self._retryable: OrderedDict[Hashable, list[Run]] = OrderedDict()

    @staticmethod
    def _task(run: Run) -> tuple[str, str] | None:
        ns = run.metadata.get(NAMESPACE_KEY)
        return (run.execution, ns) if isinstance(ns, str) and ns else None

    @property
    def pending(self) -> bool:
        """Whether any failed node attempt may still be superseded by a retry."""
        return bool(self._retryable)

    def started(self, run: Run) -> list[GateVerdict]:
        """A run started: a node run of a task that failed before supersedes its verdicts."""
        if not self._retryable or not run.is_node:
            return []
        task = self._task(run)
        held = self._retryable.pop(task, None) if task is not None else None
        return [GateVerdict(gate, retried=True) for gate in held or ()]

    def ended(self, run: Run) -> list[GateVerdict]:
        """A run ended (its ``gate_result`` set): the verdicts that are final now."""
        final: list[GateVerdict] = []
        if run.gate_result is not None:
            attempt = _attempt(run)
            if attempt is None or self._task(attempt) is None:
                final.append(GateVerdict(run))
            else:
                attempt.extra.setdefault(_HELD, []).append(run)
        held: list[Run] | None = run.extra.pop(_HELD, None)
        if held:
            task = self._task(run)
            if run.status is Status.ERROR and task is not None and run.parent is not None:
                self._hold(task, held, run.parent, final)
            else:
                final.extend(GateVerdict(gate) for gate in held)
        for task in run.extra.pop(_RETRYABLE, ()):  # a graph ended: no more retries in it
            final.extend(GateVerdict(gate) for gate in self._retryable.pop(task, ()))
        return final

    def _hold(self, task: tuple[str, str], held: list[Run], graph: Run,
              final: list[GateVerdict]) -> None:
        self._retryable[task] = held
        graph.extra.setdefault(_RETRYABLE, []).append(task)
        while len(self._retryable) > _MAX_RETRYABLE:  # graphs that never ended: settle
            _, oldest = self._retryable.popitem(last=False)
            final.extend(GateVerdict(gate) for gate in oldest)


def _attempt(run: Run) -> Run | None:
    """The innermost LangGraph node run (one attempt of a task) the run is, or runs in."""
    current: Run | None = run
    while current is not None:
        if current.is_node:
            return current
        current = current.parent
    return None
