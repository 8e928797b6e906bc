"""An ordinary multi-agent app that knows nothing about hypertool-callbacks.

A supervisor hands a question to a ``researcher`` agent (offline fake models, so it runs
anywhere). It uses only LangChain/LangGraph and the OpenTelemetry API for its own request span.
Run it under ``opentelemetry-instrument`` to get hypertool's spans with no code change.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph_supervisor import create_supervisor
from opentelemetry import trace


class ScriptedModel(FakeMessagesListChatModel):
    """Replays canned replies; accepts tools like a real chat model."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


def say(content: str, tokens: tuple[int, int], call: str | None = None,
        args: dict[str, Any] | None = None) -> AIMessage:
    calls = [{"name": call, "args": args or {}, "id": f"call_{call}"}] if call else []
    return AIMessage(content=content, tool_calls=calls, usage_metadata={
        "input_tokens": tokens[0], "output_tokens": tokens[1],
        "total_tokens": tokens[0] + tokens[1]})


@tool
def web_search(query: str = "agents") -> str:
    """Search the web."""
    return f"3 results for {query}"


def build() -> Any:
    researcher = create_agent(ScriptedModel(responses=[
        say("", (60, 10), "web_search", {"query": "otel"}),
        say("Found three sources.", (140, 35))]), [web_search], name="researcher")
    supervisor = ScriptedModel(responses=[
        say("", (50, 8), "transfer_to_researcher"),
        say("Here is the answer.", (120, 12))])
    return create_supervisor([researcher], model=supervisor).compile(name="research-team")


def main() -> None:
    app = build()
    with trace.get_tracer("otel_team_app").start_as_current_span("handle_request"):
        result = app.invoke({"messages": [("user", "what is OpenTelemetry?")]})
    print(result["messages"][-1].content)


if __name__ == "__main__":
    main()
