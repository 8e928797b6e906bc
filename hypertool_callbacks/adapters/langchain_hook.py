"""Attaching the LangChain handler to every run (the ``langchain`` entry of the framework
registry, see ``hypertool_callbacks.frameworks``).

One LangChain *configure hook*, registered once, decides per run which handler to add: the
handler of the innermost ``instrumented()`` block, else the process-wide one set by
:func:`attach` (``instrument()``, ``HYPERTOOL_CALLBACKS``, the launcher), else none. The hook is
given no env var: LangChain's own truthiness would count ``HYPERTOOL_CALLBACKS=off`` as on, and
would build a fresh handler for every run. The handler is added only where the run has no
``HypertoolCallbackHandler`` yet, so an explicitly passed one is never doubled.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from langchain_core.tracers.context import register_configure_hook

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker

__all__ = ["attach", "current_handler", "detach", "scoped"]

_lock = threading.Lock()
_scoped: contextvars.ContextVar[HypertoolCallbackHandler | None] = contextvars.ContextVar(
    "hypertool_handler", default=None)
_process_handler: HypertoolCallbackHandler | None = None
_registered = False


class _HandlerSlot:
    """What the configure hook reads. LangChain only calls ``.get()`` on the context variable
    it is given; a plain ContextVar cannot have a process-wide value visible in new threads."""

    def get(self) -> HypertoolCallbackHandler | None:
        return _scoped.get() or _process_handler


def _register() -> None:
    global _registered
    with _lock:
        if not _registered:
            slot = cast("contextvars.ContextVar[Any]", _HandlerSlot())
            register_configure_hook(slot, True, HypertoolCallbackHandler)
            _registered = True


def attach(tracker: Tracker) -> None:
    """Every LangChain/LangGraph run from now on reports to ``tracker``."""
    global _process_handler
    _register()
    _process_handler = HypertoolCallbackHandler(tracker)


def detach() -> None:
    """Undo :func:`attach` (``instrumented()`` blocks keep working)."""
    global _process_handler
    _process_handler = None


def current_handler() -> HypertoolCallbackHandler | None:
    """The handler runs started here would get (None: not observed)."""
    return _HandlerSlot().get()


@contextmanager
def scoped(handler: HypertoolCallbackHandler) -> Iterator[HypertoolCallbackHandler]:
    """Runs started inside the block (this context only) get ``handler``."""
    _register()
    token = _scoped.set(handler)
    try:
        yield handler
    finally:
        _scoped.reset(token)
