"""Time sources, injectable so tests control durations without monkeypatching."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall_ns(self) -> int:
        """Wall-clock time in ns since the epoch (span timestamps)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (durations)."""
        ...


class SystemClock:
    # The builtins themselves, not methods wrapping them: read on every event, and a Python
    # frame per read costs more than the read.
    wall_ns = staticmethod(time.time_ns)
    monotonic = staticmethod(time.perf_counter)


class ManualClock:
    """A clock that moves only when told to: ``clock.advance(1.5)``."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wall_ns(self) -> int:
        return int(self.now * 1e9)

    def monotonic(self) -> float:
        return self.now
