"""Issue 14 item 15: how a workflow gets its name (the ``workflow`` label)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from tests.test_multiagent import series

WORKFLOWS = "hypertool_workflow_duration_seconds_count"


def _chain() -> Any:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    return prompt | FakeListChatModel(responses=["a"] * 10)


def _graph(name: str | None) -> Any:
    model = FakeListChatModel(responses=["a"] * 10)

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(name=name) if name else graph.compile()


def test_every_documented_way_of_naming_a_workflow(
    make_tracker: Callable[..., Tracker], registry: CollectorRegistry,
) -> None:
    handler = HypertoolCallbackHandler(make_tracker())
    cb: RunnableConfig = {"callbacks": [handler]}
    chain = _chain()
    chain.invoke({"q": "x"}, config=cb)  # unnamed: the root runnable's class name
    chain.with_config(run_name="nightly-report").invoke({"q": "x"}, config=cb)
    chain.invoke({"q": "x"}, config={**cb, "run_name": "adhoc-report"})
    chain.invoke({"q": "x"}, config={**cb, "tags": ["workflow:tagged"]})
    chain.invoke({"q": "x"}, config={**cb, "metadata": {"hypertool_workflow": "by-metadata"}})
    _graph("support-bot").invoke({"messages": [("user", "hi")]}, config=cb)
    _graph(None).invoke({"messages": [("user", "hi")]}, config=cb)
    # An explicit name beats the run name.
    chain.with_config(run_name="ignored").invoke(
        {"q": "x"}, config={**cb, "tags": ["workflow:explicit"]})

    assert series(registry, WORKFLOWS, "workflow") == {
        ("RunnableSequence",): 1, ("nightly-report",): 1, ("adhoc-report",): 1,
        ("tagged",): 1, ("by-metadata",): 1, ("support-bot",): 1, ("LangGraph",): 1,
        ("explicit",): 1,
    }
