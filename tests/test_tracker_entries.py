"""``Tracker.start``/``end`` (event objects) and ``start_run``/``end_run`` (their fields as
arguments, the adapters' hot path) are one entry: the same events give the same runs."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart, Usage

STARTS = [
    RunStart("root", None, RunKind.CHAIN, "delivery", (), {"thread_id": "t-1"}),
    RunStart("node", "root", RunKind.CHAIN, "review", ("graph:step:1",),
             {"langgraph_node": "review", "langgraph_step": 1}),
    RunStart("llm", "node", RunKind.LLM, "chat", ("seq:step:1",),
             {"langgraph_node": "review", "ls_provider": "openai"}, ["hi"], "gpt-4o", "openai",
             {"temperature": 0.2}, "You are the reviewer"),
    RunStart("tool", "node", RunKind.TOOL, "search", (), {"langgraph_node": "review"},
             "query", tool_call_id="call-1"),
]
ENDS = [
    RunEnd("llm", "reply", None, Usage(7, 3, 10), "gpt-4o-2024", (), False, False,
           ("call-1",)),
    RunEnd("tool", "found", None, handoffs=("test",)),
    RunEnd("node", None, RuntimeError("boom")),
    RunEnd("root", {"done": True}, cancelled=True),
]


class Kept(Sink):
    """Every ended run's fields (the run objects' own, minus links to other runs)."""

    def __init__(self) -> None:
        self.ended: list[dict[str, Any]] = []

    def on_run_end(self, run: Run) -> None:
        fields = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)
                  if f.name not in ("parent", "stage_run", "table", "extra", "error")}
        fields["error"] = repr(run.error)
        self.ended.append(fields)


def _run(by_fields: bool) -> list[dict[str, Any]]:
    kept = Kept()
    tracker = Tracker(Config(), [kept], ManualClock(100.0))
    for event in STARTS:
        if by_fields:
            tracker.start_run(*(getattr(event, f.name) for f in dataclasses.fields(event)))
        else:
            tracker.start(event)
    for end in ENDS:
        if by_fields:
            tracker.end_run(*(getattr(end, f.name) for f in dataclasses.fields(end)))
        else:
            tracker.end(end)
    assert tracker.live_runs == 0
    return kept.ended


def test_start_run_and_end_run_make_the_runs_start_and_end_make() -> None:
    by_events, by_fields = _run(False), _run(True)
    assert [run["name"] for run in by_events] == ["chat", "search", "review", "delivery"]
    assert by_fields == by_events
    llm = by_events[0]
    assert (llm["persona"], llm["model"], llm["response_model"], llm["usage"].total_tokens) == (
        "review", "gpt-4o", "gpt-4o-2024", 10)
    assert by_events[3]["status"] == "cancelled" and by_events[2]["status"] == "error"


def test_defaults_of_start_run_are_the_events_defaults() -> None:
    kept_a, kept_b = Kept(), Kept()
    a = Tracker(Config(), [kept_a], ManualClock(1.0))
    b = Tracker(Config(), [kept_b], ManualClock(1.0))
    a.start(RunStart("r", None, RunKind.CHAIN, "solo"))
    b.start_run("r", None, RunKind.CHAIN, "solo")
    a.end(RunEnd("r"))
    b.end_run("r")
    assert kept_a.ended == kept_b.ended
    assert dict(kept_b.ended[0]["metadata"]) == {} and dict(kept_b.ended[0]["parameters"]) == {}
