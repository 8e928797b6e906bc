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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from hypertool_callbacks.clock import Clock
from hypertool_callbacks.config import ENV_ACTIVATE, Config, load_config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.sinks.base import Sink
from hypertool_callbacks.sinks.prometheus import PrometheusSink

_log = logging.getLogger(__name__)
_lock = threading.RLock()
_tracker: Tracker | None = None
_scoped: contextvars.ContextVar[Any] = contextvars.ContextVar("hypertool_handler", default=None)
_original_init: Callable[..., None] | None = None
_hook_registered = False

def default_sinks(
    config: Config,
    registry: CollectorRegistry | None = None,
    *,
    tracer_provider: Any = None,
    mask: Callable[[str], str] | None = None,
) -> list[Sink]:
    """The process-wide tracker's sinks, in order: OTel (sets ``run.trace_id``), Langfuse
    (uses it), Prometheus (uses it for exemplars). A backend whose optional dependencies are
    missing is skipped; one that fails to start is logged and skipped."""
    sinks: list[Sink] = []
    try:
        from hypertool_callbacks.sinks import otel
    except ImportError as exc:
        _log.debug("hypertool: OpenTelemetry sink unavailable: %s", exc)
    else:
        sinks.extend(otel.default_sinks(config, tracer_provider=tracer_provider, mask=mask))
    try:
        from hypertool_callbacks.sinks import langfuse

        sinks.extend(langfuse.default_sinks(config, registry))
    except ImportError as exc:
        _log.debug("hypertool: Langfuse sink unavailable: %s", exc)
    except Exception:
        # A misconfigured extra backend must not cost the app its metrics and spans.
        _log.exception("hypertool: the Langfuse sink failed to start; continuing without it")
    sinks.append(PrometheusSink(registry))
    return sinks


def build_tracker(
    config: Config | None = None,
    *,
    registry: CollectorRegistry | None = None,
    sinks: Iterable[Sink] | None = None,
    clock: Clock | None = None,
) -> Tracker:
    """A tracker with the default sinks (Prometheus on ``registry``, default prometheus_client's
    own; OTel and Langfuse when installed and enabled), or exactly ``sinks`` when given."""
    config = config or load_config()
    chosen = default_sinks(config, registry) if sinks is None else list(sinks)
    return Tracker(config, chosen, clock)


def get_tracker() -> Tracker:
    """The process-wide tracker, built from ``load_config()`` on first use."""
    global _tracker
    if _tracker is None:
        with _lock:
            if _tracker is None:
                _tracker = build_tracker()
    return _tracker


def get_tracker_or_disabled() -> Tracker:
    """:func:`get_tracker`, except that an invalid configuration is logged (once, as an error)
    and answered with a tracker that has no sinks: used where raising would break the app."""
    global _tracker
    try:
        return get_tracker()
    except ConfigError as exc:
        with _lock:
            if _tracker is None:
                _log.error("hypertool-callbacks disabled: %s", exc)
                _tracker = Tracker(Config(), sinks=())
            return _tracker


def set_tracker(tracker: Tracker | None) -> Tracker | None:
    """Replace the process-wide tracker (returns the previous one)."""
    global _tracker
    with _lock:
        previous, _tracker = _tracker, tracker
    return previous


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

    with _lock:
        if tracker is not None:
            set_tracker(tracker)
        active = get_tracker()
        if _original_init is not None:
            return active
        original = BaseCallbackManager.__init__
        handler = HypertoolCallbackHandler()  # resolves the process-wide tracker lazily

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
    global _original_init
    with _lock:
        if _original_init is None:
            return
        from langchain_core.callbacks.base import BaseCallbackManager

        BaseCallbackManager.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = None


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
