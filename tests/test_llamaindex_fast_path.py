"""The LlamaIndex handlers' fast path (a span's shape and its step's names looked up by the
id's name part, per class of its instance; an event's kind per class) must tell the tracker
exactly what the long way (parse the id, check its uuid, classify the instance, read the
class's name) does, in every kind of app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hypertool_callbacks.adapters import (
    llamaindex_flows,
    llamaindex_spans,
    llamaindex_units,
    llamaindex_usage,
)
from tests.llama_workloads import WORKLOADS, record


class _Forgetful(dict[Any, Any]):
    """A cache that never keeps anything: every lookup misses, the long way every time."""

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """``slow()``: the fast path off from now on (the caches the hot path reads, emptied)."""

    def off() -> None:
        forgetful = _Forgetful()
        monkeypatch.setattr(llamaindex_spans, "CLASSES", forgetful)
        monkeypatch.setattr(llamaindex_units, "CLASSES", forgetful)
        monkeypatch.setattr(llamaindex_flows, "_NAMES", _Forgetful())
        monkeypatch.setattr(llamaindex_spans, "_EVENT_KINDS", _Forgetful())
        monkeypatch.setattr(llamaindex_usage, "_PROVIDER_OF", _Forgetful())

    return off


@pytest.fixture
def long_ways(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The span ids that took the long way (shape_of) while the test ran."""
    taken: list[str] = []
    shape_of = llamaindex_spans.shape_of

    def counting(id_: str, instance: Any) -> Any:
        taken.append(id_)
        return shape_of(id_, instance)

    monkeypatch.setattr(llamaindex_spans, "shape_of", counting)
    return taken


@pytest.mark.parametrize(("rules", "needs_runs"), [(False, False), (True, True)],
                         ids=["plain", "rules+all-runs"])
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_fast_path_tells_the_tracker_what_the_long_way_does(
        name: str, rules: bool, needs_runs: bool, slow: Callable[[], None],
        long_ways: list[str]) -> None:
    fast = record(WORKLOADS[name], rules, needs_runs)  # (two rounds: the second one warm)
    slow()
    before = len(long_ways)
    assert record(WORKLOADS[name], rules, needs_runs) == fast
    assert len(long_ways) > before  # the slow rounds did go the long way


def test_a_warm_app_takes_the_fast_path_for_every_span(long_ways: list[str]) -> None:
    for name in ("query", "lone_agent", "team", "workflows"):
        record(WORKLOADS[name])
        del long_ways[:]
        log, _ = record(WORKLOADS[name])
        assert log and long_ways == [], name


def test_handlers_hand_the_dispatcher_the_bridges_methods(
        sample: Callable[..., float], make_tracker: Callable[..., Any]) -> None:
    """The dispatcher's ``handler.span_enter`` is the bridge's own method (no frame of ours in
    between); going through the class does the same; pydantic still sees a plain handler."""
    import inspect

    from hypertool_callbacks.adapters import llamaindex

    span, event = llamaindex.handlers(make_tracker())
    bridge = span.__pydantic_private__["_bridge"]
    assert span.span_enter == bridge.span_enter and event.handle == bridge.handle
    assert span.model_dump() == llamaindex.HypertoolSpanHandler(bridge).model_dump()
    assert "span_enter" not in repr(span)
    bound = inspect.signature(lambda: None).bind()
    span.span_exit(id_="Nobody.call-1", bound_args=bound)
    llamaindex.HypertoolSpanHandler.span_exit(span, id_="Nobody.call-2", bound_args=bound)
    llamaindex.HypertoolSpanHandler.span_drop(span, id_="Nobody.call-3", bound_args=bound)
    llamaindex.HypertoolEventHandler.handle(event, None)
    assert sample("hypertool_events_dropped_total", reason="unknown_run") == 3
