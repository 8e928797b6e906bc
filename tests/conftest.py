from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import hypertool_callbacks
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from hypertool_callbacks.wiring import set_tracker

pytest_plugins = ["tests.langfuse_support", "tests.llama_support"]

# Plots in tests and notebooks render off-screen.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def no_global_tracker() -> Iterator[None]:
    """No process-wide tracker during the test; whatever it instrumented is undone after."""
    previous = set_tracker(None)
    try:
        yield
    finally:
        hypertool_callbacks.uninstrument()
        set_tracker(previous)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_tracker(registry: CollectorRegistry) -> Callable[..., Tracker]:
    """``make_tracker(config=None, clock=None, sinks=None, **config_keys)``: a tracker writing
    Prometheus metrics to the test's own registry."""

    def make(config: Config | None = None, clock: Any = None, sinks: Any = None,
             **keys: Any) -> Tracker:
        config = config or Config.model_validate(keys)
        chosen = [PrometheusSink(registry)] if sinks is None else sinks
        return Tracker(config, chosen, clock)

    return make


@pytest.fixture
def handler(make_tracker: Callable[..., Tracker]) -> HypertoolCallbackHandler:
    return HypertoolCallbackHandler(make_tracker())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sample(registry: CollectorRegistry) -> Callable[..., float]:
    """``sample(name, **labels)``: the value, 0.0 when the series does not exist."""

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    return value
