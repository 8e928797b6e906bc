"""Evicting runs that never end, on a timer: a stream nobody finishes, a killed task.

The tracker also sweeps when an event arrives and a sweep is due, but an app that goes quiet
after abandoning a run sends no further event: without a timer those runs (and their open
spans) would stay until the next request. One daemon thread per tracker, holding only a weak
reference to it: a tracker that is dropped without :func:`stop` ends its thread too.

Example::

    sweeper.start(tracker)   # idempotent; every min(60, run_ttl_seconds / 4) seconds
    ...
    sweeper.stop(tracker)
"""

from __future__ import annotations

import logging
import threading
import weakref

from hypertool_callbacks.context.tracker import Tracker

_log = logging.getLogger(__name__)
_MAX_INTERVAL = 60.0  # seconds: the event-driven sweep's bound too
THREAD_NAME = "hypertool-sweeper"

_lock = threading.Lock()
_running: weakref.WeakKeyDictionary[Tracker, Sweeper] = weakref.WeakKeyDictionary()


def default_interval(tracker: Tracker) -> float:
    """Every quarter TTL, at most once a minute: a run is evicted at most 25% (or 60 s) late."""
    return min(_MAX_INTERVAL, tracker.config.run_ttl_seconds / 4)


class Sweeper:
    """Calls ``tracker.evict_now()`` every ``interval`` seconds on a daemon thread until
    :meth:`stop` (or until the tracker is garbage-collected)."""

    def __init__(self, tracker: Tracker, interval: float | None = None) -> None:
        self.interval = default_interval(tracker) if interval is None else interval
        if self.interval <= 0:
            raise ValueError(f"sweep interval must be > 0, not {self.interval!r}")
        self._stopped = threading.Event()
        self._tracker = weakref.ref(tracker)
        # Wakes the thread as soon as the tracker is collected, not an interval later.
        self._finalizer = weakref.finalize(tracker, self._stopped.set)
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread; waits up to ``timeout`` for a sweep in progress to finish."""
        self._stopped.set()
        self._finalizer.detach()  # else each start/stop cycle would leave one behind
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            tracker = self._tracker()
            if tracker is None:
                return
            try:
                tracker.evict_now()
            except Exception as exc:  # sink failures are caught inside; anything else is
                _report(tracker, exc)  # counted, and must not end the sweeps for good
            del tracker  # no strong reference while waiting: the tracker may be collected


def _report(tracker: Tracker, exc: Exception) -> None:
    try:
        tracker.internal_error("sweeper", exc)
    except Exception:  # strict mode re-raises from the sinks: there is no caller to tell
        _log.exception("hypertool: sweeping runs past their TTL failed")


def start(tracker: Tracker, interval: float | None = None) -> Sweeper:
    """Start sweeping ``tracker`` (once: a second call returns the running sweeper)."""
    with _lock:
        current = _running.get(tracker)
        if current is not None and current.alive:
            return current
        sweeper = _running[tracker] = Sweeper(tracker, interval).start()
        return sweeper


def stop(tracker: Tracker | None, timeout: float = 1.0) -> None:
    """Stop sweeping ``tracker`` (no-op when it has no sweeper)."""
    if tracker is None:
        return
    with _lock:
        sweeper = _running.pop(tracker, None)
    if sweeper is not None:
        sweeper.stop(timeout)


def running(tracker: Tracker) -> Sweeper | None:
    """The live sweeper of ``tracker``, if any."""
    with _lock:
        sweeper = _running.get(tracker)
    return sweeper if sweeper is not None and sweeper.alive else None
