"""Issue 19: re-running notebook cells (instrument, build the handler, record) neither double
counts nor crashes, and ``uninstrument()`` undoes ``instrument()``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

import hypertool_callbacks
from hypertool_callbacks import HypertoolCallbackHandler, build_tracker, record
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.runtime import set_tracker
from tests import recorded

TOKENS = "hypertool_persona_tokens_used_total"


def _coder_input(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value(TOKENS, {"persona": "coder", "model": "sim-small",
                                               "token_type": "input"})
    return value or 0.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def tracker(registry: CollectorRegistry, clock: ManualClock) -> Iterator[Tracker]:
    tracker = build_tracker(recorded.CONFIG, registry=registry, sinks=None, clock=clock)
    previous = set_tracker(tracker)
    yield tracker
    hypertool_callbacks.uninstrument()
    set_tracker(previous)


def test_instrument_cell_run_twice_counts_each_run_once(
    tracker: Tracker, registry: CollectorRegistry, clock: ManualClock
) -> None:
    app = recorded.build(clock)
    for _ in range(2):  # the same cell, executed twice
        hypertool_callbacks.instrument()
        with record() as rec:
            app.invoke({"task": "x"})
        assert len(rec.executions) == 1 and len(rec.last().llm_calls) == 5
    assert _coder_input(registry) == 2 * 400


def test_handler_built_again_is_not_doubled_by_instrument(
    tracker: Tracker, registry: CollectorRegistry, clock: ManualClock
) -> None:
    hypertool_callbacks.instrument()
    app = recorded.build(clock)
    for _ in range(2):
        handler = HypertoolCallbackHandler()
        app.invoke({"task": "x"}, config={"callbacks": [handler]})
    assert _coder_input(registry) == 2 * 400


def test_tracker_built_twice_on_one_registry_does_not_crash(
    registry: CollectorRegistry, clock: ManualClock
) -> None:
    app = recorded.build(clock)
    for _ in range(2):  # "Duplicated timeseries" would be raised here
        tracker = build_tracker(recorded.CONFIG, registry=registry, clock=clock)
        app.invoke({"task": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert _coder_input(registry) == 2 * 400


def test_uninstrument_undoes_instrument_and_instrument_works_again(
    tracker: Tracker, registry: CollectorRegistry, clock: ManualClock
) -> None:
    app = recorded.build(clock)
    hypertool_callbacks.instrument()
    hypertool_callbacks.uninstrument()
    hypertool_callbacks.uninstrument()  # twice: harmless
    with record() as rec:
        app.invoke({"task": "x"})
    assert rec.executions == [] and _coder_input(registry) == 0
    hypertool_callbacks.instrument()
    app.invoke({"task": "x"})
    hypertool_callbacks.uninstrument()
    app.invoke({"task": "x"})
    assert _coder_input(registry) == 400
