"""Issue 19, notebook 05: the generated dashboards' and rules' PromQL evaluated over a registry
snapshot (``viz.snapshot``), the dashboard preview figure, and which alerts would fire."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hypertool_callbacks import HypertoolCallbackHandler, build_tracker, viz
from hypertool_callbacks.alerts import AlertSettings, rule_groups
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.dashboards_panels import DASHBOARDS
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from hypertool_callbacks.viz.panels import panel_series
from hypertool_callbacks.viz.snapshot import Snapshot, Unsupported, evaluate
from tests import recorded

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def toy() -> Snapshot:
    registry = CollectorRegistry()
    calls = Counter("calls", "", ["model", "status"], registry=registry)
    calls.labels("a", "ok").inc(6)
    calls.labels("a", "error").inc(2)
    calls.labels("b", "ok").inc(4)
    left = Gauge("left", "", ["model"], registry=registry)
    left.labels("a").set(10)
    left.labels("b").set(-1)
    latency = Histogram("lat", "", ["model"], buckets=(1, 2, 4), registry=registry)
    for value in (0.5, 1.5, 1.5, 3.0):
        latency.labels("a").observe(value)
    return Snapshot.of(registry, seconds=4.0)


def _values(result: Any) -> dict[tuple[tuple[str, str], ...], float]:
    assert isinstance(result, dict)
    return result


def test_aggregations_rates_and_increases_over_one_snapshot(toy: Snapshot) -> None:
    assert evaluate("sum by (model) (increase(calls_total[10m]))", toy) == {
        (("model", "a"),): 8.0, (("model", "b"),): 4.0}
    # A rate is the run's increase per second of the run.
    assert evaluate('sum(rate(calls_total{status=~"ok|error"}[$__rate_interval]))', toy) == {
        (): 3.0}
    assert evaluate('count by (status) (calls_total{model!="b"})', toy) == {
        (("status", "error"),): 1.0, (("status", "ok"),): 1.0}
    assert evaluate("topk(1, sum by (model) (calls_total))", toy) == {(("model", "a"),): 8.0}
    assert evaluate("2 * 3 - 1", toy) == 5.0


def test_ratios_comparisons_and_set_operations(toy: Snapshot) -> None:
    ratio = ('sum by (model) (increase(calls_total{status="error"}[5m]))\n'
             '  / sum by (model) (increase(calls_total[5m]))')
    assert evaluate(ratio, toy) == {(("model", "a"),): 0.25}  # b has no errors: no series
    assert evaluate(ratio + " > 0.2", toy) == {(("model", "a"),): 0.25}
    assert evaluate(ratio + " > 0.3", toy) == {}
    assert _values(evaluate("left > 0", toy)).keys() == {(("__name__", "left"), ("model", "a"))}
    total = "sum by (model) (calls_total)"
    assert evaluate(f"{total} and on (model) left > 0", toy) == {(("model", "a"),): 8.0}
    assert evaluate(f"{total} unless on (model) left > 0", toy) == {(("model", "b"),): 4.0}
    assert evaluate(f"{total} > 5 or {total}", toy) == {(("model", "a"),): 8.0,
                                                           (("model", "b"),): 4.0}
    assert evaluate("max by (model) (left) - max by (model) (left)", toy) == {
        (("model", "a"),): 0.0, (("model", "b"),): 0.0}


def test_histogram_quantile_interpolates_like_prometheus(toy: Snapshot) -> None:
    # Buckets le=1:1, le=2:3, le=4:4, +Inf:4. p50: rank 2 in (1, 2] holding 2 -> 1 + 1 * 1/2.
    quantile = "histogram_quantile({q}, sum by (le, model) (rate(lat_bucket[5m])))"
    assert evaluate(quantile.format(q=0.5), toy) == {(("model", "a"),): 1.5}
    # p95: rank 3.8 in (2, 4] holding 1 -> 2 + 2 * 0.8.
    assert _values(evaluate(quantile.format(q=0.95), toy))[(("model", "a"),)] == (
        pytest.approx(3.6))


def test_label_replace_swaps_labels_and_variables_select_everything(toy: Snapshot) -> None:
    swapped = evaluate('label_replace(sum by (model) (calls_total), "to", "$1", "model", "(.*)")',
                       toy)
    assert (("model", "a"), ("to", "a")) in _values(swapped)
    assert evaluate('sum(calls_total{model=~"$model"})', toy) == {(): 12.0}
    pinned = Snapshot(toy.samples, toy.seconds, {"model": "b"})
    assert evaluate('sum(calls_total{model=~"$model"})', pinned) == {(): 4.0}


@pytest.mark.parametrize("expr", ["predict_linear(left[30m], 3600) < 0",
                                  'absent(up{job="x"})', 'up{job="x"} == 0'])
def test_what_needs_history_or_a_scrape_is_refused(toy: Snapshot, expr: str) -> None:
    with pytest.raises(Unsupported):
        evaluate(expr, toy)


def test_zero_over_zero_is_no_data(toy: Snapshot) -> None:
    assert evaluate('sum(calls_total{model="c"}) / sum(calls_total{model="c"})', toy) == {}
    assert evaluate("sum(calls_total) / 0", toy) == {(): math.inf}


@pytest.fixture(scope="module")
def run() -> Snapshot:
    clock = ManualClock(0.0)
    registry = CollectorRegistry()
    tracker = build_tracker(recorded.CONFIG, sinks=[PrometheusSink(registry)], clock=clock)
    app = recorded.build(clock)
    for _ in range(3):
        app.invoke({"task": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    return Snapshot.of(registry, seconds=clock.now)


def _panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["title"] == title)


def test_every_generated_panel_query_evaluates(run: Snapshot) -> None:
    for build in DASHBOARDS.values():
        for panel in build()["panels"]:
            panel_series(panel, run)  # raises on PromQL the evaluator does not understand


def test_panels_show_the_known_recording(run: Snapshot) -> None:
    # Three executions: the review gate fails once and passes once in each.
    overview = DASHBOARDS["persona-overview"]()
    assert panel_series(_panel(overview, "Transition matrix"), run) == [
        ("from_persona=coder, to_persona=reviewer", 6.0, 0),
        ("from_persona=planner, to_persona=coder", 3.0, 0),
        ("from_persona=reviewer, to_persona=coder", 3.0, 0)]
    budget = panel_series(_panel(overview, "Budget limit vs used"), run)
    assert ("limit coder (workflow)", 400.0, 0) in budget
    assert ("used coder (workflow)", 500.0, 1) in budget
    calls = panel_series(_panel(overview, "LLM calls per persona"), run)
    assert [(legend, value * run.seconds) for legend, value, _ in calls] == [
        ("coder", pytest.approx(6)), ("planner", pytest.approx(3)), ("reviewer", pytest.approx(6))]
    performance = DASHBOARDS["workflow-performance"]()
    assert panel_series(_panel(performance, "Quality gate pass rate"), run) == [
        ("delivery/review code-review", 0.5, 0)]
    assert panel_series(_panel(performance, "Workflow errors, cancels, evictions"), run) == []


def test_dashboard_preview_draws_every_panel_in_its_place(run: Snapshot) -> None:
    dashboard = json.loads((ROOT / "dashboards" / "workflow-performance.json").read_text())
    fig = viz.dashboard_preview(dashboard, run)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [p["title"] for p in dashboard["panels"]]
    by_title = dict(zip(titles, fig.axes, strict=True))
    bars = [p for p in by_title["Failed gates"].patches if isinstance(p, Rectangle)]
    assert [bar.get_width() for bar in bars] == [3.0]
    texts = [t.get_text() for t in by_title["Failed gates"].texts]
    assert "delivery/review code-review" in texts
    empty = by_title["Workflow errors, cancels, evictions"]
    assert "no data" in [t.get_text() for t in empty.texts]
    stage = [t.get_text() for t in by_title["Stage duration"].texts]
    assert {"p50 delivery/code", "p95 delivery/review"} <= set(stage)
    # Full-width panels span the figure; half-width ones sit side by side.
    first, second = (ax.get_position() for ax in fig.axes[:2])
    assert first.x1 < second.x0 and first.y0 == pytest.approx(second.y0)


def _rows(preview: viz.AlertPreview) -> dict[str, Any]:
    return {row.alert: row for row in preview.rows}


def test_alert_preview_with_the_default_rules(run: Snapshot) -> None:
    rows = _rows(viz.alert_preview(run))
    assert set(rows) == {r["alert"] for g in rule_groups()["groups"] for r in g["rules"]}
    assert not [name for name, row in rows.items() if row.fires]
    # 3 of 6 gate results failed: 0.5 is not above the 0.5 threshold.
    gate = rows["HighQualityGateFailureRate"]
    assert gate.why == "needs > 0.5; gate=code-review, stage=review, workflow=delivery: 0.5"
    assert rows["TokenBudgetDepletionPredicted"].fires is None
    assert rows["HypertoolMetricsNotReported"].fires is None
    assert "<table>" in viz.alert_preview(run)._repr_html_()


def test_alert_preview_fires_with_lower_thresholds(run: Snapshot) -> None:
    rules = rule_groups(AlertSettings(gate_failure_ratio=0.4, gate_min_results=2,
                                      ping_pong_switches=3))
    preview = viz.alert_preview(run, rules)
    assert preview.firing == ["HighQualityGateFailureRate", "PersonaPingPong"]
    pingpong = _rows(preview)["PersonaPingPong"]
    # coder -> reviewer (6) and back (3) both reach 3; planner -> coder has no way back.
    assert [dict(labels)["from_persona"] for labels in pingpong.series] == ["coder", "reviewer"]
    assert "PersonaPingPong" in repr(preview)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_promtool_agrees_with_the_preview(run: Snapshot) -> None:
    rules = rule_groups(AlertSettings(gate_failure_ratio=0.4, gate_min_results=2,
                                      ping_pong_switches=3))
    preview = viz.alert_preview(run, rules)
    assert viz.promtool_check(preview, run, rules).startswith("promtool test rules agrees")
    # A preview that claims a rule fires when it does not is caught.
    wrong = viz.AlertPreview(tuple(
        row if row.alert != "HighQualityGateFailureRate" else type(row)(
            row.alert, row.severity, row.for_, False, "", ()) for row in preview.rows))
    assert viz.promtool_check(wrong, run, rules).startswith("promtool test rules disagrees")


def test_promtool_check_without_promtool(run: Snapshot, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    preview = viz.alert_preview(run)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert viz.promtool_check(preview, run) == "promtool is not on PATH: not cross-checked."
    assert viz.promtool_check(preview, run, promtool=str(tmp_path / "promtool")).startswith(
        "promtool could not run")
