"""Process-wide activation: the shared tracker, global/scoped instrumentation.

Three ways on, none needing a change to how the app calls its framework:
  * ``HYPERTOOL_CALLBACKS=true`` in the environment (or ``hypertool-callbacks run python
    app.py``): the start-up hook in ``_autoload.py``;
  * ``instrument()`` / ``uninstrument()``: every run of every supported framework (see
    ``frameworks.py``) from now on, attached when the framework is imported;
  * ``with instrumented(): ...``: only LangChain runs started inside the block (context-local).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hypertool_callbacks import frameworks
from hypertool_callbacks.context import sweeper
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.recorder import RecorderSink
from hypertool_callbacks.wiring import (
    build_tracker,
    current_tracker,
    default_sinks,
    get_tracker,
    get_tracker_or_disabled,
    set_tracker,
    shutdown_at_exit,
)

__all__ = [
    "build_tracker", "default_sinks", "get_tracker", "get_tracker_or_disabled", "instrument",
    "instrumented", "is_instrumented", "register_env_hook", "set_tracker", "uninstrument",
]

_log = logging.getLogger(__name__)
_lock = threading.RLock()
_instrumented = False


def register_env_hook() -> bool:
    """Register the LangChain configure hook that ``instrumented()`` and :func:`instrument`
    use; False when langchain-core is not installed. (Kept for callers of earlier versions:
    the hook no longer reads ``HYPERTOOL_CALLBACKS`` itself, start-up activation does.)"""
    try:
        from hypertool_callbacks.adapters import langchain_hook
    except ImportError:
        return False
    langchain_hook._register()
    return True


def instrument(tracker: Tracker | None = None) -> Tracker:
    """Observe every run of every installed framework from now on (idempotent); frameworks not
    imported yet are attached when the app imports them.

    Raises :class:`~hypertool_callbacks.ConfigError` on an invalid configuration (naming the
    file and the key). Works without any framework installed (then nothing is observed).
    At exit the tracker is shut down, within ``exit_flush_seconds``.
    """
    global _instrumented
    with _lock:
        if tracker is not None:
            set_tracker(tracker)
        active = get_tracker()
        sweeper.start(active)  # an instrument(tracker) of the app's may have none yet
        installed = frameworks.attach_all(get_tracker)
        shutdown_at_exit()  # a short script's last runs, spans and metrics are not lost
        if not installed:
            _log.warning("hypertool-callbacks: no supported framework is installed (%s); "
                         "nothing to observe",
                         ", ".join(f.module for f in frameworks.registered()))
        _instrumented = True
        return active


def uninstrument() -> None:
    """Undo :func:`instrument`, and what ``HYPERTOOL_CALLBACKS`` / the launcher attached."""
    global _instrumented
    with _lock:
        frameworks.detach_all()
        sweeper.stop(current_tracker())
        _instrumented = False


def is_instrumented() -> bool:
    return _instrumented or bool(frameworks.attached())


@contextmanager
def instrumented(tracker: Tracker | None = None) -> Iterator[Tracker]:
    """Attach the handler to LangChain runs started inside the block (this context only)."""
    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
    from hypertool_callbacks.adapters.langchain_hook import scoped

    handler = HypertoolCallbackHandler(tracker)
    with scoped(handler):
        yield handler.tracker


@contextmanager
def record(tracker: Tracker | None = None, *, max_executions: int = 20,
           max_runs: int = 2000) -> Iterator[RecorderSink]:
    """Record what ``tracker`` (default: the process-wide one) sees inside the block.

    The recorder stays readable after the block; it is removed from the tracker on exit, so
    re-running a notebook cell does not stack recorders.
    """
    if tracker is None:
        tracker = get_tracker()
    recorder = RecorderSink(max_executions, max_runs)
    recorder.seed_budgets(tracker.budgets.limits())
    tracker.add_sink(recorder)
    try:
        yield recorder
    finally:
        tracker.remove_sink(recorder)
