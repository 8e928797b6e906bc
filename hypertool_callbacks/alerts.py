"""Prometheus alert rules generated from the metric catalog (``alerts/hypertool-rules.yml``).

Every series goes through :func:`hypertool_callbacks.promql.sel`, so a rule cannot query a
metric, label or value the exporter never emits. Thresholds, windows and ``for:`` durations
are :class:`AlertSettings` fields: ``hypertool-callbacks generate --set gate_failure_ratio=0.3``
writes a copy with yours. All rules aggregate with ``sum by (...)`` over the fleet, except where
a figure belongs to one process (a process-scope budget, a scrape target).

Example::

    text = rules_yaml(AlertSettings(job="my-agents", window="5m"))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hypertool_callbacks import catalog as c
from hypertool_callbacks.promql import sel


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Knobs of the generated rules (all have defaults; see the README's alerts section)."""

    job: str = "hypertool"               # the scrape job of the instrumented apps
    window: str = "10m"                  # range of every rate()/increase()
    for_: str | None = None              # one `for:` for every rule (None: each rule's own)
    interval: str | None = None          # rule group evaluation interval (None: global)
    runbook_url: str = "alerts/RUNBOOK.md"  # base of runbook_url; #<alert> is appended
    gate_failure_ratio: float = 0.5      # failed / all gate results in the window
    gate_min_results: int = 4            # ignore gates with fewer results in the window
    switches_per_execution: float = 20.0 # mean persona switches per workflow execution
    ping_pong_switches: int = 10         # A->B and B->A, each at least this often per window
    stage_p95_seconds: float = 600.0     # p95 stage duration
    llm_error_ratio: float = 0.1         # failed / all LLM calls of a model
    tool_failure_ratio: float = 0.2      # failed / all calls of a tool
    min_calls: int = 10                  # ignore models/tools with fewer calls in the window
    dropped_events: int = 10             # framework events dropped per window
    depletion_lookback: str = "30m"      # trend of a process-scope budget
    depletion_horizon_seconds: int = 3600  # predicted empty within this


DEFAULTS = AlertSettings()


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    group: str
    severity: str  # critical | warning | info
    expr: str
    for_: str
    summary: str
    description: str
    extra_labels: tuple[tuple[str, str], ...] = field(default=())


def _ratio(failed: str, total: str, by: str, window: str) -> str:
    return (f"sum by ({by}) (increase({failed}[{window}]))\n"
            f"  / sum by ({by}) (increase({total}[{window}]))")


def _swap_from_to(expr: str) -> str:
    # A->B series relabelled as B->A, so `and on (...)` finds pairs switching both ways.
    inner = f'label_replace({expr}, "tmp", "$1", "from_persona", "(.*)")'
    inner = f'label_replace({inner}, "from_persona", "$1", "to_persona", "(.*)")'
    inner = f'label_replace({inner}, "to_persona", "$1", "tmp", "(.*)")'
    return f'label_replace({inner}, "tmp", "", "tmp", ".*")'


