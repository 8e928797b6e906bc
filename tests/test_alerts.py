"""The generated alert rules: committed file = generator output, valid for promtool, and every
alert fires on a bad series, stays silent on a good one and resolves (``promtool test rules``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypertool_callbacks import generate, promql
from hypertool_callbacks.alerts import AlertSettings, alerts, rule_groups, rules_yaml, settings_from
from hypertool_callbacks.cli import main

ROOT = Path(__file__).parent.parent
RULES = ROOT / "alerts" / "hypertool-rules.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: .ci/run installs the Debian prometheus package")


def test_committed_files_equal_the_generator_output() -> None:
    assert generate.stale(ROOT) == [], "run `hypertool-callbacks generate` and commit"


def test_generate_check_flags_a_stale_file(tmp_path: Path) -> None:
    assert main(["generate", "--out", str(tmp_path)]) == 0
    assert main(["generate", "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "alerts" / "hypertool-rules.yml").write_text("groups: []\n")
    assert main(["generate", "--out", str(tmp_path), "--check"]) == 1


def test_the_yaml_writer_round_trips() -> None:
    for settings in (AlertSettings(), AlertSettings(interval="1s", for_="2s", window="30s")):
        assert yaml.safe_load(rules_yaml(settings)) == rule_groups(settings)


def test_settings_from_cli_pairs() -> None:
    s = settings_from(["gate_failure_ratio=0.3", "job=agents", "for=1m", "min-calls=3"])
    assert (s.gate_failure_ratio, s.job, s.for_, s.min_calls) == (0.3, "agents", "1m", 3)
    assert 'up{job="agents"}' in rules_yaml(s)
    with pytest.raises(ValueError, match="KEY one of"):
        settings_from(["gate_ratio=0.3"])
    with pytest.raises(ValueError, match="min_calls: 'many' is not a int"):
        settings_from(["min_calls=many"])


def test_every_rule_has_severity_annotations_and_a_runbook_section() -> None:
    runbook = (ROOT / "alerts" / "RUNBOOK.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", runbook, re.M)}
    loaded = yaml.safe_load(RULES.read_text())
    rules = [r for g in loaded["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"TokenBudgetExceeded", "CostBudgetExceeded", "TokenBudgetDepletionPredicted",
            "HighQualityGateFailureRate",
            "ExcessivePersonaSwitching", "PersonaPingPong", "SlowWorkflowStage",
            "HypertoolMetricsNotReported", "LangfuseIntegrationFailing", "HighLLMErrorRate",
            "HighToolFailureRate", "HypertoolInternalErrors", "HypertoolEventsDropped"} <= names
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        notes = rule["annotations"]
        assert "{{ $labels." in notes["summary"] + notes["description"], rule["alert"]
        base, anchor = notes["runbook_url"].split("#")
        assert base == "alerts/RUNBOOK.md" and anchor in anchors
    severity = {r["alert"]: r["labels"]["severity"] for r in rules}
    assert severity["TokenBudgetExceeded"] == "critical"
    assert severity["TokenBudgetDepletionPredicted"] == "info"
    assert severity["HypertoolMetricsNotReported"] == "critical"


def test_rules_runbook_and_readme_query_only_what_the_exporter_emits() -> None:
    for path in (RULES, ROOT / "alerts" / "RUNBOOK.md", ROOT / "README.md"):
        assert promql.problems(path.read_text()) == [], path
    for alert in alerts():
        assert promql.grouping_problems(alert.expr) == [], alert.name


def test_the_catalog_check_catches_a_value_never_emitted() -> None:
    from hypertool_callbacks import catalog as c

    # The seed's runbook queried result="fail" while its code emitted "failed": now a build error.
    with pytest.raises(ValueError, match=r"never \['failed'\]"):
        promql.sel(c.QUALITY_GATE, result="failed")
    with pytest.raises(KeyError, match="no label 'tool'"):
        promql.sel(c.LLM_REQUESTS, tool="x")
    assert promql.problems('hypertool_llm_requests_total{status=~"ok|timeout"}') != []
    typo = "_".join(("hypertool", "llm", "request", "total"))  # the catalog guard reads tests
    assert promql.problems(typo) != []
    assert promql.grouping_problems(f"sum by (tool) ({promql.sel(c.LLM_REQUESTS)})") != []


@needs_promtool
def test_promtool_check_rules_passes_for_defaults_and_custom_settings(tmp_path: Path) -> None:
    custom = tmp_path / "custom.yml"
    custom.write_text(rules_yaml(AlertSettings(window="1m", for_="5s", interval="1s")))
    for path in (RULES, custom):
        done = subprocess.run([str(PROMTOOL), "check", "rules", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


# -- promtool test rules ------------------------------------------------------------------------

J = 'job="hypertool", instance="a:9464"'
TEAM = {"team": "hypertool"}


def _case(alert: str, series: dict[str, str], fire_at: str, fired: list[dict[str, str]],
          resolved_at: str) -> dict[str, Any]:
    return {"alert": alert, "series": series, "fire_at": fire_at, "fired": fired,
            "resolved_at": resolved_at}


CASES = [
    _case("TokenBudgetExceeded", {
        f'hypertool_persona_token_budget_exceeded_total{{persona="coder", scope="workflow", {J}}}':
            "0 0 0 1 2 3 3x40",
        f'hypertool_persona_token_budget_exceeded_total{{persona="writer", scope="process", {J}}}':
            "0x45",
    }, "5m", [{"persona": "coder", "scope": "workflow"}], "30m"),
    _case("CostBudgetExceeded", {
        f'hypertool_persona_cost_budget_exceeded_total{{persona="coder", scope="process", {J}}}':
            "0 0 1 1 1x40",
        f'hypertool_persona_cost_budget_exceeded_total{{persona="writer", scope="workflow", '
        f'{J}}}': "2x45",
    }, "4m", [{"persona": "coder", "scope": "process"}], "30m"),
    _case("TokenBudgetDepletionPredicted", {
        f'hypertool_persona_token_budget_remaining{{persona="coder", scope="process", {J}}}':
            "1000-20x40 200x60",
        f'hypertool_persona_token_budget_remaining{{persona="writer", scope="process", {J}}}':
            "5000x100",
        # Workflow scope resets per execution: a falling gauge there predicts nothing.
        f'hypertool_persona_token_budget_remaining{{persona="tester", scope="workflow", {J}}}':
            "1000-20x40 200x60",
    }, "35m", [{"persona": "coder", "scope": "process", "job": "hypertool",
                "instance": "a:9464"}], "90m"),
    _case("HighQualityGateFailureRate", {
        f'hypertool_workflow_quality_gate_total{{workflow="w", stage="review", gate="review", '
        f'result="fail", {J}}}': "0+3x30 90x60",
        f'hypertool_workflow_quality_gate_total{{workflow="w", stage="review", gate="review", '
        f'result="pass", {J}}}': "0+1x90",
        f'hypertool_workflow_quality_gate_total{{workflow="w", stage="lint", gate="lint", '
        f'result="fail", {J}}}': "0+1x90",
        f'hypertool_workflow_quality_gate_total{{workflow="w", stage="lint", gate="lint", '
        f'result="pass", {J}}}': "0+3x90",
    }, "20m", [{"workflow": "w", "stage": "review", "gate": "review"}], "60m"),
    _case("ExcessivePersonaSwitching", {
        f'hypertool_persona_switches_total{{workflow="bad", from_persona="a", to_persona="b", '
        f'{J}}}': "0+50x30 1500x60",
        f'hypertool_workflow_duration_seconds_count{{workflow="bad", status="ok", {J}}}':
            "0+1x90",
        f'hypertool_persona_switches_total{{workflow="good", from_persona="a", to_persona="b", '
        f'{J}}}': "0+2x90",
        f'hypertool_workflow_duration_seconds_count{{workflow="good", status="ok", {J}}}':
            "0+1x90",
    }, "20m", [{"workflow": "bad"}], "60m"),
    _case("PersonaPingPong", {
        f'hypertool_persona_switches_total{{workflow="w", from_persona="coder", '
        f'to_persona="reviewer", {J}}}': "0+2x30 60x60",
        f'hypertool_persona_switches_total{{workflow="w", from_persona="reviewer", '
        f'to_persona="coder", {J}}}': "0+2x30 60x60",
        # Often, but one way only: a pipeline, not a ping-pong.
        f'hypertool_persona_switches_total{{workflow="w", from_persona="planner", '
        f'to_persona="coder", {J}}}': "0+5x90",
    }, "20m", [{"workflow": "w", "from_persona": "coder", "to_persona": "reviewer"},
               {"workflow": "w", "from_persona": "reviewer", "to_persona": "coder"}], "60m"),
    _case("SlowWorkflowStage", {
        **{f'hypertool_workflow_stage_duration_seconds_bucket{{workflow="w", stage="build", '
           f'persona="p", le="{le}", {J}}}': "0x90" for le in ("300.0", "600.0")},
        **{f'hypertool_workflow_stage_duration_seconds_bucket{{workflow="w", stage="build", '
           f'persona="p", le="{le}", {J}}}': "0+1x30 30x60" for le in ("1800.0", "+Inf")},
        **{f'hypertool_workflow_stage_duration_seconds_bucket{{workflow="w", stage="plan", '
           f'persona="p", le="{le}", {J}}}': "0+1x90" for le in ("1.0", "+Inf")},
    }, "20m", [{"workflow": "w", "stage": "build"}], "60m"),
    _case("HypertoolMetricsNotReported", {
        # a: the process dies for 10 minutes; b: healthy; c: up, but hypertool is not active
        # in it until minute 26 (every active process exports the dropped-events counter).
        f'up{{{J}}}': "1x10 0x10 1x40",
        f'hypertool_events_dropped_total{{reason="evicted", {J}}}': "0x10 _x10 0x40",
        'up{job="hypertool", instance="b:9464"}': "1x60",
        'hypertool_events_dropped_total{reason="evicted", job="hypertool", instance="b:9464"}':
            "0x60",
        'up{job="hypertool", instance="c:9464"}': "1x60",
        'hypertool_events_dropped_total{reason="evicted", job="hypertool", instance="c:9464"}':
            "_x25 0x35",
    }, "18m", [{"job": "hypertool", "instance": "a:9464"},
               {"job": "hypertool", "instance": "c:9464"}], "40m"),
    _case("LangfuseIntegrationFailing", {
        f'hypertool_langfuse_export_failures_total{{reason="connection", {J}}}': "0+1x20 20x60",
        f'hypertool_langfuse_export_failures_total{{reason="http_401", {J}}}': "5x80",
    }, "15m", [{"job": "hypertool", "reason": "connection"}], "50m"),
    _case("HighLLMErrorRate", {
        f'hypertool_llm_requests_total{{model="bad", persona="p", status="error", {J}}}':
            "0+5x30 150x60",
        f'hypertool_llm_requests_total{{model="bad", persona="p", status="ok", {J}}}': "0+5x90",
        f'hypertool_llm_requests_total{{model="good", persona="p", status="error", {J}}}':
            "0+1x90",
        f'hypertool_llm_requests_total{{model="good", persona="p", status="ok", {J}}}':
            "0+20x90",
    }, "15m", [{"model": "bad"}], "60m"),
    _case("HighToolFailureRate", {
        f'hypertool_tool_calls_total{{tool="bad", persona="p", status="error", {J}}}':
            "0+5x30 150x60",
        f'hypertool_tool_calls_total{{tool="bad", persona="p", status="ok", {J}}}': "0+5x90",
        f'hypertool_tool_calls_total{{tool="good", persona="p", status="error", {J}}}': "0+1x90",
        f'hypertool_tool_calls_total{{tool="good", persona="p", status="ok", {J}}}': "0+20x90",
    }, "15m", [{"tool": "bad"}], "60m"),
    _case("HypertoolInternalErrors", {
        f'hypertool_internal_errors_total{{component="sink:otel", {J}}}': "0+1x10 10x60",
        f'hypertool_internal_errors_total{{component="langchain.on_llm_end", {J}}}': "3x70",
    }, "8m", [{"component": "sink:otel"}], "40m"),
    _case("HypertoolEventsDropped", {
        f'hypertool_events_dropped_total{{reason="unknown_run", {J}}}': "0+5x30 150x60",
        f'hypertool_events_dropped_total{{reason="evicted", {J}}}': "0+0.5x90",
    }, "20m", [{"reason": "unknown_run"}], "60m"),
]


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def test_every_alert_has_a_promtool_case() -> None:
    assert sorted(case["alert"] for case in CASES) == sorted(a.name for a in alerts())


@needs_promtool
def test_promtool_every_alert_fires_on_bad_series_only_and_resolves(tmp_path: Path) -> None:
    # The committed rules, minus the description annotation: promtool compares annotations
    # exactly, and descriptions print extrapolated $values. Everything else is byte-for-byte.
    loaded = yaml.safe_load(RULES.read_text())
    by_name = {}
    for group in loaded["groups"]:
        for rule in group["rules"]:
            del rule["annotations"]["description"]
            by_name[rule["alert"]] = rule
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(loaded, sort_keys=False))
    tests = []
    for case in CASES:
        rule = by_name[case["alert"]]
        expected = []
        for labels in case["fired"]:
            full = {**rule["labels"], **labels}
            expected.append({"exp_labels": full, "exp_annotations": {
                key: _render(value, full) for key, value in rule["annotations"].items()}})
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case["series"].items()],
            "alert_rule_test": [
                {"eval_time": case["fire_at"], "alertname": case["alert"],
                 "exp_alerts": expected},
                {"eval_time": case["resolved_at"], "alertname": case["alert"], "exp_alerts": []},
            ],
        })
    # No up series and no metrics at all: the scrape job is gone, not just one target.
    tests.append({"interval": "1m", "input_series": [
        {"series": 'up{job="other", instance="x"}', "values": "1x20"}],
        "alert_rule_test": [{"eval_time": "10m", "alertname": "HypertoolMetricsNotReported",
                             "exp_alerts": [{"exp_labels": {
                                 **by_name["HypertoolMetricsNotReported"]["labels"],
                                 "job": "hypertool"},
                                 "exp_annotations": {
                                     k: _render(v, {"job": "hypertool"}) for k, v in
                                     by_name["HypertoolMetricsNotReported"]["annotations"]
                                     .items()}}]}]})
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    done = subprocess.run([str(PROMTOOL), "test", "rules", "tests.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
