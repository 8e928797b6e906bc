"""Building trackers, and the process-wide one that handlers use when given none.

Below the adapters and the activation code (``runtime.py``): an adapter asks for the shared
tracker here, without knowing how activation works.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from hypertool_callbacks.clock import Clock
from hypertool_callbacks.config import Config, load_config
from hypertool_callbacks.context import sweeper
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.sinks import exit_metrics
from hypertool_callbacks.sinks.langfuse_env import LANGFUSE_NO_KEYS, keys_configured
from hypertool_callbacks.sinks.prometheus import PrometheusSink

_log = logging.getLogger(__name__)
_lock = threading.RLock()
_tracker: Tracker | None = None
_exit_hook = False


def default_sinks(
    config: Config,
    registry: CollectorRegistry | None = None,
    *,
    tracer_provider: Any = None,
    mask: Callable[[str], str] | None = None,
) -> list[Sink]:
    """The process-wide tracker's sinks, in order: OTel (sets ``run.trace_id``), Langfuse
    (uses it), Prometheus (uses it for exemplars), and the textfile/Pushgateway writer when
    configured. A backend whose optional dependencies are missing is skipped; one that fails
    to start is logged and skipped."""
    sinks: list[Sink] = []
    try:
        from hypertool_callbacks.sinks import otel
    except ImportError as exc:
        _log.debug("hypertool: OpenTelemetry sink unavailable: %s", exc)
    else:
        sinks.extend(otel.default_sinks(config, tracer_provider=tracer_provider, mask=mask))
    try:
        if _langfuse_wanted(config):  # else skip importing its SDK (~0.3 s, and it imports
            from hypertool_callbacks.sinks import langfuse  # langchain_core when installed)

            sinks.extend(langfuse.default_sinks(config, registry, mask=mask))
    except ImportError as exc:
        _log.debug("hypertool: Langfuse sink unavailable: %s", exc)
    except Exception:
        # A misconfigured extra backend must not cost the app its metrics and spans.
        _log.exception("hypertool: the Langfuse sink failed to start; continuing without it")
    sinks.append(PrometheusSink(registry))
    sinks.extend(exit_metrics.default_sinks(config, registry))  # after: reads what it wrote
    return sinks


def _langfuse_wanted(config: Config) -> bool:
    if config.langfuse.enabled is not None:
        return config.langfuse.enabled
    if keys_configured():
        return True
    _log.info(LANGFUSE_NO_KEYS)
    return False


def build_tracker(
    config: Config | None = None,
    *,
    registry: CollectorRegistry | None = None,
    sinks: Iterable[Sink] | None = None,
    clock: Clock | None = None,
    sweep: bool = True,
) -> Tracker:
    """A tracker with the default sinks (Prometheus on ``registry``, default prometheus_client's
    own; OTel and Langfuse when installed and enabled), or exactly ``sinks`` when given.

    ``sweep``: evict runs past their TTL on a timer too (a daemon thread, see
    ``context/sweeper.py``), not only when later events arrive; ``sweeper.stop(tracker)``
    ends it (``uninstrument()`` does for the process-wide tracker)."""
    config = config or load_config()
    chosen = default_sinks(config, registry) if sinks is None else list(sinks)
    tracker = Tracker(config, chosen, clock)
    if sweep:
        sweeper.start(tracker)
    return tracker


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
    except Exception as exc:  # ConfigError above all; anything else must not reach the app
        with _lock:
            if _tracker is None:
                _log.error("hypertool-callbacks disabled: %s", exc,
                           exc_info=not isinstance(exc, ConfigError))
                _tracker = Tracker(Config(), sinks=())
            return _tracker


def current_tracker() -> Tracker | None:
    """The process-wide tracker if one was built or set (never builds one)."""
    return _tracker


def set_tracker(tracker: Tracker | None) -> Tracker | None:
    """Replace the process-wide tracker (returns the previous one)."""
    global _tracker
    with _lock:
        previous, _tracker = _tracker, tracker
    return previous


def shutdown_at_exit() -> None:
    """Shut the process-wide tracker down when the interpreter exits (registered once):
    open runs end, every sink sends what it holds, within ``exit_flush_seconds`` in all."""
    global _exit_hook
    with _lock:
        if not _exit_hook:
            atexit.register(_shutdown_current)
            _exit_hook = True


def _shutdown_current() -> None:
    tracker = _tracker
    if tracker is None:
        return
    sweeper.stop(tracker)  # no sweep during the last flush
    try:
        tracker.shutdown(tracker.config.exit_flush_seconds)
    except Exception:  # at exit: log, never raise into the interpreter's shutdown
        _log.exception("hypertool: shutting down at exit failed")
