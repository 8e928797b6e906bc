"""A scripted LangGraph team for the live Prometheus/Alertmanager tests.

plan (planner) -> code (coder) -> review (reviewer, gate code-review) -> code again -> review
-> release (releaser). The first review fails, the second passes. Per execution the coder
overruns its workflow-scope budget, a tool raises, one LLM call raises and one streamed call
reports no usage; the reviewer slowly spends a process-scope budget; two executions end in an
error.

Usage: python team_workload.py STATE_DIR ITERATIONS INTERVAL
Writes STATE_DIR/port once /metrics is served, starts when STATE_DIR/go exists, and writes
STATE_DIR/truth.json (what the script did, counted by the script itself, not by hypertool)
when done; then keeps serving until killed.
"""

from __future__ import annotations

import json
import operator
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_core.outputs import LLMResult
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config, OtelSettings
from hypertool_callbacks.exposition import serve_metrics
from hypertool_callbacks.wiring import build_tracker

WORKFLOW = "delivery"
PERSONA_OF_NODE = {"plan": "planner", "code": "coder", "review": "reviewer",
                   "release": "releaser"}
# (input, output) tokens of each scripted LLM call, by node.
CALLS = {"plan": [(100, 20)], "code": [(150, 50), (100, 20)], "review": [(120, 10)],
         "release": [(60, 30)]}
CACHE_READ = {"plan": 40}
UNPRICED = (10, 5)
PRICED_MODEL = "fake-messages-list-chat-model"
USD_PER_TOKEN = (0.001, 0.002)  # input, output


class Truth:
    def __init__(self) -> None:
        self.tokens: Counter[str] = Counter()
        self.switches: Counter[str] = Counter()
        self.gates: Counter[str] = Counter()
        self.handoffs: Counter[str] = Counter()
        self.cost: Counter[str] = Counter()
        self.llm_errors = 0
        self.tool_errors = 0
        self.executions = 0
        self.workflow_errors = 0
        self.path: list[str] = []

    def visit(self, node: str) -> None:
        persona = PERSONA_OF_NODE[node]
        if self.path and self.path[-1] != persona:
            self.switches[f"{self.path[-1]}->{persona}"] += 1
        self.path.append(persona)


def _usage(tokens: tuple[int, int], cache_read: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": tokens[0], "output_tokens": tokens[1],
                             "total_tokens": sum(tokens)}
    if cache_read:  # a subset of the input tokens
        usage["input_token_details"] = {"cache_read": cache_read}
    return usage


class State(TypedDict, total=False):
    attempts: Annotated[int, operator.add]
    verdict: str


@tool
def deploy_preview(branch: str = "main") -> str:
    """Deploy a preview environment (always down in this script)."""
    raise RuntimeError("preview cluster unreachable")


class _Unpriced(FakeMessagesListChatModel):
    """A model no price is known for (genai-prices has none, the config sets none)."""

    @property
    def _llm_type(self) -> str:
        return "in-house-model"


