"""Offline chat models for the demo (and the tests): scripted replies with token usage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage


def ai(content: str, input_tokens: int | None, output_tokens: int = 0,
       calls: Sequence[tuple[str, dict[str, Any]]] = ()) -> AIMessage:
    """A reply with optional tool calls ``[(name, args)]`` and, unless ``input_tokens`` is
    None, usage metadata."""
    usage = None if input_tokens is None else {
        "input_tokens": input_tokens, "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens}
    return AIMessage(
        content=content,
        tool_calls=[{"name": name, "args": args, "id": f"call_{i}_{name}"}
                    for i, (name, args) in enumerate(calls)],
        usage_metadata=usage,
    )


class ToolCallingFake(FakeMessagesListChatModel):
    """A fake chat model agents can use: ``bind_tools`` returns the model itself."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:  # type: ignore[override]
        return self
