"""Keeping our failures out of the host application: rate-limited logging."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Logs a given key at most once per ``interval`` seconds, saying how many were suppressed.

    A dead backend produces one warning a minute, not one per event.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            if len(self._last) > 1024:
                self._last.clear()
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args, exc_info=exc_info)
