"""Process-wide activation: the shared tracker, global/scoped instrumentation, env-var hook.

Three ways on, none needing a change to how the app calls LangChain:
  * ``HYPERTOOL_CALLBACKS=true`` in the environment, once this package is imported (or with
    ``hypertool-callbacks run python app.py``, which imports it for an unmodified script);
  * ``instrument()`` / ``uninstrument()``: every callback manager created meanwhile gets the
    handler (the approach OpenInference uses);
  * ``with instrumented(): ...``: only runs started inside the block (context-local).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypertool_callbacks.config import ENV_ACTIVATE
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.wiring import (
    build_tracker,
    default_sinks,
    get_tracker,
    get_tracker_or_disabled,
    set_tracker,
)

__all__ = [
    "build_tracker", "default_sinks", "get_tracker", "get_tracker_or_disabled", "instrument",
    "instrumented", "is_instrumented", "register_env_hook", "set_tracker", "uninstrument",
]

_log = logging.getLogger(__name__)
_lock = threading.RLock()
_scoped: contextvars.ContextVar[Any] = contextvars.ContextVar("hypertool_handler", default=None)
_original_init: Callable[..., None] | None = None
_global_handler: Any = None
_hook_registered = False

def _handler(tracker: Tracker | None) -> Any:
    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler

    return HypertoolCallbackHandler(tracker)


def register_env_hook() -> bool:
    """Let ``HYPERTOOL_CALLBACKS`` (and ``instrumented()``) attach the handler to every run."""
    global _hook_registered
    with _lock:
        if _hook_registered:
            return True
        try:
            from langchain_core.tracers.context import register_configure_hook

            from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
        except ImportError:
            return False
        register_configure_hook(_scoped, True, HypertoolCallbackHandler, ENV_ACTIVATE)
        _hook_registered = True
        return True


def instrument(tracker: Tracker | None = None) -> Tracker:
    """Attach the handler to every LangChain callback manager from now on (idempotent)."""
    global _original_init
    from langchain_core.callbacks.base import BaseCallbackManager

    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler

    global _global_handler
    with _lock:
        if tracker is not None:
            set_tracker(tracker)
        active = get_tracker()
        if _original_init is not None:
            if _global_handler is not None:
                _global_handler._tracker = None  # re-resolve: the process-wide one changed
            return active
        original = BaseCallbackManager.__init__
        # Resolves the process-wide tracker lazily (and again after instrument(other)).
        handler = _global_handler = HypertoolCallbackHandler()

        @functools.wraps(original)
        def init(self: BaseCallbackManager, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            try:
                if not any(isinstance(h, HypertoolCallbackHandler) for h in self.handlers):
                    self.add_handler(handler, inherit=True)
            except Exception as exc:  # never break the manager's construction
                active.internal_error("instrument", exc)

        BaseCallbackManager.__init__ = init  # type: ignore[method-assign]
        _original_init = original
        return active


def uninstrument() -> None:
    """Undo :func:`instrument` exactly."""
    global _original_init, _global_handler
    with _lock:
        if _original_init is None:
            return
        from langchain_core.callbacks.base import BaseCallbackManager

        BaseCallbackManager.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = _global_handler = None


def is_instrumented() -> bool:
    return _original_init is not None


@contextmanager
def instrumented(tracker: Tracker | None = None) -> Iterator[Tracker]:
    """Attach the handler to runs started inside the block (this context only)."""
    register_env_hook()
    handler = _handler(tracker)
    token = _scoped.set(handler)
    try:
        yield handler.tracker
    finally:
        _scoped.reset(token)
