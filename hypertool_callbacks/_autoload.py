"""Start-up activation for unmodified apps (the ``.pth`` hook and ``hypertool-callbacks run``).

Runs in every Python process of the environment, so at start-up it only reads
``HYPERTOOL_CALLBACKS`` and, when it is on, watches for the frameworks' imports (standard
library only: no pydantic, no framework). When the app imports a framework, the configuration is
loaded, the sinks are built, ``/metrics`` is served if configured, one INFO line says what is
active, and the framework is attached. It must never stop the app: any failure is logged and
leaves the app unobserved.
"""

from __future__ import annotations

import _thread
import os
import sys

from hypertool_callbacks import _env

TYPE_CHECKING = False  # typing and logging are imported only once a framework is
if TYPE_CHECKING:
    import logging

    from hypertool_callbacks.context.tracker import Tracker

_lock = _thread.allocate_lock()
_activated = False
_started = False
_tracker: Tracker | None = None
_to_stderr = False


def activate(*, announce: bool = False) -> bool:
    """Turn activation on if ``HYPERTOOL_CALLBACKS`` says so (once per process). ``announce``:
    also write the activation line to stderr when logging would not show it (the launcher).
    Returns whether activation is on."""
    global _activated, _to_stderr
    _to_stderr = _to_stderr or announce  # the .pth may have activated first
    if _activated:
        return True
    if not _env.flag(os.environ.get(_env.ENV_ACTIVATE)):
        return False
    _activated = True
    try:
        from hypertool_callbacks import frameworks

        if not frameworks.attach_all(_start):
            _log().warning("hypertool-callbacks: no supported framework is installed (%s); "
                         "nothing to do", ", ".join(f.module for f in frameworks.registered()))
    except Exception:
        _log().exception("hypertool-callbacks failed to activate; the app runs unobserved")
    return True


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("hypertool_callbacks")


def _start() -> Tracker | None:
    """The process-wide tracker, built when the first framework is imported (None: off)."""
    global _started, _tracker
    with _lock:
        if _started:
            return _tracker
        _started = True
        try:
            _tracker = _build()
        except Exception:
            _log().exception("hypertool-callbacks failed to start; the app runs unobserved")
            _tracker = None
        return _tracker


def _build() -> Tracker | None:
    import atexit

    from hypertool_callbacks.context import sweeper
    from hypertool_callbacks.errors import ConfigError
    from hypertool_callbacks.exposition import serve_metrics_if_free
    from hypertool_callbacks.wiring import get_tracker

    try:
        tracker = get_tracker()  # the configuration is validated now, not at the first run
    except ConfigError as exc:
        _log().error("hypertool-callbacks disabled: %s", exc)
        return None
    atexit.register(tracker.shutdown, 5.0)
    atexit.register(sweeper.stop, tracker)  # runs first (LIFO): no sweep during the last flush
    config = tracker.config
    metrics = "off"
    if config.metrics_port is not None:
        server = serve_metrics_if_free(config.metrics_port, config.metrics_addr,
                                       created_series=config.metrics_created_series)
        metrics = (f"http://{config.metrics_addr}:{server.server_port}/metrics"
                   if server is not None else f"port {config.metrics_port} busy")
    _announce(tracker, metrics)
    return tracker


def _announce(tracker: Tracker, metrics: str) -> None:
    from hypertool_callbacks.config import config_file

    sinks = ", ".join(type(sink).__name__.removesuffix("Sink").lower() for sink in tracker.sinks)
    line = (f"hypertool-callbacks active: sinks {sinks or 'none'}; metrics {metrics}; "
            f"config {config_file() or 'defaults'}")
    log = _log()
    if _to_stderr and not log.isEnabledFor(20):  # logging.INFO
        sys.stderr.write(line + "\n")
    else:
        log.info(line)
