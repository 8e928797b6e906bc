"""What the LlamaIndex bridge (:mod:`.llamaindex_spans`) keeps per span, flow and LLM call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypertool_callbacks.events import RunKind, Usage


@dataclass(slots=True)
class Flow:
    """One workflow execution: which agent acts, and its current agent turn."""

    run_id: str
    top_level: bool
    agentic: bool
    agent: str | None = None
    turn_id: str | None = None
    turn_agent: str | None = None
    turns: int = 0
    steps: int = 0


@dataclass(slots=True)
class Span:
    """A span that is a run (``run_id`` is the span's own id), or an alias of one (the same
    call one level down). A transparent span is stored as the nearest span above it that is
    a run (or :data:`NO_RUN`): the same object, no copy."""

    run_id: str | None  # the run this span is, or stands for
    kind: RunKind | None = None
    instance_id: int = 0
    agent: str | None = None  # the agent whose work this is (AgentWorkflow)
    flow: Flow | None = None
    role: str = ""
    name: str = ""
    handoff: str | None = None  # the handoff tool's target agent
    wrapper: str | None = None  # the stage run wrapping this one (a query's retrieve phase)
    folded: bool = False  # a chain run the tracker folded into its parent (see Tracker.fold)


@dataclass(slots=True)
class Llm:
    """An LLM run between its span's start and its end (a stream outlives its span)."""

    run_id: str
    instance_id: int
    parent_id: str | None
    usage: Usage | None = None
    model: str | None = None
    stream: bool = False  # span exited with a generator: the end event ends the run
    read: Any = None  # the response the end event read (usage and model taken)
    aliases: list[str] = field(default_factory=list)


NO_RUN = Span(None)  # what a transparent span with no run above it stands for