class _Failing(FakeMessagesListChatModel):
    """A provider outage: every call raises."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("provider returned 503")


def build(truth: Truth, failing: tuple[int, ...]) -> Any:
    def llm(node: str) -> None:
        for tokens in CALLS[node]:
            model = FakeMessagesListChatModel(responses=[
                AIMessage(content="PASS" if node == "review" else "ok",
                          usage_metadata=_usage(tokens, CACHE_READ.get(node, 0)))])
            model.invoke("work")
            persona = PERSONA_OF_NODE[node]
            truth.tokens[f"{persona}/input"] += tokens[0]
            truth.tokens[f"{persona}/output"] += tokens[1]
            truth.cost[persona] += tokens[0] * USD_PER_TOKEN[0] + tokens[1] * USD_PER_TOKEN[1]

    def plan(state: State) -> State:
        truth.visit("plan")
        llm("plan")
        return {}

    def code(state: State) -> Command[Any]:
        truth.visit("code")
        llm("code")
        try:
            deploy_preview.invoke({"branch": "feature"})
        except RuntimeError:
            truth.tool_errors += 1
        truth.handoffs["coder->reviewer"] += 1
        return Command(goto="review")

    def review(state: State) -> State:
        truth.visit("review")
        llm("review")
        verdict = "FAIL: missing tests" if not state.get("attempts") else "PASS"
        truth.gates["fail" if verdict.startswith("FAIL") else "pass"] += 1
        return {"verdict": verdict, "attempts": 1}

    def release(state: State) -> State:
        truth.visit("release")
        llm("release")
        _Unpriced(responses=[AIMessage(content="ok", usage_metadata=_usage(UNPRICED))]).invoke(
            "notes")  # type: ignore[arg-type]
        truth.tokens["releaser/input"] += UNPRICED[0]
        truth.tokens["releaser/output"] += UNPRICED[1]
        try:
            _Failing(responses=[AIMessage(content="never")]).invoke("notes")
        except RuntimeError:
            truth.llm_errors += 1
        # Streamed: a first token, and no usage reported (GenericFakeChatModel drops it).
        for _ in GenericFakeChatModel(messages=iter([AIMessage(content="v1 notes")])).stream(
                "notes"):
            pass
        if truth.executions in failing:  # a series born at 1, then a second error
            raise RuntimeError("release pipeline failed")
        return {}

    graph = StateGraph(State)
    for name, fn in (("plan", plan), ("code", code), ("review", review), ("release", release)):
        graph.add_node(name, fn)  # type: ignore[call-overload]
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "code")
    graph.add_conditional_edges(
        "review", lambda s: "release" if s.get("verdict") == "PASS" else "code",
        ["code", "release"])
    graph.add_edge("release", END)
    return graph.compile(name=WORKFLOW)


CONFIG = {
    "personas": {
        "planner": {"nodes": ["plan"]},
        "coder": {"nodes": ["code"], "budget_tokens": 300, "budget_usd": 0.5,
                  "budget_scope": "workflow"},
        "reviewer": {"nodes": ["review"], "budget_tokens": 1000, "budget_scope": "process"},
        "releaser": {"nodes": ["release"]},
    },
    "gates": {"code-review": {"nodes": ["review"]}},
    # USD per million tokens: $0.001 per input token, $0.002 per output token.
    "prices": {PRICED_MODEL: {"input_mtok": USD_PER_TOKEN[0] * 1e6,
                              "output_mtok": USD_PER_TOKEN[1] * 1e6}},
}


def main() -> None:
    state, iterations, interval = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    config = Config.model_validate(CONFIG).model_copy(update={"otel": OtelSettings(
        enabled=True, jsonl_path=str(state / "spans.jsonl"))})
    tracker = build_tracker(config)
    handler = HypertoolCallbackHandler(tracker)
    server, _ = serve_metrics(0)
    (state / "port").write_text(str(server.server_port))
    while not (state / "go").exists():
        time.sleep(0.05)
    truth, app = Truth(), None
    for _ in range(iterations):
        app = build(truth, (1, iterations - 2))
        truth.path = []
        try:
            app.invoke({}, config={"callbacks": [handler]})
        except RuntimeError:
            truth.workflow_errors += 1
        truth.executions += 1
        # A framework event for a run hypertool never saw (counted as dropped, not raised).
        handler.on_llm_end(LLMResult(generations=[]), run_id=uuid.uuid4())
        time.sleep(interval)
    (state / "truth.json").write_text(json.dumps({
        "tokens": truth.tokens, "switches": truth.switches, "gates": truth.gates,
        "handoffs": truth.handoffs, "workflow_errors": truth.workflow_errors,
        "cost": truth.cost,
        "llm_errors": truth.llm_errors, "tool_errors": truth.tool_errors,
        "executions": truth.executions}))
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
