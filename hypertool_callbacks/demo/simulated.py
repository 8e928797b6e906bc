"""Fake chat models that take simulated time: they advance a :class:`ManualClock` the tracker
uses, so timelines and latencies are realistic and identical on every run (the notebooks are
committed with their outputs; real time would make every regeneration a diff of noise).

Example::

    clock = ManualClock()
    tracker = build_tracker(config, clock=clock)
    model = SimulatedChat(responses=[ai("hi", 10, 2)], clock=clock, latency=0.8)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.demo.fakes import ToolCallingFake


class SimulatedChat(ToolCallingFake):
    """Scripted replies (with usage) that take ``latency`` simulated seconds; when streamed,
    the first token arrives after ``first_token`` seconds and the usage rides on the last chunk."""

    clock: Any = None  # a ManualClock (Any: pydantic field)
    latency: float = 1.0
    first_token: float = 0.2
    # Added to ``latency`` call after call (cycled): deterministic variety for the plots.
    jitter: tuple[float, ...] = ()
    model_name: str = "sim-chat"
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return self.model_name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _latency(self) -> float:
        extra = self.jitter[self.calls % len(self.jitter)] if self.jitter else 0.0
        self.calls += 1
        return max(0.0, self.latency + extra)

    def _advance(self, seconds: float) -> None:
        if isinstance(self.clock, ManualClock):
            self.clock.advance(seconds)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self._advance(self._latency())
        return super()._generate(messages, stop, run_manager, **kwargs)

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        response = self.responses[self.i % len(self.responses)]
        self.i = (self.i + 1) % len(self.responses)
        words = str(response.content).split(" ")
        latency = self._latency()
        self._advance(min(self.first_token, latency))
        rest = max(0.0, latency - self.first_token) / max(1, len(words))
        for n, word in enumerate(words):
            chunk = AIMessageChunk(content=word if n == 0 else " " + word)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.content,
                                             chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)
            self._advance(rest)
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", usage_metadata=getattr(response, "usage_metadata", None)))
