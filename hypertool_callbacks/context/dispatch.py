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
from hypertool_callbacks.context.sink import Sink, never_needs_run
from hypertool_callbacks.safety import RateLimitedLog

_log = logging.getLogger(__name__)

Note = tuple[str, Any]
"""What to tell sinks once the tracker's lock is released: (method name, argument)."""

_Listeners = list[tuple[Sink, Callable[[Any], None]]]


class Dispatcher:
    """The sinks, and per sink method the ones that implement it (not the base no-op)."""

    def __init__(self, sinks: Iterable[Sink], strict: bool, warn: RateLimitedLog) -> None:
        self.strict = strict
        self._warn = warn
        self.replace(list(sinks))

    def replace(self, sinks: list[Sink]) -> None:
        """Use ``sinks`` from now on (a new list: a notify running elsewhere keeps the old)."""
        self.sinks: list[Sink] = sinks
        self._table: dict[str, _Listeners] = {}
        # What the hot path asks per run: the needs_run of the sinks that may need a folded
        # run, and whether anyone hears run starts.
        self.run_watchers = [sink.needs_run for sink in sinks
                             if getattr(type(sink), "needs_run", None) is not never_needs_run]
        self.hears_starts = bool(self._listeners("on_run_start"))

    def _listeners(self, method: str) -> _Listeners:
        base = getattr(Sink, method)
        bound = [(sink, getattr(sink, method)) for sink in self.sinks]
        found = [(sink, fn) for sink, fn in bound if getattr(fn, "__func__", None) is not base]
        self._table[method] = found
        return found

    def notify(self, notes: list[Note]) -> None:
        table = self._table
        for method, arg in notes:
            listeners = table.get(method)
            if listeners is None:
                listeners = self._listeners(method)
            for sink, handler in listeners:
                try:
                    handler(arg)
                except Exception as exc:
                    if self.strict:
                        raise
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