def alerts(s: AlertSettings = DEFAULTS) -> list[Alert]:
    """The rules, in file order."""
    w = s.window
    exceeded = sel(c.BUDGET_EXCEEDED)
    remaining = sel(c.BUDGET_REMAINING, scope="process")
    gates, failed_gates = sel(c.QUALITY_GATE), sel(c.QUALITY_GATE, result="fail")
    switches = sel(c.PERSONA_SWITCHES)
    pairs = f"sum by (workflow, from_persona, to_persona) (increase({switches}[{w}]))"
    llm, llm_failed = sel(c.LLM_REQUESTS), sel(c.LLM_REQUESTS, status="error")
    tools, tools_failed = sel(c.TOOL_CALLS), sel(c.TOOL_CALLS, status="error")
    stage_p95 = ("histogram_quantile(0.95, sum by (le, workflow, stage) "
                 f"(rate({sel(c.STAGE_DURATION, '_bucket')}[{w}])))")
    return [
        Alert(
            "TokenBudgetExceeded", "hypertool.budgets", "critical",
            f"sum by (persona, scope) (increase({exceeded}[{w}])) > 0", "0m",
            "Persona {{ $labels.persona }} is over its token budget",
            "{{ $value | humanize }} LLM calls of persona {{ $labels.persona }} started with its "
            "{{ $labels.scope }}-scope token budget already spent (last " + w + ")."),
        Alert(
            "CostBudgetExceeded", "hypertool.budgets", "critical",
            f"sum by (persona, scope) (increase({sel(c.COST_BUDGET_EXCEEDED)}[{w}])) > 0", "0m",
            "Persona {{ $labels.persona }} is over its USD budget",
            "{{ $value | humanize }} LLM calls of persona {{ $labels.persona }} started with its "
            "{{ $labels.scope }}-scope USD budget already spent (last " + w + ")."),
        Alert(
            "TokenBudgetDepletionPredicted", "hypertool.budgets", "info",
            f"predict_linear({remaining}[{s.depletion_lookback}], "
            f"{s.depletion_horizon_seconds}) < 0\n  and {remaining} > 0", "10m",
            "Persona {{ $labels.persona }} will run out of token budget on {{ $labels.instance }}",
            "At the rate of the last " + s.depletion_lookback + ", the process-scope budget of "
            "persona {{ $labels.persona }} on {{ $labels.instance }} is spent within "
            f"{s.depletion_horizon_seconds} s ({{{{ $value | humanize }}}} tokens predicted)."),
        Alert(
            "HighQualityGateFailureRate", "hypertool.quality", "warning",
            _ratio(failed_gates, gates, "workflow, stage, gate", w)
            + f" > {s.gate_failure_ratio}\n  and sum by (workflow, stage, gate) "
              f"(increase({gates}[{w}])) >= {s.gate_min_results}", "15m",
            "Gate {{ $labels.gate }} fails often in {{ $labels.workflow }}",
            "{{ $value | humanizePercentage }} of the results of quality gate {{ $labels.gate }} "
            "(stage {{ $labels.stage }}, workflow {{ $labels.workflow }}) were fail over the "
            f"last {w} (threshold {s.gate_failure_ratio:.0%})."),
        Alert(
            "ExcessivePersonaSwitching", "hypertool.quality", "warning",
            f"sum by (workflow) (increase({switches}[{w}]))\n  / sum by (workflow) "
            f"(increase({sel(c.WORKFLOW_DURATION, '_count')}[{w}]))"
            f" > {s.switches_per_execution}", "15m",
            "Workflow {{ $labels.workflow }} switches persona too often",
            "Executions of workflow {{ $labels.workflow }} switched persona {{ $value | humanize }}"
            f" times each on average over the last {w} (threshold {s.switches_per_execution})."),
        Alert(
            "PersonaPingPong", "hypertool.quality", "warning",
            f"{pairs} >= {s.ping_pong_switches}\n  and on (workflow, from_persona, to_persona) "
            f"{_swap_from_to(pairs)} >= {s.ping_pong_switches}", "15m",
            "{{ $labels.from_persona }} and {{ $labels.to_persona }} hand work back and forth",
            "In workflow {{ $labels.workflow }}, {{ $labels.from_persona }} -> "
            "{{ $labels.to_persona }} happened {{ $value | humanize }} times in the last " + w
            + f", and the reverse at least {s.ping_pong_switches} times: an A->B->A loop."),
        Alert(
            "SlowWorkflowStage", "hypertool.quality", "warning",
            f"{stage_p95} > {s.stage_p95_seconds:g}", "15m",
            "Stage {{ $labels.stage }} of {{ $labels.workflow }} is slow",
            "p95 duration of stage {{ $labels.stage }} in workflow {{ $labels.workflow }} is "
            "{{ $value | humanizeDuration }} over the last " + w
            + f" (threshold {s.stage_p95_seconds:g} s)."),
        Alert(
            "HypertoolMetricsNotReported", "hypertool.plugin", "critical",
            f'up{{job="{s.job}"}} == 0\n  or absent(up{{job="{s.job}"}})\n'
            f'  or (up{{job="{s.job}"}} == 1 unless on (job, instance) '
            f"{sel(c.EVENTS_DROPPED, job=s.job)})", "5m",
            "No hypertool metrics from job {{ $labels.job }} {{ $labels.instance }}",
            f"Prometheus cannot scrape job {s.job} (target down or gone), or the target "
            "exposes no hypertool series (hypertool-callbacks is not active in that process): "
            "dashboards and the other alerts are blind."),
        Alert(
            "LangfuseIntegrationFailing", "hypertool.plugin", "warning",
            f"sum by (job, reason) (increase({sel(c.LANGFUSE_EXPORT_FAILURES)}[{w}])) > 0", "10m",
            "Langfuse export fails ({{ $labels.reason }})",
            "{{ $value | humanize }} batches of spans could not be delivered to Langfuse "
            "(reason {{ $labels.reason }}) in the last " + w + "; those traces are lost."),
        Alert(
            "HighLLMErrorRate", "hypertool.llm", "warning",
            _ratio(llm_failed, llm, "model", w) + f" > {s.llm_error_ratio}\n  and sum by (model) "
            f"(increase({llm}[{w}])) >= {s.min_calls}", "10m",
            "LLM calls to {{ $labels.model }} fail",
            "{{ $value | humanizePercentage }} of the calls to model {{ $labels.model }} ended in "
            f"an error over the last {w} (threshold {s.llm_error_ratio:.0%})."),
        Alert(
            "HighToolFailureRate", "hypertool.llm", "warning",
            _ratio(tools_failed, tools, "tool", w) + f" > {s.tool_failure_ratio}\n  and sum by "
            f"(tool) (increase({tools}[{w}])) >= {s.min_calls}", "10m",
            "Tool {{ $labels.tool }} fails",
            "{{ $value | humanizePercentage }} of the calls of tool {{ $labels.tool }} raised over "
            f"the last {w} (threshold {s.tool_failure_ratio:.0%})."),
        Alert(
            "HypertoolInternalErrors", "hypertool.plugin", "warning",
            f"sum by (component) (increase({sel(c.INTERNAL_ERRORS)}[{w}])) > 0", "5m",
            "hypertool-callbacks fails inside {{ $labels.component }}",
            "{{ $value | humanize }} internal errors in {{ $labels.component }} over the last " + w
            + ". The application is unaffected, but some metrics or spans are missing."),
        Alert(
            "HypertoolEventsDropped", "hypertool.plugin", "warning",
            f"sum by (reason) (increase({sel(c.EVENTS_DROPPED)}[{w}])) > {s.dropped_events}",
            "15m",
            "hypertool-callbacks drops framework events ({{ $labels.reason }})",
            "{{ $value | humanize }} framework events were dropped (reason {{ $labels.reason }})"
            f" over the last {w}: runs are missing from the metrics."),
    ]


