"""Issue 19: the in-memory recorder sink, ``record()`` and the summary table."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hypertool_callbacks import HypertoolCallbackHandler, build_tracker, record
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.demo import team
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from hypertool_callbacks.sinks.recorder import RecorderSink
from hypertool_callbacks.summary import Summary
from tests import recorded


def _tracker(clock: ManualClock, registry: CollectorRegistry | None = None,
             extra: list[Sink] | None = None) -> Tracker:
    sinks: list[Sink] = [PrometheusSink(registry or CollectorRegistry()), *(extra or [])]
    return build_tracker(recorded.CONFIG, sinks=sinks, clock=clock)


def _run(tracker: Tracker, clock: ManualClock, times: int = 1) -> None:
    app = recorded.build(clock)
    for _ in range(times):
        app.invoke({"task": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})


def test_records_intervals_switches_stages_gates_tokens_and_budgets() -> None:
    clock = ManualClock(0.0)
    tracker = _tracker(clock)
    with record(tracker) as rec:
        _run(tracker, clock)
    e = rec.last()
    assert e.workflow == recorded.WORKFLOW and e.status == "ok" and e.duration == 7.0
    assert [(i.persona, i.start, i.end) for i in e.intervals] == recorded.INTERVALS
    assert [(s.from_persona, s.to_persona, s.time) for s in e.switches] == [
        ("planner", "coder", 1.0), ("coder", "reviewer", 3.5), ("reviewer", "coder", 4.0),
        ("coder", "reviewer", 6.5)]
    assert [(s.stage, s.persona, s.start, s.end) for s in e.stages] == [
        ("plan", "planner", 0.0, 1.0), ("code", "coder", 1.0, 3.5),
        ("review", "reviewer", 3.5, 4.0), ("code", "coder", 4.0, 6.5),
        ("review", "reviewer", 6.5, 7.0)]
    assert [(g.gate, g.result, g.persona) for g in e.gates] == [
        ("code-review", "fail", "reviewer"), ("code-review", "pass", "reviewer")]
    llm = e.llm_calls
    assert [(r.persona, r.model, r.duration, r.input_tokens, r.output_tokens) for r in llm] == [
        ("planner", "sim-large", 1.0, 100, 20), ("coder", "sim-small", 2.0, 200, 50),
        ("reviewer", "sim-large", 0.5, 150, 10), ("coder", "sim-small", 2.0, 200, 50),
        ("reviewer", "sim-large", 0.5, 150, 10)]
    # Only the streamed reviewer calls have a time to first token.
    assert [None if r.first_token is None else round(r.first_token, 6) for r in llm] == [
        None, None, 0.1, None, 0.1]
    assert [(t.name, t.persona, t.duration) for t in e.tool_calls] == [
        ("run_tests", "coder", 0.5), ("run_tests", "coder", 0.5)]
    assert {p: (s.limit, s.used, s.remaining) for p, s in e.budgets.items()} == {
        "coder": (400, 500, -100), "reviewer": (1000, 320, 680)}
    # The run tree: every run but the root has a parent recorded before it.
    assert e.root.name == recorded.WORKFLOW and e.root.parent is None
    assert [r.name for r in e.children(0)] == ["plan", "code", "review", "code", "review"]
    assert all(r.parent is not None and r.parent < r.index for r in e.runs[1:])


def test_handoffs_are_recorded_from_a_supervisor_team() -> None:
    tracker = build_tracker(sinks=[PrometheusSink(CollectorRegistry())], clock=ManualClock())
    with record(tracker) as rec:
        team.run_once(team.build(), [HypertoolCallbackHandler(tracker)])
    e = rec.last(team.WORKFLOW)
    assert [(h.from_persona, h.to_persona) for h in e.handoffs] == [
        ("supervisor", "researcher"), ("supervisor", "writer")]
    assert [i.persona for i in e.intervals] == [
        "supervisor", "researcher", "supervisor", "writer", "supervisor"]
    times = [h.time for h in e.handoffs]
    assert times == sorted(times)


def test_summary_rows_and_renderings() -> None:
    clock = ManualClock(0.0)
    tracker = _tracker(clock)
    with record(tracker) as rec:
        _run(tracker, clock, times=2)
    summary = rec.summary()
    assert isinstance(summary, Summary) and summary.executions == 2
    assert [r.persona for r in summary.rows] == ["planner", "coder", "reviewer"]
    coder = summary.row("coder")
    assert (coder.llm_calls, coder.tool_calls, coder.input_tokens, coder.output_tokens,
            coder.seconds, coder.budget, coder.remaining, coder.overrun) == (
        4, 4, 800, 200, 10.0, 400, -100, True)
    assert not summary.row("planner").overrun and summary.row("planner").budget is None
    # One execution only.
    one = Summary.of(rec.last())
    assert one.executions == 1 and one.row("coder").input_tokens == 400
    text = repr(summary)
    assert text.splitlines()[0] == "Summary of 2 execution(s)"
    assert text.splitlines()[2].split() == [
        "planner", "2", "0", "0", "200", "40", "2.00"]
    html = summary._repr_html_()
    assert html.count("<tr") == 4 and "<th>remaining</th>" in html
    assert html.count("font-weight:bold") == 1  # the coder's overrun row


def test_summary_escapes_html() -> None:
    rec = RecorderSink()
    tracker = build_tracker(sinks=[rec], clock=ManualClock())
    from langchain_core.runnables import RunnableLambda

    RunnableLambda(lambda x: x).invoke(1, config={
        "callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:<b>x</b>"]})
    # A persona that made no LLM or tool call is still in the timeline; its name is escaped.
    html = rec.summary()._repr_html_()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_keeps_the_last_executions_and_caps_runs_per_execution() -> None:
    clock = ManualClock(0.0)
    rec = RecorderSink(max_executions=3, max_runs=6)
    tracker = _tracker(clock, extra=[rec])
    _run(tracker, clock, times=10)
    assert len(rec.executions) == 3 and rec.dropped_executions == 7
    for execution in rec.executions:
        assert len(execution.runs) == 6 and execution.dropped_runs == 9  # 15 runs each
        # Runs over the cap still move the persona timeline.
        got = [(i.persona, i.start, i.end) for i in execution.intervals]
        assert [g[0] for g in got] == [x[0] for x in recorded.INTERVALS]
        assert [g[1:] for g in got] == [pytest.approx(x[1:]) for x in recorded.INTERVALS]
    # The newest are kept: their roots started last.
    assert [e.root.name for e in rec.executions] == [recorded.WORKFLOW] * 3


def test_records_hold_plain_values_only() -> None:
    """Records copy names, numbers and statuses: no runs, inputs, outputs or errors are kept
    alive by the recorder (its memory is the records' size, nothing more)."""
    clock = ManualClock(0.0)
    rec = RecorderSink()
    tracker = _tracker(clock, extra=[rec])
    _run(tracker, clock)
    plain = (str, int, float, bool, type(None))
    execution = rec.last()
    for item in [*execution.runs, *execution.switches, *execution.intervals,
                   *execution.budgets.values()]:
        for name in item.__slots__:  # type: ignore[union-attr]
            value = getattr(item, name)
            if isinstance(value, tuple):  # handoff targets
                assert all(isinstance(v, str) for v in value)
            else:
                assert isinstance(value, plain), (type(item).__name__, name, type(value))
    assert len(execution.runs) == 15


def test_record_attaches_only_inside_the_block_and_does_not_stack() -> None:
    clock = ManualClock(0.0)
    tracker = _tracker(clock)
    before = list(tracker.sinks)
    for _ in range(2):  # a notebook cell run twice
        with record(tracker) as rec:
            _run(tracker, clock)
        assert tracker.sinks == before
        assert len(rec.executions) == 1
    _run(tracker, clock)
    assert len(rec.executions) == 1  # nothing recorded after the block
    with record(tracker) as outer, record(tracker) as inner:
        _run(tracker, clock)
    assert len(outer.executions) == len(inner.executions) == 1
    assert tracker.sinks == before


def test_record_defaults_to_the_process_wide_tracker(monkeypatch: Any) -> None:
    import hypertool_callbacks.wiring as wiring

    clock = ManualClock(0.0)
    tracker = _tracker(clock)
    previous = wiring.set_tracker(tracker)
    try:
        with record() as rec:
            recorded.build(clock).invoke({"task": "x"},
                                         config={"callbacks": [HypertoolCallbackHandler()]})
        assert rec.last().duration == 7.0
        # Budget limits known before anything ran are seeded from the tracker.
        with record() as empty:
            pass
        assert set(empty.budgets) == {"coder", "reviewer"}
    finally:
        wiring.set_tracker(previous)


def test_last_without_a_finished_execution_raises_lookup_error() -> None:
    with pytest.raises(LookupError, match="no finished execution"):
        RecorderSink().last()
    with pytest.raises(ValueError):
        RecorderSink(max_executions=0)


def test_priced_calls_carry_their_cost_into_the_summary() -> None:
    clock = ManualClock(0.0)
    config = recorded.CONFIG.model_copy(update={"prices": Config.model_validate(
        {"prices": {"sim-small": {"input_mtok": 1.0, "output_mtok": 2.0}}}).prices})
    tracker = build_tracker(config, sinks=[PrometheusSink(CollectorRegistry())], clock=clock)
    with record(tracker) as rec:
        recorded.build(clock).invoke(
            {"task": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert [r.cost_usd for r in rec.last().llm_calls if r.persona == "coder"] == [
        pytest.approx(200e-6 + 100e-6)] * 2
    summary = rec.summary()
    assert summary.row("coder").cost_usd == pytest.approx(0.0006)
    assert summary.row("planner").cost_usd is None  # sim-large has no price
    assert "0.0006" in repr(summary) and "<th>cost usd</th>" in summary._repr_html_()


def test_metrics_table_lists_non_zero_hypertool_samples() -> None:
    from hypertool_callbacks.summary import MetricsTable

    clock, registry = ManualClock(0.0), CollectorRegistry()
    tracker = _tracker(clock, registry)
    _run(tracker, clock)
    table = MetricsTable.of(registry, ("hypertool_persona_switches_total",
                                       "hypertool_llm_requests_total"))
    assert {name for name, _, _ in table.rows} == {"hypertool_persona_switches_total",
                                                   "hypertool_llm_requests_total"}
    assert table.value("hypertool_persona_switches_total", from_persona="coder",
                       to_persona="reviewer", workflow=recorded.WORKFLOW) == 2
    assert table.value("hypertool_llm_requests_total", model="sim-small", persona="coder",
                       status="ok") == 2
    everything = MetricsTable.of(registry)
    assert not [n for n, _, _ in everything.rows if n.endswith(("_bucket", "_created"))]
    assert all(v for _, _, v in everything.rows)
    html = table._repr_html_()
    assert html.count("<tr>") == len(table.rows) + 1
