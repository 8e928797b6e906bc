"""Demo team: a supervisor and two named agents, with no hypertool configuration at all.

Personas (``supervisor``, ``researcher``, ``writer``), handoffs and switches are all inferred
from the names the app already gives its agents.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph_supervisor import create_supervisor

from hypertool_callbacks.demo.fakes import ToolCallingFake, ai

WORKFLOW = "research-team"


@tool
def web_search(query: str = "agents") -> str:
    """Search the web."""
    return f"3 results for {query}"


@tool
def save_draft(title: str = "report") -> str:
    """Save a draft document."""
    return f"saved {title}"


def build() -> Any:
    researcher = create_agent(
        ToolCallingFake(responses=[
            ai("", 60, 10, calls=[("web_search", {"query": "LLM observability"})]),
            ai("Found three sources.", 140, 35),
        ]),
        [web_search], name="researcher", system_prompt="You research topics.")
    writer = create_agent(
        ToolCallingFake(responses=[
            ai("", 90, 15, calls=[("save_draft", {"title": "observability"})]),
            ai("Draft saved.", 160, 45),
        ]),
        [save_draft], name="writer", system_prompt="You write reports.")
    supervisor = ToolCallingFake(responses=[
        ai("", 50, 8, calls=[("transfer_to_researcher", {})]),
        ai("", 120, 8, calls=[("transfer_to_writer", {})]),
        ai("The report is ready.", 200, 12),
    ])
    return create_supervisor([researcher, writer], model=supervisor).compile(name=WORKFLOW)


def run_once(app: Any, callbacks: list[Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"callbacks": callbacks} if callbacks else {}
    result: dict[str, Any] = app.invoke(
        {"messages": [("user", "write a report on LLM observability")]}, config=config)
    return result
