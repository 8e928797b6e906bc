"""The one place metric names, types, labels, help texts and buckets exist.

The Prometheus sink builds its metrics from this; dashboards, alert rules, the README table
and the tests read it too, so none of them can drift from what is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]

# LLM calls take from tens of milliseconds to minutes.
LLM_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FIRST_TOKEN_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOOL_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Personas, stages and workflows act for seconds to an hour.
WORK_SECONDS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

# Closed label values (tests check the emitting code agrees with each of these).
RUN_STATUSES = ("ok", "error", "cancelled", "evicted")
LLM_STATUSES = ("ok", "error", "cancelled", "refused", "evicted")
TOKEN_TYPES = ("input", "output", "input_estimated", "output_estimated")
TOKEN_DETAILS = ("cache_read", "cache_creation", "reasoning")
GATE_RESULTS = ("pass", "fail")
BUDGET_SCOPES = ("workflow", "process")
COST_USAGE = ("reported", "estimated")
DROP_REASONS = ("unknown_run", "duplicate_run", "evicted", "unknown_parent")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric as exposed to Prometheus (``name`` is the full exposed name)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # How multiprocess mode merges a gauge across processes.
    multiprocess_mode: str = "mostrecent"
    # Every value the exporter can emit for a closed label, as (label, values) pairs: rules
    # and dashboards are checked against these, so a query for a value never emitted fails.
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def base_name(self) -> str:
        """The name prometheus_client wants (counters get ``_total`` appended by it)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def allowed(self, label: str) -> tuple[str, ...] | None:
        """The values ``label`` can take, or None when it is open (names, models, ...)."""
        if label not in self.labels:
            raise KeyError(f"{self.name} has no label {label!r} (labels: {self.labels})")
        return dict(self.values).get(label)


PERSONA_SWITCHES = MetricSpec(
    "hypertool_persona_switches_total", "counter",
    "Times the acting persona of a workflow execution changed (never from/to 'unknown').",
    ("from_persona", "to_persona", "workflow"))
PERSONA_DURATION = MetricSpec(
    "hypertool_persona_duration_seconds", "histogram",
    "Time a persona acted before another took over or the execution ended.",
    ("persona", "workflow"), WORK_SECONDS)
PERSONA_HANDOFFS = MetricSpec(
    "hypertool_persona_handoffs_total", "counter",
    "Handoffs between agents (transfer_to_<agent> tools, Command(goto=...)).",
    ("from_persona", "to_persona", "workflow"))
PERSONA_TOKENS = MetricSpec(
    "hypertool_persona_tokens_used_total", "counter",
    "Tokens used by LLM calls; token_type input|output, or input_estimated|output_estimated "
    "when estimation of missing usage is enabled.",
    ("persona", "model", "token_type"), values=(("token_type", TOKEN_TYPES),))
PERSONA_TOKEN_DETAILS = MetricSpec(
    "hypertool_persona_token_details_total", "counter",
    "Subsets of the used tokens: cache_read and cache_creation (of input), reasoning (of "
    "output). Do not add these to hypertool_persona_tokens_used_total.",
    ("persona", "model", "detail"), values=(("detail", TOKEN_DETAILS),))
# scope: workflow (each execution starts full) or process (this process, since start or over a
# window). Neither is a fleet-wide budget: see the README for the fleet math.
_SCOPE = (("scope", BUDGET_SCOPES),)
BUDGET_LIMIT = MetricSpec(
    "hypertool_persona_token_budget_limit", "gauge",
    "Configured token budget of a persona, per execution (scope workflow) or per process "
    "(scope process).", ("persona", "scope"), multiprocess_mode="max", values=_SCOPE)
BUDGET_REMAINING = MetricSpec(
    "hypertool_persona_token_budget_remaining", "gauge",
    "Tokens left in a persona's budget (scope workflow: in the execution that last used it; "
    "process: in this process); negative when overrun.", ("persona", "scope"), values=_SCOPE)
BUDGET_EXCEEDED = MetricSpec(
    "hypertool_persona_token_budget_exceeded_total", "counter",
    "LLM calls that started while the persona's budget was already spent.",
    ("persona", "scope"), values=_SCOPE)
PERSONA_COST = MetricSpec(
    "hypertool_persona_cost_usd_total", "counter",
    "Cost of LLM calls in USD, priced offline (genai-prices data or [prices] overrides); usage "
    "reported, or estimated when priced from estimate_missing_usage.",
    ("persona", "model", "usage"), values=(("usage", COST_USAGE),))
LLM_COST_UNPRICED = MetricSpec(
    "hypertool_llm_cost_unpriced_total", "counter",
    "LLM calls with usage but no known price for their model (no cost was added for them).",
    ("persona", "model"))
COST_BUDGET_LIMIT = MetricSpec(
    "hypertool_persona_cost_budget_limit_usd", "gauge",
    "Configured USD budget of a persona, per execution (scope workflow) or per process "
    "(scope process).", ("persona", "scope"), multiprocess_mode="max", values=_SCOPE)
COST_BUDGET_REMAINING = MetricSpec(
    "hypertool_persona_cost_budget_remaining_usd", "gauge",
    "USD left in a persona's budget (scope workflow: in the execution that last used it; "
    "process: in this process); negative when overrun.", ("persona", "scope"), values=_SCOPE)
