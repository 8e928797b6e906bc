"""The generated Grafana dashboards: importable, typed (parsed back by grafana-foundation-sdk),
and querying only what the exporter emits, aggregated so a fleet adds up."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as sdk

from hypertool_callbacks import promql
from hypertool_callbacks.dashboards import expressions
from hypertool_callbacks.dashboards_panels import DASHBOARDS

ROOT = Path(__file__).parent.parent
NAMES = sorted(DASHBOARDS)


def _load(name: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
    return board


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    for name, build in DASHBOARDS.items():
        assert _load(name) == build(), f"run `hypertool-callbacks generate` ({name})"


@pytest.mark.parametrize("name", NAMES)
def test_parses_back_with_the_typed_grafana_models(name: str) -> None:
    plugins.register_default_plugins()
    board = _load(name)
    typed = sdk.Dashboard.from_json(board)
    again = json.loads(json.dumps(typed, cls=JSONEncoder))
    assert [p["title"] for p in again["panels"]] == [p["title"] for p in board["panels"]]
    for ours, theirs in zip(board["panels"], again["panels"], strict=True):
        assert [t["expr"] for t in theirs["targets"]] == [t["expr"] for t in ours["targets"]]
        assert theirs["type"] == ours["type"]
    for panel in typed.panels or []:
        assert isinstance(panel, sdk.Panel)
        # The panel's options were decoded by its own plugin's model, not left as raw dicts.
        module = type(panel.options).__module__.rsplit(".", 1)[-1]
        assert module == str(panel.type_val).replace("-", ""), (panel.title, module)


@pytest.mark.parametrize("name", NAMES)
def test_importable_with_a_datasource_input_and_fleet_variables(name: str) -> None:
    board = _load(name)
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["traces"]["type"] == "datasource"
    for var in ("workflow", "persona", "model", "instance"):
        v = variables[var]
        assert (v["type"], v["multi"], v["includeAll"], v["allValue"]) == ("query", True, True,
                                                                            ".*")
        assert re.fullmatch(rf"label_values\(hypertool_\w+, {var}\)", v["definition"])
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"].strip() and "\n" not in panel["description"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


@pytest.mark.parametrize("name", NAMES)
def test_queries_use_only_catalog_series_and_fleet_aggregation(name: str) -> None:
    board = _load(name)
    for expr in expressions(board):
        assert promql.problems(expr) == [], expr
        assert promql.grouping_problems(expr) == [], expr
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            # Aggregated (never a raw per-process series), with Grafana's range variables.
            assert re.match(r"(sum|max|min|topk|histogram_quantile)\b", expr), expr
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "$__range"), expr
            if "histogram_quantile" in expr:
                assert re.search(r"sum by \(le, [a-z_, ]+\) \(rate\(hypertool_\w+_bucket", expr)
                # Latency panels show exemplars (stints are observed without a trace).
                if not target["instant"] and "persona_duration" not in expr:
                    assert target.get("exemplar") is True, panel["title"]
            if '$persona' in expr or '$workflow' in expr or '$model' in expr:
                assert '=~"$' in expr  # multi-value variables need a regex matcher


def test_the_issue_s_panels_exist() -> None:
    titles = {name: {p["title"] for p in _load(name)["panels"]} for name in NAMES}
    assert {"Persona switch rate", "Transition matrix", "Handoffs", "Time per persona",
            "Tokens by persona and model", "Token details (cache, reasoning)",
            "Budget limit vs used", "Budget-exceeded calls", "LLM calls per persona",
            "Active persona over time", "Cost by persona and model", "Cost rate",
            "USD budget limit vs used", "Unpriced LLM calls"} <= titles["persona-overview"]
    assert {"Workflow throughput", "Workflow duration", "Stage duration", "Slowest stages",
            "Quality gate pass rate", "Failed gates",
            "Workflow errors, cancels, evictions"} <= titles["workflow-performance"]
    assert {"LLM latency", "Time to first token", "LLM requests by status", "Tokens by type",
            "Calls without usage", "Tool calls", "Tool failures", "Tool latency",
            "Events dropped", "Internal errors",
            "Langfuse export failures"} <= titles["llm-and-tools"]
    uids = [_load(name)["uid"] for name in NAMES]
    assert len(set(uids)) == len(uids)
