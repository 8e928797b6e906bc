"""``alerts/RUNBOOK.md``: one section per generated alert (its ``runbook_url`` anchor).

The investigation queries go through :func:`hypertool_callbacks.promql.sel` like the rules,
so the runbook cannot tell anyone to query a label value the exporter never emits.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypertool_callbacks import catalog as c
from hypertool_callbacks.alerts import DEFAULTS, AlertSettings, alerts
from hypertool_callbacks.promql import sel


@dataclass(frozen=True, slots=True)
class Entry:
    meaning: str
    queries: tuple[str, ...]
    causes: tuple[str, ...]
    fixes: tuple[str, ...]


def _entries(s: AlertSettings) -> dict[str, Entry]:
    w = s.window
    return {
        "TokenBudgetExceeded": Entry(
            "LLM calls of a persona started while its token budget was already spent. With "
            "`scope=\"workflow\"` one execution overran its per-execution budget; with "
            "`scope=\"process\"` a process used up the persona's budget (since start or in "
            "its window). Budgets are per execution or per process, never fleet-wide.",
            (f"sum by (persona, scope, instance) (increase({sel(c.BUDGET_EXCEEDED)}[{w}]))",
             f"min by (persona, scope) ({sel(c.BUDGET_REMAINING)})",
             "sum by (persona, model) (rate("
             f"{sel(c.PERSONA_TOKENS, token_type='~input|output')}[{w}]))"),
            ("a loop (gate failing, ping-pong between personas) re-running the persona",
             "longer inputs than planned (retrieved context, growing message history)",
             "a budget set below what the task needs"),
            ("look for `HighQualityGateFailureRate` / `PersonaPingPong` on the same workflow",
             "trim the context the persona receives, or raise `budget_tokens`",
             "to stop calls instead of counting them: `on_budget_exceeded = \"raise\"`")),
        "CostBudgetExceeded": Entry(
            "LLM calls of a persona started while its USD budget (`budget_usd`) was already "
            "spent, per execution (`scope=\"workflow\"`) or per process (`scope=\"process\"`)."
            " Cost is priced offline when each call ends; unpriced calls add nothing.",
            (f"sum by (persona, scope, instance) (increase({sel(c.COST_BUDGET_EXCEEDED)}[{w}]))",
             f"min by (persona, scope) ({sel(c.COST_BUDGET_REMAINING)})",
             f"sum by (persona, model) (rate({sel(c.PERSONA_COST)}[{w}])) * 3600"),
            ("a switch to a pricier model (the `model` label of the cost counter)",
             "the same loops that overrun token budgets", "a budget below the task's cost"),
            ("compare cost per model before and after the last deployment",
             "raise `budget_usd`, or `on_budget_exceeded = \"raise\"` to stop the calls")),
        "TokenBudgetDepletionPredicted": Entry(
            "A process-scope budget is still positive but, at the trend of the last "
            f"{s.depletion_lookback}, will be spent within {s.depletion_horizon_seconds} s on "
            "that instance. Workflow-scope budgets reset per execution and are not predicted.",
            (f"{sel(c.BUDGET_REMAINING, scope='process')}",
             f"deriv({sel(c.BUDGET_REMAINING, scope='process')}[{s.depletion_lookback}])"),
            ("traffic growth", "a persona using more tokens per call than before"),
            ("raise the budget or shorten `budget_window_seconds` before it runs out",
             "spread work over more processes")),
        "HighQualityGateFailureRate": Entry(
            "More than the threshold share of a quality gate's results were `fail` in the "
            "window (and the gate ran often enough to judge).",
            (f"sum by (workflow, stage, gate, result) (increase({sel(c.QUALITY_GATE)}[{w}]))",
             f"sum by (workflow, stage) (rate({sel(c.STAGE_DURATION, '_count')}[{w}]))"),
            ("the producing persona regressed (model change, prompt change)",
             "the gate's verdict parsing: a reviewer answering `Not approved` counts as fail",
             "a stricter gate than the work can meet"),
            ("read the failing runs' spans or Langfuse traces (filter `hypertool.gate.result`)",
             "roll back the last model or prompt change of the persona before the gate")),
        "ExcessivePersonaSwitching": Entry(
            "Executions of a workflow switch the acting persona more often than the threshold "
            "on average: the team is thrashing instead of progressing.",
            (f"sum by (workflow, from_persona, to_persona) (increase({sel(c.PERSONA_SWITCHES)}"
             f"[{w}]))",
             f"sum by (workflow, status) (increase({sel(c.WORKFLOW_DURATION, '_count')}[{w}]))"),
            ("a supervisor re-delegating without making progress", "a gate failing repeatedly",
             "parallel branches (each branch alternates the acting persona, by design)"),
            ("cap the supervisor's turns (LangGraph `recursion_limit`)",
             "check the transition matrix on the Persona Overview dashboard")),
        "PersonaPingPong": Entry(
            "Two personas hand work to each other in both directions (A->B and B->A) at least "
            "the threshold number of times in the window: an A->B->A loop. It fires once per "
            "direction.",
            (f"sum by (workflow, from_persona, to_persona) (increase({sel(c.PERSONA_SWITCHES)}"
             f"[{w}]))",
             f"sum by (workflow, from_persona, to_persona) (increase({sel(c.PERSONA_HANDOFFS)}"
             f"[{w}]))"),
            ("an implement/review loop whose gate never passes",
             "two agents each deciding the other should answer"),
            ("bound the loop (attempt counter in the graph state)",
             "make the handoff condition stricter for one side")),
        "SlowWorkflowStage": Entry(
            "The p95 duration of a workflow stage is above the threshold.",
            (f"histogram_quantile(0.95, sum by (le, workflow, stage, persona) "
             f"(rate({sel(c.STAGE_DURATION, '_bucket')}[{w}])))",
             f"histogram_quantile(0.95, sum by (le, model) "
             f"(rate({sel(c.LLM_DURATION, '_bucket')}[{w}])))",
             f"histogram_quantile(0.95, sum by (le, tool) "
             f"(rate({sel(c.TOOL_DURATION, '_bucket')}[{w}])))"),
            ("a slow model or provider (LLM latency)", "a slow tool", "more LLM calls per stage"),
            ("follow the exemplars on the latency panels to a slow trace",
             "set timeouts on the tool or model client")),
        "HypertoolMetricsNotReported": Entry(
            f"Prometheus cannot scrape job `{s.job}` (`up == 0`: the process died or its "
            "metrics port is closed; `absent(up)`: no such target any more), or a target is "
            "up but exposes no hypertool series (every active hypertool-callbacks process "
            "exports `hypertool_events_dropped_total` from the start, at 0).",
            (f'up{{job="{s.job}"}}',
             f"count by (instance) ({sel(c.EVENTS_DROPPED, job=s.job)})"),
            ("the application crashed or was scaled to zero",
             "`HYPERTOOL_METRICS_PORT` / `serve_metrics` not set in the new deployment",
             "the scrape config's job name differs from the rules' (`--set job=...`)"),
            ("check the process and `curl http://HOST:PORT/metrics`",
             "regenerate the rules with your job name")),
        "LangfuseIntegrationFailing": Entry(
            "Batches of spans could not be delivered to Langfuse; the app is unaffected, the "
            "traces are lost.",
            (f"sum by (instance, reason) (increase({sel(c.LANGFUSE_EXPORT_FAILURES)}[{w}]))",),
            ("`reason=\"http_401\"`: wrong keys", "`connection` / `timeout`: server down or "
             "unreachable", "`http_5xx`: the server is failing"),
            ("check `LANGFUSE_PUBLIC_KEY` / `LANGFUSE_SECRET_KEY` / `LANGFUSE_BASE_URL`",
             "check the Langfuse server's health and ingestion queue")),
        "HighLLMErrorRate": Entry(
            "More than the threshold share of a model's calls ended in an error.",
            (f"sum by (model, persona, status) (increase({sel(c.LLM_REQUESTS)}[{w}]))",),
            ("provider outage or rate limiting", "a bad model name or credentials",
             "context length exceeded for one persona"),
            ("check the provider's status page and the error in the failing spans",
             "add retries with backoff (`.with_retry()`) or a fallback model")),
        "HighToolFailureRate": Entry(
            "More than the threshold share of a tool's calls raised.",
            (f"sum by (tool, persona, status) (increase({sel(c.TOOL_CALLS)}[{w}]))",),
            ("the tool's backend is down", "the model passes invalid arguments"),
            ("look at the exception recorded on the tool's span",
             "validate arguments in the tool and return an error message instead of raising")),
        "HypertoolInternalErrors": Entry(
            "hypertool-callbacks caught failures of its own (the application continued; some "
            "runs' metrics or spans are missing).",
            (f"sum by (instance, component) (increase({sel(c.INTERNAL_ERRORS)}[{w}]))",),
            ("a framework version hypertool-callbacks does not handle yet",
             "a sink's backend failing (`component=\"sink:...\"`)"),
            ("read the process log: each kind is logged once a minute with its traceback",
             "report it with the component and the framework versions")),
        "HypertoolEventsDropped": Entry(
            "Framework events could not be matched to runs (`unknown_run`, `duplicate_run`), "
            "runs were evicted before they ended (`evicted`), or parents were never seen "
            "(`unknown_parent`).",
            (f"sum by (instance, reason) (increase({sel(c.EVENTS_DROPPED)}[{w}]))",),
            ("runs that never end (raise `run_ttl_seconds`)", "more live runs than `max_runs`",
             "a second callback manager started mid-run"),
            ("raise `max_runs` / `run_ttl_seconds`", "check for leaked streams that are "
             "never consumed")),
    }


def runbook_markdown(s: AlertSettings = DEFAULTS) -> str:
    """The runbook for the rules ``s`` generates."""
    entries = _entries(s)
    out = ["# hypertool-callbacks alert runbook", "",
           "Generated with the rules (`hypertool-callbacks generate`); each alert's "
           "`runbook_url` points at its section. Every query aggregates over the fleet; add "
           "`instance` to a `by (...)` to find the process.", ""]
    for a in alerts(s):
        e = entries[a.name]
        out += [f"## {a.name}", "", f"**Severity:** {a.severity}. **Rule:**", "",
                "```promql", a.expr, "```", "", e.meaning, "", "**Investigate:**", ""]
        out += [f"- `{q}`" for q in e.queries]
        out += ["", "**Likely causes:** " + "; ".join(e.causes) + ".", "",
                "**Fixes:** " + "; ".join(e.fixes) + ".", ""]
    return "\n".join(out)
