"""Runs that never end are evicted on a timer, with no further event; one sweeper thread per
tracker, none left behind by instrument/uninstrument cycles or by a dropped tracker."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry

import hypertool_callbacks
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context import sweeper
from hypertool_callbacks.context.runs import Run, Status
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from hypertool_callbacks.wiring import build_tracker
from tests.fakes import StreamingFake, reply
from tests.polling import wait_for

MODEL = "fake-messages-list-chat-model"


class Events(Sink):
    name = "events"

    def __init__(self) -> None:
        self.started: list[Run] = []
        self.ended: list[Run] = []

    def on_run_start(self, run: Run) -> None:
        self.started.append(run)

    def on_run_end(self, run: Run) -> None:
        self.ended.append(run)


def sweeper_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == sweeper.THREAD_NAME}


def test_an_abandoned_stream_is_evicted_without_any_further_event(
        registry: CollectorRegistry, sample: Callable[..., float]) -> None:
    events = Events()
    # build_tracker starts the sweeper, every ttl/4 = 0.05 s.
    tracker = build_tracker(Config(run_ttl_seconds=0.2),
                            sinks=[events, PrometheusSink(registry)])
    try:
        assert sweeper.running(tracker) is not None
        assert sweeper.running(tracker).interval == pytest.approx(0.05)  # type: ignore[union-attr]
        chain = (ChatPromptTemplate.from_messages([("user", "{q}")])
                 | StreamingFake(responses=[reply("one two three four")]) | StrOutputParser())
        stream = chain.stream({"q": "hi"}, config={
            "callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:reader"]})
        assert next(stream) == "one"
        # Neither consumed to the end nor closed (kept referenced, so not collected either).
        open_runs = tracker.live_runs
        assert open_runs >= 2  # the sequence and the model call at least
        started, ended = len(events.started), len(events.ended)

        assert wait_for(lambda: tracker.live_runs == 0)
        assert wait_for(lambda: sample("hypertool_events_dropped_total",
                                       reason="evicted") == open_runs)
        assert len(events.started) == started  # no event arrived: the timer did it
        evicted = events.ended[ended:]
        assert len(evicted) == open_runs
        assert {run.status for run in evicted} == {Status.EVICTED}
        assert sample("hypertool_llm_requests_total", model=MODEL, persona="reader",
                      status="evicted") == 1
        assert tracker.live_executions == 0
        stream.close()  # late ends of evicted runs are dropped, never raised
        assert tracker.live_runs == 0
    finally:
        sweeper.stop(tracker)
    assert sweeper.running(tracker) is None


def test_one_sweeper_per_tracker_and_none_left_after_uninstrument(
        registry: CollectorRegistry, no_global_tracker: None) -> None:
    tracker = Tracker(Config(), [PrometheusSink(registry)])
    before = sweeper_threads()
    seen: set[threading.Thread] = set()
    for _ in range(5):
        hypertool_callbacks.instrument(tracker)
        hypertool_callbacks.instrument(tracker)  # idempotent: still one thread
        mine = sweeper_threads() - before
        assert len(mine) == 1
        (thread,) = mine
        assert thread.daemon
        seen.add(thread)
        hypertool_callbacks.uninstrument()
        assert not thread.is_alive()  # stopped and joined
        assert sweeper.running(tracker) is None
    assert len(seen) == 5
    assert sweeper_threads() - before == set()


def test_a_tracker_dropped_without_stop_ends_its_thread() -> None:
    tracker = build_tracker(Config(), sinks=[])
    running = sweeper.running(tracker)
    assert running is not None and running.alive
    del tracker
    gc.collect()
    assert wait_for(lambda: not running.alive, timeout=5.0)


def test_build_tracker_without_sweep_starts_no_thread() -> None:
    tracker = build_tracker(Config(), sinks=[], sweep=False)
    assert sweeper.running(tracker) is None
    assert sweeper.default_interval(tracker) == 60.0  # a 1 h TTL: once a minute
    assert sweeper.default_interval(Tracker(Config(run_ttl_seconds=8))) == 2.0
