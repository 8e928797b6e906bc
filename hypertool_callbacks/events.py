"""Neutral run events: what a framework adapter tells the tracker.

Adapters (LangChain, later LlamaIndex) translate their callbacks into these plain records
(read-only by convention); nothing downstream imports a framework. Timestamps are not part of
the events: the tracker stamps them with its injected clock when the event arrives.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RunId = Hashable
"""A run's id as the framework gives it (LangChain: a UUID; the tracker keys a UUID by its
``int``, whose hash is computed in C where ``UUID.__hash__`` runs Python code). Ids of one
framework must compare equal when they name the same run."""


class RunKind(StrEnum):
    CHAIN = "chain"
    LLM = "llm"
    TOOL = "tool"
    RETRIEVER = "retriever"
    EMBEDDING = "embedding"


# Read-only by convention, not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__ (four times the cost here, once per LLM call).
@dataclass(slots=True)
class Usage:
    """Token usage of one LLM call. ``cache_read``/``reasoning`` are subsets of input/output."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def details(self) -> dict[str, int]:
        """Non-zero detail counts, keyed by the ``detail`` label value."""
        if not (self.cache_read_tokens or self.cache_creation_tokens or self.reasoning_tokens):
            return {}  # most calls: no cache or reasoning counts
        pairs = (
            ("cache_read", self.cache_read_tokens),
            ("cache_creation", self.cache_creation_tokens),
            ("reasoning", self.reasoning_tokens),
        )
        return {name: value for name, value in pairs if value > 0}


# Not frozen: a frozen dataclass's __init__ costs ~2 us, paid twice per run. Treat as read-only.
@dataclass(slots=True)
class RunStart:
    """A run (chain, LLM call, tool call, ...) began."""

    run_id: RunId
    parent_id: RunId | None
    kind: RunKind
    name: str
    tags: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    inputs: Any = None
    # LLM runs only: requested model and parameters, the system prompt text (for rules),
    # and the tool names offered to the model.
    model: str | None = None
    provider: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    # Tool runs only: the id of the tool call (from the LLM's reply) this run executes.
    tool_call_id: str | None = None


@dataclass(slots=True)
class RunEnd:
    """A run finished, with an error or with outputs."""

    run_id: RunId
    outputs: Any = None
    error: BaseException | None = None
    usage: Usage | None = None
    response_model: str | None = None
    # Handoffs this run performed (``transfer_to_x`` tool, ``Command(goto=x)`` or
    # ``goto=[x, y]``): the target names, in order.
    handoffs: tuple[str, ...] = ()
    # Paused by a LangGraph interrupt: it runs again on resume, so no verdict is taken now.
    paused: bool = False
    # The caller stopped the run (stream closed early, task cancelled): neither ok nor error.
    cancelled: bool = False
    # LLM runs only: ids of the tool calls the reply asks for (their tool runs are this
    # LLM's persona's work, wherever they run).
    tool_call_ids: tuple[str, ...] = ()
