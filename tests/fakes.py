"""Scripted chat models for offline tests (real langchain-core fakes, lightly extended)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from hypertool_callbacks.demo.fakes import ToolCallingFake, ai

__all__ = [
    "PricedFake",
    "PricedStreamingFake",
    "StreamingFake",
    "ToolCallingFake",
    "priced_reply",
    "reply",
    "usage",
]


def usage(inp: int, out: int, **details: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    meta.update(details)
    return meta


def reply(content: str = "", *, tokens: tuple[int, int] | None = (10, 5),
          calls: Sequence[tuple[str, dict[str, Any]]] = ()) -> AIMessage:
    """An AIMessage with optional tool calls ``[(name, args)]`` and usage ``(in, out)``."""
    return ai(content, *(tokens or (None, 0)), calls=calls)


class StreamingFake(FakeMessagesListChatModel):
    """Streams its reply word by word; the last chunk carries usage (as providers do)."""

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        response = self.responses[self.i % len(self.responses)]
        self.i += 1
        words = str(response.content).split(" ")
        for n, word in enumerate(words):
            chunk = AIMessageChunk(content=word if n == 0 else " " + word)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.content, chunk=ChatGenerationChunk(
                    message=chunk))
            yield ChatGenerationChunk(message=chunk)
        final = AIMessageChunk(content="", usage_metadata=getattr(response, "usage_metadata",
                                                                  None))
        yield ChatGenerationChunk(message=final)


class PricedFake(ToolCallingFake):
    """Names its model and provider like a real integration (``ls_model_name``,
    ``ls_provider``), so that its calls can be priced."""

    model: str = "gpt-4o"
    provider: str = "openai"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        return params


class PricedStreamingFake(PricedFake, StreamingFake):
    """A priced model that streams; the last chunk carries usage."""


def priced_reply(inp: int, out: int, *, served: str | None = None, cache_read: int = 0,
                 cache_creation: int = 0, reasoning: int = 0) -> AIMessage:
    """A reply with usage (cache and reasoning details) and, when given, the served model."""
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out,
                             "total_tokens": inp + out}
    if cache_read or cache_creation:
        usage["input_token_details"] = {"cache_read": cache_read,
                                        "cache_creation": cache_creation}
    if reasoning:
        usage["output_token_details"] = {"reasoning": reasoning}
    meta = {"model_name": served} if served else {}
    return AIMessage("ok", usage_metadata=usage, response_metadata=meta)  # type: ignore[arg-type]
