"""Start-up activation for unmodified apps (the ``.pth`` hook and ``hypertool-callbacks run``).

Runs only when ``HYPERTOOL_CALLBACKS`` is set. It must never stop the app from starting: any
failure is logged and leaves the app uninstrumented.
"""

from __future__ import annotations

import atexit
import logging
import os

from hypertool_callbacks.config import ENV_ACTIVATE

_log = logging.getLogger("hypertool_callbacks")
_activated = False


def activate() -> None:
    global _activated
    if _activated:
        return
    _activated = True
    try:
        from hypertool_callbacks.errors import ConfigError
        from hypertool_callbacks.exposition import serve_metrics_if_free
        from hypertool_callbacks.runtime import get_tracker, register_env_hook

        try:
            tracker = get_tracker()  # validates the configuration now, not at the first run
        except ConfigError as exc:
            _log.error("hypertool-callbacks disabled: %s", exc)
            os.environ[ENV_ACTIVATE] = "false"
            return
        if not register_env_hook():
            _log.warning("hypertool-callbacks: langchain-core is not installed; nothing to do")
            return
        atexit.register(tracker.shutdown, 5.0)
        if tracker.config.metrics_port is not None:
            serve_metrics_if_free(tracker.config.metrics_port, tracker.config.metrics_addr)
    except Exception:
        _log.exception("hypertool-callbacks failed to activate; the app runs uninstrumented")
