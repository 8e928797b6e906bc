"""What the LlamaIndex bridge (:mod:`.llamaindex_spans`) keeps per span, flow and LLM call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

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


# A span that is a run (its run id is the span's own id), or an alias of one (the same call
# one level down). A transparent span is stored as the nearest span above it that is a run
# (or NO_RUN): the same object, no copy. Never changed once built. A plain tuple, read by the
# indexes below: a slots dataclass costs four times as much to build, once per run.
Span = tuple[
    str | None,  # RUN_ID: the run this span is, or stands for
    RunKind | None,  # KIND
    int,  # INSTANCE_ID: id() of the span's instance (the same call one level down: the same)
    str | None,  # AGENT: the agent whose work this is (AgentWorkflow)
    "Flow | None",  # FLOW
    str,  # ROLE: "llm", "tool", "query", "workflow", "step"...
    str,  # NAME
    str | None,  # HANDOFF: the handoff tool's target agent
    str | None,  # WRAPPER: the stage run wrapping this one (a query's retrieve phase)
    bool,  # FOLDED: a chain run the tracker folded into its parent (see Tracker.fold)
]
RUN_ID: Final = 0
KIND: Final = 1
INSTANCE_ID: Final = 2
AGENT: Final = 3
FLOW: Final = 4
ROLE: Final = 5
NAME: Final = 6
HANDOFF: Final = 7
WRAPPER: Final = 8
FOLDED: Final = 9


def make_span(run_id: str | None, kind: RunKind | None = None, instance_id: int = 0,
              agent: str | None = None, flow: Flow | None = None, role: str = "",
              name: str = "", handoff: str | None = None, wrapper: str | None = None,
              folded: bool = False) -> Span:
    """A :data:`Span` by keywords (off the hot path: that one builds the tuple itself)."""
    return (run_id, kind, instance_id, agent, flow, role, name, handoff, wrapper, folded)


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


NO_RUN: Span = make_span(None)  # what a transparent span with no run above it stands for
# Shared by every run without metadata or parameters (read-only, as the events are): one dict
# fewer per run. The LangChain adapter does the same.
EMPTY: Mapping[str, Any] = {}
