"""Demo workflow: plan -> implement -> test -> review (gate) -> release, five personas.

Personas come from configuration (node rules) and from the implementing agent's own name;
the review gate fails on the first attempt and passes on the second, looping back to
``implement``. Fake chat models report token usage, so everything runs offline.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from hypertool_callbacks.config import Config
from hypertool_callbacks.demo.fakes import ToolCallingFake, ai

WORKFLOW = "software-delivery"

CONFIG = Config.model_validate({
    "personas": {
        "planner": {"nodes": ["plan"]},
        "backend-engineer": {"budget_tokens": 600, "budget_scope": "workflow"},
        "qa-engineer": {"nodes": ["test"], "tools": ["run_tests"]},
        "reviewer": {"prompt_keywords": ["senior code reviewer"], "budget_tokens": 50_000,
                     "budget_scope": "process", "budget_window_seconds": 3600},
        "release-manager": {"nodes": ["release"]},
    },
    # The fake chat models have no real price: a [prices] override gives the demo's cost
    # metrics something to show (USD per million tokens, gpt-4o's list price).
    "prices": {"fake-messages-list-chat-model": {"input_mtok": 2.5, "output_mtok": 10.0,
                                                 "cache_read_mtok": 1.25}},
})


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    attempts: Annotated[int, operator.add]
    review: str


@tool
def write_code(path: str = "app.py") -> str:
    """Write the implementation to a file."""
    return f"wrote {path}"


@tool
def run_linter(path: str = "app.py") -> str:
    """Lint a file."""
    return "0 issues"


@tool
def run_tests(suite: str = "unit") -> str:
    """Run a test suite."""
    return f"{suite}: 42 passed"


def _llm(system: str, replies: list[BaseMessage]) -> Runnable[dict[str, Any], Any]:
    prompt = ChatPromptTemplate.from_messages([("system", system), ("user", "{task}")])
    return prompt | FakeMessagesListChatModel(responses=replies)


def build() -> Any:
    """The compiled delivery graph (fresh fake models each call)."""
    planner = _llm("You are the planner. Break the task into steps.",
                   [ai("1. API 2. tests 3. docs", 120, 40)])
    engineer = create_agent(
        ToolCallingFake(responses=[
            ai("", 150, 30, calls=[("write_code", {"path": "api.py"}),
                                   ("run_linter", {"path": "api.py"})]),
            ai("Implemented the API.", 210, 60),
        ]),
        [write_code, run_linter],
        system_prompt="You are a backend engineer.",
        name="backend-engineer",
    )
    qa = _llm("You are QA. Decide which suites to run.", [ai("run unit and integration", 90, 20)])
    reviewer = _llm("You are a senior code reviewer. Answer PASS or FAIL with a reason.",
                    [ai("FAIL: missing error handling", 300, 25), ai("PASS", 320, 5)])
    releaser = _llm("You prepare the release notes.", [ai("v1.0.0: new API", 80, 30)])

    def plan(state: State) -> State:
        return {"messages": [planner.invoke({"task": "build the orders API"})]}

    def implement(state: State) -> State:
        # The engineer is a named agent called inside the node: its persona is its name.
        result = engineer.invoke(
            {"messages": [HumanMessage("implement the plan")]})  # type: ignore[call-overload]
        return {"messages": [result["messages"][-1]]}

    def test(state: State) -> State:
        qa.invoke({"task": "plan the test run"})
        result = run_tests.invoke({"suite": "unit"})
        return {"messages": [AIMessage(content=str(result))]}

    def review(state: State) -> State:
        verdict = reviewer.invoke({"task": "review the change"})
        return {"review": str(verdict.content), "attempts": 1}

    def release(state: State) -> State:
        return {"messages": [releaser.invoke({"task": "write release notes"})]}

    def after_review(state: State) -> str:
        return "release" if state.get("review", "").startswith("PASS") else "implement"

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("implement", implement)
    graph.add_node("test", test)
    graph.add_node("review", review, metadata={"hypertool_gate": "code-review"})
    graph.add_node("release", release)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "implement")
    graph.add_edge("implement", "test")
    graph.add_edge("test", "review")
    graph.add_conditional_edges("review", after_review, ["implement", "release"])
    graph.add_edge("release", END)
    return graph.compile(name=WORKFLOW)


def run_once(app: Any, callbacks: list[Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"callbacks": callbacks} if callbacks else {}
    result: dict[str, Any] = app.invoke(
        {"messages": [("user", "build the orders API")]}, config=config)
    return result