def _anchor(name: str) -> str:
    return name.lower()  # GitHub's anchor for a "## Name" heading


def rule_groups(s: AlertSettings = DEFAULTS) -> dict[str, Any]:
    """The rule file as data (what ``rules_yaml`` writes)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in alerts(s):
        labels = {"severity": a.severity, "team": "hypertool", **dict(a.extra_labels)}
        groups.setdefault(a.group, []).append({
            "alert": a.name, "expr": a.expr, "for": s.for_ or a.for_, "labels": labels,
            "annotations": {"summary": a.summary, "description": a.description,
                            "runbook_url": f"{s.runbook_url}#{_anchor(a.name)}"},
        })
    out = []
    for name, rules in groups.items():
        group: dict[str, Any] = {"name": name}
        if s.interval:
            group["interval"] = s.interval
        group["rules"] = rules
        out.append(group)
    return {"groups": out}


def _scalar(value: str, indent: str) -> list[str]:
    if "\n" in value:
        return ["|-", *(indent + line for line in value.split("\n"))]
    return [json.dumps(value)]  # a JSON string is a valid YAML double-quoted scalar


def _emit(value: Any, indent: str) -> list[str]:
    # Just enough YAML for rule files (mappings, lists of mappings, strings): no PyYAML needed.
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                first, *rest = _scalar(item, indent + "  ")
                lines += [f"{indent}{key}: {first}", *rest]
            else:
                lines += [f"{indent}{key}:", *_emit(item, indent + "  ")]
    elif isinstance(value, list):
        for item in value:
            body = _emit(item, indent + "  ")
            lines += [f"{indent}- {body[0].lstrip()}", *body[1:]]
    else:
        raise TypeError(f"cannot write {type(value).__name__} as YAML")
    return lines


HEADER = ("# Generated from hypertool_callbacks/catalog.py by `hypertool-callbacks generate`;"
          " do not edit.\n# Thresholds: `hypertool-callbacks generate --set KEY=VALUE` "
          "(see AlertSettings). Runbook: alerts/RUNBOOK.md\n")


def rules_yaml(s: AlertSettings = DEFAULTS) -> str:
    """``alerts/hypertool-rules.yml`` for ``s``."""
    return HEADER + "\n".join(_emit(rule_groups(s), "")) + "\n"


def settings_from(pairs: Iterable[str], base: AlertSettings = DEFAULTS) -> AlertSettings:
    """``["gate_failure_ratio=0.3", ...]`` applied to ``base``; unknown keys or bad values
    raise ValueError naming the key."""
    fields = {f.name: f for f in dataclasses.fields(AlertSettings)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if key == "for":
            key = "for_"
        if not sep or key not in fields:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE with KEY one of "
                             f"{sorted(fields)}")
        default = getattr(base, key)
        try:
            changes[key] = (raw if isinstance(default, str) or default is None
                            else type(default)(raw))
        except ValueError:
            raise ValueError(f"--set {key}: {raw!r} is not a {type(default).__name__}") from None
    return dataclasses.replace(base, **changes)
