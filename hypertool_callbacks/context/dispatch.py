"""How the tracker calls its sinks.

Each note (a sink method name and its argument) goes to the sinks that implement that method,
looked up once per sink list; a sink that raises is counted and logged (rate-limited), never
raised into the app unless strict mode says so. At shutdown, every sink flushes side by side
within one time limit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from hypertool_callbacks.clock import Clock
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink, never_needs_run, takes_every_tree
from hypertool_callbacks.safety import RateLimitedLog

_log = logging.getLogger(__name__)

Note = tuple[str, Any]
"""What to tell sinks once the tracker's lock is released: (method name, argument)."""

_Listeners = list[tuple[Sink, Callable[[Any], None]]]


class Table:
    """Per sink method, the sinks of one set that implement it (not the base no-op).

    ``skips``: the ids of the sinks left out (those that declined a run tree). A table goes
    ``stale`` when the dispatcher's sinks change; notify() then uses a fresh one."""

    def __init__(self, sinks: list[Sink], skips: tuple[int, ...] = ()) -> None:
        self.sinks = [sink for sink in sinks if id(sink) not in skips]
        self.skips = skips
        self.stale = False
        self.by_method: dict[str, _Listeners] = {}
        self.hears_starts = bool(self.listeners("on_run_start"))
        # The needs_run of this table's sinks that may need a folded run (Tracker.fold).
        self.run_watchers = [sink.needs_run for sink in self.sinks
                             if getattr(type(sink), "needs_run", None) is not never_needs_run]

    def listeners(self, method: str) -> _Listeners:
        found = self.by_method.get(method)
        if found is None:
            base = getattr(Sink, method)
            bound = [(sink, getattr(sink, method)) for sink in self.sinks]
            found = [(sink, fn) for sink, fn in bound
                     if getattr(fn, "__func__", None) is not base]
            self.by_method[method] = found
        return found


class Dispatcher:
    """The sinks, and per sink method the ones that implement it.

    A sink may decline a whole run tree when its root starts (``Sink.takes_tree``): the
    runs of that tree carry a table without it (``Run.table``), so their notes skip it."""

    def __init__(self, sinks: Iterable[Sink], strict: bool, warn: RateLimitedLog) -> None:
        self.strict = strict
        self._warn = warn
        self._all = Table([])
        self._without: dict[tuple[int, ...], Table] = {}
        self.replace(list(sinks))

    def replace(self, sinks: list[Sink]) -> None:
        """Use ``sinks`` from now on (a new list: a notify running elsewhere keeps the old)."""
        for old in (self._all, *self._without.values()):
            old.stale = True
        self.sinks: list[Sink] = sinks
        self._all = Table(sinks)
        # Tables without the sinks that declined a tree, by those sinks' ids.
        self._without = {}
        # What the hot path asks per run: the needs_run of the sinks that may need a folded
        # run (of a tree without a table yet), whether anyone hears run starts, who may
        # decline a tree.
        self.run_watchers = self._all.run_watchers
        self.hears_starts = self._all.hears_starts
        self._tree_checks = [sink for sink in sinks
                             if getattr(type(sink), "takes_tree", None) is not takes_every_tree]

    def table_for(self, root: Run) -> Table:
        """The table for the tree ``root`` starts: without the sinks that decline it. A sink
        whose check raises takes the tree (its failure is counted like any sink's)."""
        if not self._tree_checks:
            return self._all
        skips: list[int] = []
        for sink in self._tree_checks:
            try:
                if not sink.takes_tree(root):
                    skips.append(id(sink))
            except Exception as exc:
                self._failed(sink, "takes_tree", exc)
        return self._table(tuple(skips))

    def _table(self, skips: tuple[int, ...]) -> Table:
        if not skips:
            return self._all
        table = self._without.get(skips)
        if table is None:
            table = self._without[skips] = Table(self.sinks, skips)
        return table

    def notify(self, notes: list[Note], table: Table | None = None) -> None:
        if table is None:
            table = self._all
        elif table.stale:  # sinks were added or removed since the tree started
            table = self._table(table.skips)
        by_method = table.by_method
        for method, arg in notes:
            listeners = by_method.get(method)
            if listeners is None:
                listeners = table.listeners(method)
            for sink, handler in listeners:
                try:
                    handler(arg)
                except Exception as exc:
                    self._failed(sink, method, exc)

    def _failed(self, sink: Sink, method: str, exc: Exception) -> None:
        if self.strict:
            raise exc
        self._warn.warning(f"sink:{sink.name}:{method}",
                           "hypertool sink %s failed in %s: %r", sink.name, method, exc)
        if method != "on_internal_error":
            self.notify([("on_internal_error", f"sink:{sink.name}")])


def close_all(sinks: list[Sink], timeout: float, clock: Clock, warn: RateLimitedLog) -> None:
    """Shut every sink down side by side, so ``timeout`` bounds the whole, not each sink. A
    sink still sending at the limit, or one that used its whole share (it gave up), is named
    in one warning: what it had not sent is dropped."""
    # Sinks keeping the base class's no-op need no thread.
    pending = [sink for sink in sinks if type(sink).shutdown is not Sink.shutdown]
    done = threading.Condition()
    finished: list[Sink] = []
    gave_up: list[Sink] = []

    def close(sink: Sink) -> None:
        started = clock.monotonic()
        try:
            sink.shutdown(timeout)
        except Exception as exc:
            warn.warning(f"shutdown:{sink.name}", "sink %s failed to shut down: %r",
                         sink.name, exc)
        with done:
            if clock.monotonic() - started >= 0.95 * timeout:
                gave_up.append(sink)
            finished.append(sink)
            done.notify_all()

    for sink in pending:
        # Daemon threads: a sink stuck past the limit must not hold the interpreter's exit.
        threading.Thread(target=close, args=(sink,), daemon=True,
                         name=f"hypertool-shutdown-{sink.name}").start()
    with done:
        done.wait_for(lambda: len(finished) == len(pending), max(0.0, timeout))
        cut = [sink.name for sink in pending if sink in gave_up or sink not in finished]
    if cut:
        _log.warning("hypertool: flush stopped at its %.1f s limit: %s had not finished "
                     "sending; what was not sent is dropped (exit_flush_seconds sets the "
                     "limit at exit)", timeout, ", ".join(cut))