COST_BUDGET_EXCEEDED = MetricSpec(
    "hypertool_persona_cost_budget_exceeded_total", "counter",
    "LLM calls that started while the persona's USD budget was already spent.",
    ("persona", "scope"), values=_SCOPE)
STAGE_DURATION = MetricSpec(
    "hypertool_workflow_stage_duration_seconds", "histogram",
    "Duration of a workflow stage; persona is the first persona whose LLM or tool call ran in "
    "it.",
    ("workflow", "stage", "persona"), WORK_SECONDS)
QUALITY_GATE = MetricSpec(
    "hypertool_workflow_quality_gate_total", "counter",
    "Quality gate results (result pass|fail).", ("workflow", "stage", "gate", "result"),
    values=(("result", GATE_RESULTS),))
QUALITY_GATE_UNRECOGNISED = MetricSpec(
    "hypertool_workflow_quality_gate_unrecognised_total", "counter",
    "Quality gate runs whose output matched neither the pass nor the fail rule (see "
    "gate_pass_words/gate_fail_words); not in hypertool_workflow_quality_gate_total.",
    ("workflow", "stage", "gate"))
QUALITY_GATE_RETRIED = MetricSpec(
    "hypertool_workflow_quality_gate_retried_total", "counter",
    "Quality gate attempts superseded by a retry of their LangGraph node (RetryPolicy); only "
    "the last attempt counts in hypertool_workflow_quality_gate_total.",
    ("workflow", "stage", "gate"))
WORKFLOW_DURATION = MetricSpec(
    "hypertool_workflow_duration_seconds", "histogram",
    "Duration of a workflow run (a root run), by status ok|error|cancelled|evicted.",
    ("workflow", "status"), WORK_SECONDS, values=(("status", RUN_STATUSES),))
LLM_REQUESTS = MetricSpec(
    "hypertool_llm_requests_total", "counter",
    "LLM calls by model, persona and status ok|error|cancelled|refused (budget spent, "
    "raise mode)|evicted.",
    ("model", "persona", "status"), values=(("status", LLM_STATUSES),))
LLM_DURATION = MetricSpec(
    "hypertool_llm_request_duration_seconds", "histogram",
    "LLM call latency.", ("model", "persona", "status"), LLM_SECONDS,
    values=(("status", LLM_STATUSES),))
LLM_FIRST_TOKEN = MetricSpec(
    "hypertool_llm_time_to_first_token_seconds", "histogram",
    "Time from the start of a streamed LLM call to its first token.",
    ("model", "persona"), FIRST_TOKEN_SECONDS)
LLM_USAGE_MISSING = MetricSpec(
    "hypertool_llm_usage_missing_total", "counter",
    "LLM calls that reported no token usage (also when estimate_missing_usage fills in).",
    ("model", "persona"))
TOOL_CALLS = MetricSpec(
    "hypertool_tool_calls_total", "counter",
    "Tool calls by tool, persona and status ok|error|cancelled|evicted.",
    ("tool", "persona", "status"), values=(("status", RUN_STATUSES),))
TOOL_DURATION = MetricSpec(
    "hypertool_tool_duration_seconds", "histogram",
    "Tool call latency.", ("tool", "persona"), TOOL_SECONDS)
EVENTS_DROPPED = MetricSpec(
    "hypertool_events_dropped_total", "counter",
    "Framework events hypertool could not use (unknown_run, duplicate_run, evicted; "
    "unknown_parent: tracked as a root because its parent was never seen).",
    ("reason",), values=(("reason", DROP_REASONS),))
INTERNAL_ERRORS = MetricSpec(
    "hypertool_internal_errors_total", "counter",
    "Failures inside hypertool-callbacks, swallowed so the application is not affected.",
    ("component",))
LANGFUSE_EXPORT_FAILURES = MetricSpec(
    "hypertool_langfuse_export_failures_total", "counter",
    "Batches of spans the Langfuse exporter failed to deliver.", ("reason",))

CATALOG: tuple[MetricSpec, ...] = (
    PERSONA_SWITCHES, PERSONA_DURATION, PERSONA_HANDOFFS, PERSONA_TOKENS, PERSONA_TOKEN_DETAILS,
    BUDGET_LIMIT, BUDGET_REMAINING, BUDGET_EXCEEDED, PERSONA_COST, LLM_COST_UNPRICED,
    COST_BUDGET_LIMIT, COST_BUDGET_REMAINING, COST_BUDGET_EXCEEDED, STAGE_DURATION, QUALITY_GATE,
    QUALITY_GATE_UNRECOGNISED, QUALITY_GATE_RETRIED,
    WORKFLOW_DURATION, LLM_REQUESTS, LLM_DURATION, LLM_FIRST_TOKEN, LLM_USAGE_MISSING,
    TOOL_CALLS, TOOL_DURATION, EVENTS_DROPPED, INTERNAL_ERRORS, LANGFUSE_EXPORT_FAILURES,
)


def markdown_table() -> str:
    """The README's metric table, generated so the docs cannot drift."""
    rows = ["| metric | type | labels | description |", "|---|---|---|---|"]
    for spec in CATALOG:
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        description = spec.help.replace("|", "\\|")  # a bare | would split the cell
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {description} |")
    return "\n".join(rows)
