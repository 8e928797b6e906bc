"""A small known workflow on simulated time, for the recorder, summary and plot tests.

plan (planner, 1 s) -> code (coder: 2 s LLM + 0.5 s tool) -> review (reviewer gate, 0.5 s,
streamed: first token after 0.1 s) fails once, loops back to code, then passes. The coder's
budget (400 tokens per execution) is overrun: it uses 500.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.demo.fakes import ai
from hypertool_callbacks.demo.simulated import SimulatedChat

WORKFLOW = "delivery"
CONFIG = Config.model_validate({
    "personas": {
        "planner": {"nodes": ["plan"]},
        "coder": {"nodes": ["code"], "budget_tokens": 400, "budget_scope": "workflow"},
        "reviewer": {"nodes": ["review"], "budget_tokens": 1000, "budget_scope": "workflow"},
    },
    "gates": {"code-review": {"nodes": ["review"]}},
})
# Expected results on the manual clock.
INTERVALS = [("planner", 0.0, 1.0), ("coder", 1.0, 3.5), ("reviewer", 3.5, 4.0),
             ("coder", 4.0, 6.5), ("reviewer", 6.5, 7.0)]
TOKENS = {"planner": (100, 20), "coder": (400, 100), "reviewer": (300, 20)}


class State(TypedDict, total=False):
    task: str
    verdict: str
    rounds: Annotated[int, operator.add]


def build(clock: ManualClock) -> Any:
    planner = SimulatedChat(responses=[ai("1. code 2. test", 100, 20)], clock=clock,
                            latency=1.0, model_name="sim-large")
    coder = SimulatedChat(responses=[ai("def f(): ...", 200, 50)], clock=clock, latency=2.0,
                          model_name="sim-small")
    reviewer = SimulatedChat(responses=[ai("FAIL missing tests", 150, 10), ai("PASS", 150, 10)],
                             clock=clock, latency=0.5, first_token=0.1,
                             model_name="sim-large")

    @tool
    def run_tests(suite: str = "unit") -> str:
        """Run the test suite."""
        clock.advance(0.5)
        return "3 passed"

    def plan(state: State) -> State:
        planner.invoke([HumanMessage("plan it")])
        return {}

    def code(state: State) -> State:
        coder.invoke([HumanMessage("code it")])
        run_tests.invoke({"suite": "unit"})
        return {"rounds": 1}

    def review(state: State) -> State:
        text = "".join(str(c.content) for c in reviewer.stream([HumanMessage("review it")]))
        return {"verdict": text}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("code", code)
    graph.add_node("review", review)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "code")
    graph.add_edge("code", "review")
    graph.add_conditional_edges(
        "review", lambda s: END if s.get("verdict", "").startswith("PASS") else "code",
        ["code", END])
    return graph.compile(name=WORKFLOW)
