"""Issue 19: each plot helper draws what the known recording holds (lanes, bars, labels)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from prometheus_client import CollectorRegistry

from hypertool_callbacks import HypertoolCallbackHandler, build_tracker, record, viz
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.demo import team
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from hypertool_callbacks.sinks.recorder import RecorderSink
from hypertool_callbacks.viz.plots import OVERRUN, WITHIN
from tests import recorded


@pytest.fixture(autouse=True)
def no_show(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rec() -> RecorderSink:
    clock = ManualClock(0.0)
    tracker = build_tracker(recorded.CONFIG, sinks=[PrometheusSink(CollectorRegistry())],
                            clock=clock)
    with record(tracker) as recorder:
        app = recorded.build(clock)
        for _ in range(3):
            app.invoke({"task": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    return recorder


@pytest.fixture(scope="module")
def team_rec() -> RecorderSink:
    tracker = build_tracker(sinks=[PrometheusSink(CollectorRegistry())], clock=ManualClock())
    with record(tracker) as recorder:
        team.run_once(team.build(), [HypertoolCallbackHandler(tracker)])
    return recorder


def _ticks(labels: list[plt.Text]) -> list[str]:
    return [label.get_text() for label in labels]


def test_persona_timeline_has_a_lane_per_persona_and_a_bar_per_interval(
    rec: RecorderSink,
) -> None:
    ax = viz.persona_timeline(rec)
    assert _ticks(ax.get_yticklabels()) == ["planner", "coder", "reviewer"]
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
    spans = []
    for bar in bars:
        (x0, y0), _, (x1, _y1), *_ = bar.get_paths()[0].vertices
        spans.append((round(float(y0) + 0.35), round(float(x0), 6), round(float(x1), 6)))
    lanes = {"planner": 0, "coder": 1, "reviewer": 2}
    assert sorted(spans) == sorted((lanes[p], s, e) for p, s, e in recorded.INTERVALS)
    # Gate results: a failure (X) at 4.0 s and a pass (o) at 7.0 s on the reviewer's lane.
    marks = [(line.get_marker(), tuple(round(x, 6) for x in line.get_xdata()),
              tuple(line.get_ydata()))
             for line in ax.get_lines()]
    assert marks == [("X", (4.0,), (2,)), ("o", (7.0,), (2,))]
    assert ax.get_title() == "Who worked when: delivery"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gate passed", "gate failed"]
    assert not [t for t in ax.texts]  # no handoffs in this workflow


def test_persona_timeline_marks_handoffs(team_rec: RecorderSink) -> None:
    ax = viz.persona_timeline(team_rec)
    assert _ticks(ax.get_yticklabels()) == ["supervisor", "researcher", "writer"]
    arrows = [(a.xyann[1], a.xy[1]) for a in ax.texts]  # (from lane, to lane)
    assert arrows == [(0, 1), (0, 2)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["handoff"]
    tree = repr(viz.span_tree(team_rec))
    assert "transfer_to_researcher [tool]  persona=supervisor  handoff->researcher" in tree


def test_transition_matrix_counts_switches_and_handoffs(
    rec: RecorderSink, team_rec: RecorderSink
) -> None:
    ax = viz.transition_matrix(rec)
    assert _ticks(ax.get_xticklabels()) == ["planner", "coder", "reviewer"]
    assert _ticks(ax.get_yticklabels()) == ["planner", "coder", "reviewer"]
    grid = ax.images[0].get_array().tolist()
    assert grid == [[0, 3, 0], [0, 0, 6], [0, 3, 0]]
    assert [t.get_text() for t in ax.texts] == ["0", "3", "0", "0", "0", "6", "0", "3", "0"]
    handoffs = viz.transition_matrix(team_rec, kind="handoffs")
    assert handoffs.images[0].get_array().tolist() == [[0, 1, 1], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError):
        viz.transition_matrix(rec, kind="nope")


def test_tokens_vs_budget_stacks_tokens_marks_budgets_and_highlights_overruns(
    rec: RecorderSink,
) -> None:
    ax = viz.tokens_vs_budget(rec)
    assert _ticks(ax.get_xticklabels()) == ["planner", "coder", "reviewer"]
    bars = ax.patches
    inputs, outputs = bars[:3], bars[3:6]
    assert [b.get_height() for b in inputs] == [100, 400, 300]
    assert [b.get_height() for b in outputs] == [20, 100, 20]
    assert [to_hex(b.get_facecolor()[:3]) for b in outputs] == [WITHIN, OVERRUN, WITHIN]
    budgets = sorted(float(seg[0][1]) for c in ax.collections for seg in c.get_segments())
    assert budgets == [400.0, 1000.0]
    assert [t.get_text() for t in ax.texts] == ["120", "500", "320"]


def test_stage_durations_has_a_box_and_the_points_of_each_stage(rec: RecorderSink) -> None:
    ax = viz.stage_durations(rec)
    assert _ticks(ax.get_xticklabels()) == ["plan", "code", "review"]
    points = [line for line in ax.get_lines() if line.get_marker() == "o"
              and len(line.get_ydata()) > 1]
    # Three executions: plan once each, code and review twice each.
    assert [sorted(round(y, 6) for y in p.get_ydata()) for p in points] == [
        [1.0] * 3, [2.5] * 6, [0.5] * 6]


def test_llm_latency_by_model_with_time_to_first_token(rec: RecorderSink) -> None:
    ax = viz.llm_latency(rec)
    assert _ticks(ax.get_xticklabels()) == ["sim-large", "sim-small"]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["latency", "time to first token"]
    # Medians (the orange lines of the boxes): latency per model, then TTFT for the streamed one.
    medians = [round(float(line.get_ydata()[0]), 6) for line in ax.get_lines()
               if line.get_color() not in ("black",) and len(line.get_ydata()) == 2
               and line.get_ydata()[0] == line.get_ydata()[1]
               and line.get_xdata()[1] - line.get_xdata()[0] == pytest.approx(0.3)]
    assert 0.1 in medians and 2.0 in medians


def test_overview_draws_four_panels(rec: RecorderSink) -> None:
    fig = viz.overview(rec)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Who worked when: delivery", "Persona switches (3 execution(s))",
                      "Tokens vs budget: delivery", "Stage durations"]


def test_span_tree_text_and_html(rec: RecorderSink) -> None:
    tree = viz.span_tree(rec)
    lines = repr(tree).splitlines()
    assert lines[0] == "delivery [chain]  7.00s"
    assert lines[1] == "  plan [chain]  persona=planner  stage=plan  1.00s"
    assert lines[2] == ("    SimulatedChat [llm]  persona=planner  model=sim-large  "
                        "tokens=100+20  1.00s")
    assert "  review [chain]  persona=reviewer  stage=review  gate code-review=fail  0.50s" \
        in lines
    assert not any("RunnableCallable" in line for line in lines)
    full = viz.span_tree(rec, plumbing=True)
    assert len(repr(full).splitlines()) == len(rec.last().runs) > len(lines)
    html = tree._repr_html_()
    assert html.count("<div style=\"padding-left") == len(lines)
    assert "color:#c0392b" in html  # the failed gate


def test_missing_matplotlib_names_the_extra() -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from hypertool_callbacks import viz\n"
            "print(viz.span_tree)\n"
            "try:\n    viz.persona_timeline\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "hypertool-callbacks[viz]" in out and "SpanTree" not in out.splitlines()[-1]
