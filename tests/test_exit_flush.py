"""Exit is bounded as a whole (issue 14, item 10): sinks flush side by side within one limit,
``exit_flush_seconds`` (1 s by default), and one warning names what was cut off.

The tracker's bound is checked on behaviour (who is named, that shutdown returns while a sink
is still stuck); the subprocess test allows a slack of several seconds over the 1 s limit,
where the code before took 10 s and more against the same dead backends.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config, load_config
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse_failures import closed_port_url

APP = Path(__file__).parent / "apps" / "plain_langgraph_app.py"
CUT = "flush stopped at its"


class Stuck(Sink):
    """A backend whose flush never returns by itself (until released)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        self.started = threading.Event()

    def shutdown(self, timeout: float = 5.0) -> None:
        self.started.set()
        self.release.wait(30)


class Quick(Sink):
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[float] = []

    def shutdown(self, timeout: float = 5.0) -> None:
        self.calls.append(timeout)


class GivesUp(Sink):
    """A backend that honours its bound: it returns, having used all of it (a dead server)."""

    name = "gives-up"

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def shutdown(self, timeout: float = 5.0) -> None:
        self.clock.advance(timeout)


def _cut_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if CUT in r.getMessage()]


def test_sinks_flush_side_by_side_within_one_limit(caplog: pytest.LogCaptureFixture) -> None:
    first, second, quick = Stuck("first"), Stuck("second"), Quick("quick")
    tracker = Tracker(Config(), [first, quick, second])
    caplog.set_level(logging.WARNING)
    try:
        tracker.shutdown(0.2)  # returns although two sinks never finish
        # Side by side: the second stuck sink was started although the first never returned.
        assert first.started.is_set() and second.started.is_set()
        assert quick.calls == [0.2]
        assert _cut_lines(caplog) == [
            "hypertool: flush stopped at its 0.2 s limit: first, second had not finished "
            "sending; what was not sent is dropped (exit_flush_seconds sets the limit at exit)"]
    finally:
        first.release.set()
        second.release.set()


def test_a_sink_that_used_its_whole_share_is_named(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    tracker = Tracker(Config(), [GivesUp(clock), Quick("quick")], clock)
    caplog.set_level(logging.WARNING)
    tracker.shutdown(1.0)
    assert len(_cut_lines(caplog)) == 1
    assert "limit: gives-up had not finished" in _cut_lines(caplog)[0]


def test_healthy_sinks_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    quick = [Quick("a"), Quick("b")]
    caplog.set_level(logging.WARNING)
    Tracker(Config(), quick, ManualClock()).shutdown(1.0)
    assert [q.calls for q in quick] == [[1.0], [1.0]]
    assert _cut_lines(caplog) == []


def test_the_limit_is_a_setting() -> None:
    assert load_config(environ={}, cwd="/").exit_flush_seconds == 1.0
    assert load_config(environ={"HYPERTOOL_EXIT_FLUSH_SECONDS": "0.3"},
                       cwd="/").exit_flush_seconds == 0.3


def test_exit_with_dead_backends_is_cut_at_the_limit(tmp_path: Path) -> None:
    """Langfuse never answers and the OTLP port is closed: before, 5 s per backend, in turn."""
    with OTLPReceiver("hang") as silent:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
        env.update(HYPERTOOL_CALLBACKS="true", LANGFUSE_PUBLIC_KEY="pk-exit-flush",
                   LANGFUSE_SECRET_KEY="sk", LANGFUSE_BASE_URL=silent.url,
                   LANGFUSE_TIMEOUT="30", OTEL_EXPORTER_OTLP_ENDPOINT=closed_port_url(),
                   OTEL_SERVICE_NAME="exit-flush-test")
        process = subprocess.Popen([sys.executable, str(APP)], env=env, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.readline().strip() == "{'text': 'ok'}"  # the app ran
            ran = time.monotonic()
            _, stderr = process.communicate(timeout=60)
            exit_seconds = time.monotonic() - ran
        finally:
            process.kill()
    assert process.returncode == 0, stderr
    cut = [line for line in stderr.splitlines() if CUT in line]
    assert cut == ["hypertool: flush stopped at its 1.0 s limit: otel, langfuse had not "
                   "finished sending; what was not sent is dropped (exit_flush_seconds sets "
                   "the limit at exit)"]
    assert "Traceback" not in stderr
    assert exit_seconds < 1.0 + 4.0  # the limit plus generous interpreter teardown
