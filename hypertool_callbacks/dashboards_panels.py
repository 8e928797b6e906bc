"""The panels of the three shipped dashboards, and their files (the building blocks: queries,
panel and dashboard JSON, are in :mod:`.dashboards`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypertool_callbacks import catalog as c
from hypertool_callbacks.dashboards import (
    RATE,
    Panel,
    Target,
    dashboard,
    latency,
    m,
    quantile,
    rate,
)

_TRANSITIONS = (
    {"id": "groupingToMatrix",
     "options": {"rowField": "from_persona", "columnField": "to_persona",
                 "valueField": "Value", "emptyValue": "zero"}},
)


def persona_overview() -> dict[str, Any]:
    switches = f"sum by (from_persona, to_persona) (increase({m(c.PERSONA_SWITCHES)}[$__range]))"
    used = f"{m(c.BUDGET_LIMIT)} - {m(c.BUDGET_REMAINING)}"
    usd_used = f"{m(c.COST_BUDGET_LIMIT)} - {m(c.COST_BUDGET_REMAINING)}"
    return dashboard("hypertool-persona-overview", "hypertool / Persona Overview",
                     "Who works: persona switches, handoffs, time, tokens, cost and budgets.", [
        Panel("Persona switch rate", "Switches of the acting persona per second, by from -> to.",
              (Target(rate(c.PERSONA_SWITCHES, "from_persona, to_persona"),
                      "{{from_persona}} -> {{to_persona}}"),), unit="ops"),
        Panel("Transition matrix", "Switches in the time range: rows hand over to columns.",
              (Target(switches, instant=True),), kind="table",
              transformations=_TRANSITIONS),
        Panel("Handoffs", "Handoffs per second (transfer_to_* tools, Command(goto=...)).",
              (Target(rate(c.PERSONA_HANDOFFS, "from_persona, to_persona"),
                      "{{from_persona}} -> {{to_persona}}"),), unit="ops"),
        Panel("Time per persona", "Seconds each persona acted per second of wall time "
              "(counted when its stint ends).",
              (Target(rate(c.PERSONA_DURATION, "persona", "_sum"), "{{persona}}"),),
              unit="s", stack=True),
        Panel("Tokens by persona and model", "Input and output tokens per second.",
              (Target(rate(c.PERSONA_TOKENS, "persona, model, token_type"),
                      "{{persona}} {{model}} {{token_type}}"),), stack=True),
        Panel("Token details (cache, reasoning)", "Cache-read, cache-creation and reasoning "
              "tokens per second (subsets of the tokens above).",
              (Target(rate(c.PERSONA_TOKEN_DETAILS, "persona, model, detail"),
                      "{{persona}} {{model}} {{detail}}"),)),
        Panel("Budget limit vs used", "Token budget and the most any process (process scope) "
              "or last execution (workflow scope) has used of it.",
              (Target(f"max by (persona, scope) ({m(c.BUDGET_LIMIT)})",
                      "limit {{persona}} ({{scope}})"),
               Target(f"max by (persona, scope) ({used})", "used {{persona}} ({{scope}})"))),
        Panel("Budget-exceeded calls", "LLM calls started with the persona's budget spent, "
              "per second, summed over the fleet.",
              (Target(rate(c.BUDGET_EXCEEDED, "persona, scope"), "{{persona}} ({{scope}})"),),
              unit="ops"),
        Panel("LLM calls per persona", "LLM calls per second by persona.",
              (Target(rate(c.LLM_REQUESTS, "persona"), "{{persona}}"),), unit="ops"),
        Panel("Active persona over time", "Personas making LLM calls in each interval.",
              (Target(f"{rate(c.LLM_REQUESTS, 'persona')} > 0", "{{persona}}"),),
              kind="state-timeline"),
        Panel("Cost by persona and model", "USD spent in the time range, by persona and "
              "model (priced offline; unpriced calls add nothing).",
              (Target(f"sum by (persona, model) (increase({m(c.PERSONA_COST)}[$__range]))",
                      instant=True),), kind="table", unit="currencyUSD"),
        Panel("Cost rate", "USD per hour by persona, from the last rate interval.",
              (Target(f"{rate(c.PERSONA_COST, 'persona')} * 3600", "{{persona}}"),),
              unit="currencyUSD", stack=True),
        Panel("USD budget limit vs used", "USD budget and the most any process (process "
              "scope) or last execution (workflow scope) has used of it.",
              (Target(f"max by (persona, scope) ({m(c.COST_BUDGET_LIMIT)})",
                      "limit {{persona}} ({{scope}})"),
               Target(f"max by (persona, scope) ({usd_used})", "used {{persona}} ({{scope}})")),
              unit="currencyUSD"),
        Panel("Unpriced LLM calls", "LLM calls per second with usage but no known price "
              "(their cost is missing from the panels above).",
              (Target(rate(c.LLM_COST_UNPRICED, "persona, model"), "{{persona}} {{model}}"),),
              unit="ops"),
        Panel("Persona stint p95", "95th percentile of how long a persona acts before "
              "another takes over.",
              (Target(quantile(0.95, c.PERSONA_DURATION, "persona"), "{{persona}}"),), unit="s"),
    ])


def workflow_performance() -> dict[str, Any]:
    failures = "~" + "|".join(s for s in c.RUN_STATUSES if s != "ok")
    pass_rate = (f"{rate(c.QUALITY_GATE, 'workflow, stage, gate', result='pass')}\n"
                 f"  / {rate(c.QUALITY_GATE, 'workflow, stage, gate')}")
    slowest = (f"topk(10, {quantile(0.95, c.STAGE_DURATION, 'workflow, stage', '$__range')})")
    return dashboard("hypertool-workflow-performance", "hypertool / Workflow Performance",
                     "Where the work goes: workflows, stages and quality gates.", [
        Panel("Workflow throughput", "Workflow executions finished per second, by status.",
              (Target(rate(c.WORKFLOW_DURATION, "workflow, status", "_count"),
                      "{{workflow}} {{status}}"),), unit="ops", stack=True),
        latency("Workflow duration", "p50 and p95 duration of workflow executions by status.",
                c.WORKFLOW_DURATION, "workflow, status", "{{workflow}} {{status}}"),
        latency("Stage duration", "p50 and p95 duration of each workflow stage.",
                c.STAGE_DURATION, "workflow, stage", "{{workflow}}/{{stage}}"),
        Panel("Slowest stages", "The ten stages with the highest p95 duration in the range.",
              (Target(slowest, "{{workflow}}/{{stage}}", instant=True),), kind="bargauge",
              unit="s"),
        Panel("Quality gate pass rate", "Share of gate results that passed, by stage and gate.",
              (Target(pass_rate, "{{workflow}}/{{stage}} {{gate}}"),), unit="percentunit"),
        Panel("Failed gates", "Failed quality-gate results per interval.",
              (Target(f"sum by (workflow, stage, gate) (increase("
                      f"{m(c.QUALITY_GATE, result='fail')}[{RATE}]))",
                      "{{workflow}}/{{stage}} {{gate}}"),)),
        Panel("Workflow errors, cancels, evictions", "Executions per second that ended in "
              "error, were cancelled, or were evicted unfinished.",
              (Target(rate(c.WORKFLOW_DURATION, "workflow, status", "_count", status=failures),
                      "{{workflow}} {{status}}"),), unit="ops"),
    ])


def llm_and_tools() -> dict[str, Any]:
    return dashboard("hypertool-llm-tools", "hypertool / LLM & Tools",
                     "Models and tools: latency, errors, tokens, and the plugin's own health.", [
        latency("LLM latency", "p50 and p95 LLM call latency by model.",
                c.LLM_DURATION, "model", "{{model}}"),
        latency("Time to first token", "p50 and p95 time to the first streamed token by "
                "model.", c.LLM_FIRST_TOKEN, "model", "{{model}}"),
        Panel("LLM requests by status", "LLM calls per second by model and status.",
              (Target(rate(c.LLM_REQUESTS, "model, status"), "{{model}} {{status}}"),),
              unit="ops", stack=True),
        Panel("Tokens by type", "Tokens per second by model and token type.",
              (Target(rate(c.PERSONA_TOKENS, "model, token_type"), "{{model}} {{token_type}}"),),
              stack=True),
        Panel("Calls without usage", "LLM calls per second that reported no token usage.",
              (Target(rate(c.LLM_USAGE_MISSING, "model, persona"), "{{model}} {{persona}}"),),
              unit="ops"),
        Panel("Tool calls", "Tool calls per second by tool, persona and status.",
              (Target(rate(c.TOOL_CALLS, "tool, persona, status"),
                      "{{tool}} {{persona}} {{status}}"),), unit="ops", stack=True),
        Panel("Tool failures", "Tool calls per second that raised, by tool and persona.",
              (Target(rate(c.TOOL_CALLS, "tool, persona", status="error"),
                      "{{tool}} {{persona}}"),), unit="ops"),
        latency("Tool latency", "p50 and p95 tool call latency by tool.",
                c.TOOL_DURATION, "tool", "{{tool}}"),
        Panel("Events dropped", "Framework events hypertool could not use, per second.",
              (Target(rate(c.EVENTS_DROPPED, "reason"), "{{reason}}"),), unit="ops", width=8),
        Panel("Internal errors", "Failures inside hypertool-callbacks (swallowed), per second.",
              (Target(rate(c.INTERNAL_ERRORS, "component"), "{{component}}"),), unit="ops",
              width=8),
        Panel("Langfuse export failures", "Span batches Langfuse did not accept, per second.",
              (Target(rate(c.LANGFUSE_EXPORT_FAILURES, "reason"), "{{reason}}"),), unit="ops",
              width=8),
    ])


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "persona-overview": persona_overview,
    "workflow-performance": workflow_performance,
    "llm-and-tools": llm_and_tools,
}


def dashboard_files() -> dict[str, str]:
    """Relative path -> JSON text of every dashboard."""
    return {f"dashboards/{name}.json": json.dumps(build(), indent=2) + "\n"
            for name, build in DASHBOARDS.items()}
