"""Offline LlamaIndex models for the tests: real llama-index-core classes that report usage."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    ToolCallBlock,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import Field, PrivateAttr

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.context.tracker import Tracker


def openai_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0
                 ) -> dict[str, Any]:
    return {"usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached},
                      "completion_tokens_details": {"reasoning_tokens": reasoning}}}


class UsageLLM(CustomLLM):
    """A ``CustomLLM`` (so ``chat`` calls ``complete`` inside) that reports OpenAI-style usage
    in ``raw``; streaming yields one chunk per word, the last one carrying the usage."""

    text: str = "the answer"
    model_name: str = "usage-llm-1"
    tokens: tuple[int, int] = (7, 3)
    raw_override: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_name)

    def _raw(self) -> Any:
        if self.raw_override is not None:
            return self.raw_override
        return {"model": self.model_name + "-2025", **openai_usage(*self.tokens)}

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.text, raw=self._raw())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        words = self.text.split()

        def gen() -> Iterator[CompletionResponse]:
            for i, word in enumerate(words):
                last = i == len(words) - 1
                yield CompletionResponse(text=" ".join(words[:i + 1]), delta=word,
                                         raw=self._raw() if last else None)

        return gen()


Step = str | tuple[str, dict[str, Any]]


class ScriptedAgentLLM(MockFunctionCallingLLM):
    """A function-calling LLM that plays a script: a string is a final answer, ``(tool, args)``
    a tool call. Every call reports ``tokens`` (OpenAI shape), streamed or not."""

    script: list[Any] = Field(default_factory=list)
    tokens: tuple[int, int] = (10, 1)
    model_name: str = "scripted"
    _position: int = PrivateAttr(default=0)

    def reset(self) -> None:
        self._position = 0

    def _message(self) -> ChatMessage:
        step = self.script[self._position % len(self.script)]
        self._position += 1
        if isinstance(step, str):
            return ChatMessage(role="assistant", content=step)
        name, args = step
        return ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id=f"call-{self._position}", tool_name=name,
                          tool_kwargs=args)])

    def _response(self) -> ChatResponse:
        message = self._message()
        return ChatResponse(message=message, delta=message.content or "",
                            raw={"model": self.model_name, **openai_usage(*self.tokens)})

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._response()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._response()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage],
                           **kwargs: Any) -> AsyncGenerator[ChatResponse, None]:
        response = self._response()

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            yield ChatResponse(message=response.message, delta="")  # first chunk, no usage
            yield response

        return gen()


@pytest.fixture
def attach_tracker() -> Iterator[Callable[[Tracker], Tracker]]:
    """``attach_tracker(tracker)``: hypertool on LlamaIndex's root dispatcher for this test."""

    def attach(tracker: Tracker) -> Tracker:
        llamaindex.attach(tracker)
        return tracker

    yield attach
    llamaindex.detach()
