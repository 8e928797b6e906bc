"""Grafana dashboards generated from the metric catalog (``dashboards/*.json``).

Plain JSON built here (no Grafana SDK needed at runtime); the tests parse every dashboard back
with ``grafana-foundation-sdk``'s typed models. Every query goes through
:func:`hypertool_callbacks.promql.sel`, with the dashboard variables ``$workflow``,
``$persona``, ``$model`` and ``$instance`` applied to the metrics that carry those labels, and
aggregates with ``sum by (...)`` so a panel is right for one process or a fleet.
The panels themselves live in :mod:`hypertool_callbacks.dashboards_panels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypertool_callbacks import catalog as c
from hypertool_callbacks.catalog import MetricSpec
from hypertool_callbacks.promql import sel

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Label -> dashboard variable; applied wherever a metric has the label.
VARIABLES = {"workflow": "~$workflow", "persona": "~$persona", "model": "~$model",
             "instance": "~$instance"}
# Where each variable's values come from (metrics that always carry the label once used).
VARIABLE_SOURCES: dict[str, MetricSpec] = {
    "workflow": c.WORKFLOW_DURATION, "persona": c.LLM_REQUESTS, "model": c.LLM_REQUESTS,
    "instance": c.LLM_REQUESTS,
}
RATE = "$__rate_interval"


def m(spec: MetricSpec, suffix: str = "", **matchers: str) -> str:
    """``spec``'s series filtered by the dashboard variables it has labels for."""
    return sel(spec, suffix, where=VARIABLES, **matchers)


def rate(spec: MetricSpec, by: str, suffix: str = "", window: str = RATE, **matchers: str) -> str:
    return f"sum by ({by}) (rate({m(spec, suffix, **matchers)}[{window}]))"


def quantile(q: float, spec: MetricSpec, by: str, window: str = RATE, **matchers: str) -> str:
    return (f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({m(spec, '_bucket', **matchers)}[{window}])))")


@dataclass(frozen=True, slots=True)
class Target:
    expr: str
    legend: str = ""
    instant: bool = False  # one value per series (tables), not a range
    exemplar: bool = False


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    description: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # timeseries | table | state-timeline | bargauge
    unit: str = "short"
    width: int = 12
    stack: bool = False
    transformations: tuple[dict[str, Any], ...] = field(default=())


def latency(title: str, description: str, spec: MetricSpec, by: str, legend: str,
            **matchers: str) -> Panel:
    """p50 and p95 of a latency histogram, with exemplars (trace ids) when OTel is on."""
    return Panel(title, description, (
        Target(quantile(0.5, spec, by, **matchers), f"p50 {legend}", exemplar=True),
        Target(quantile(0.95, spec, by, **matchers), f"p95 {legend}", exemplar=True),
    ), unit="s")


def _legend_options() -> dict[str, Any]:
    return {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    options: dict[str, Any]
    if panel.kind == "timeseries":
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if panel.stack else 0,
                  "showPoints": "never", "spanNulls": False,
                  "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"}}
        options = {"legend": _legend_options(), "tooltip": {"mode": "multi", "sort": "desc"}}
    elif panel.kind == "state-timeline":
        options = {"legend": _legend_options(), "tooltip": {"mode": "single", "sort": "none"},
                   "mergeValues": True, "showValue": "never", "rowHeight": 0.9}
    elif panel.kind == "bargauge":
        options = {"displayMode": "basic", "orientation": "horizontal", "showUnfilled": True,
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        options = {"showHeader": True, "cellHeight": "sm",
                   "footer": {"show": False, "reducer": ["sum"], "countRows": False}}
    targets = []
    for index, target in enumerate(panel.targets):
        body: dict[str, Any] = {
            "datasource": DATASOURCE, "refId": chr(ord("A") + index), "expr": target.expr,
            "legendFormat": target.legend or "__auto",
            "range": not target.instant, "instant": target.instant,
        }
        if target.instant:
            body["format"] = "table"
        if target.exemplar:
            body["exemplar"] = True
        targets.append(body)
    out: dict[str, Any] = {
        "id": panel_id, "type": panel.kind, "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, "custom": custom}, "overrides": []},
        "options": options, "targets": targets,
    }
    if panel.transformations:
        out["transformations"] = list(panel.transformations)
    return out


def _variable(name: str) -> dict[str, Any]:
    spec = VARIABLE_SOURCES[name]
    series = spec.name + ("_count" if spec.kind == "histogram" else "")
    query = f"label_values({series}, {name})"
    return {
        "type": "query", "name": name, "label": name.capitalize(), "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "multi": True, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2, "sort": 1, "regex": "", "hide": 0, "options": [],
    }


def _datasource_variable(name: str, label: str, plugin: str, current: str) -> dict[str, Any]:
    return {"type": "datasource", "name": name, "label": label, "query": plugin,
            "current": {"selected": False, "text": current, "value": current},
            "refresh": 1, "regex": "", "hide": 0, "options": [], "multi": False,
            "includeAll": False}


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, Any]:
    """An importable dashboard: ``__inputs`` makes Grafana's Import ask for the Prometheus
    datasource; provisioned, the ``datasource`` variable falls back to the default one."""
    laid_out, x, y = [], 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        laid_out.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "",
                      "type": "datasource", "pluginId": "prometheus",
                      "pluginName": "Prometheus"}],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": uid, "title": title, "description": description,
        "tags": ["hypertool", "llm", "agents"], "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "timezone": "browser", "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "links": [
            {"title": "hypertool dashboards", "type": "dashboards", "tags": ["hypertool"],
             "asDropdown": True, "includeVars": True, "keepTime": True},
            {"title": "Traces (${traces})", "type": "link", "icon": "external link",
             "url": "/explore?left=%7B%22datasource%22:%22${traces}%22%7D",
             "tooltip": "Exemplars on latency panels carry trace_id; open the trace backend"},
        ],
        "templating": {"list": [
            _datasource_variable("datasource", "Prometheus", "prometheus", "${DS_PROMETHEUS}"),
            _datasource_variable("traces", "Traces", "tempo", ""),
            *(_variable(name) for name in VARIABLES),
        ]},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and variable queries."""
    found = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    found += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return found
