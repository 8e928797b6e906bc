"""The run tree: one :class:`Run` per live run, bounded in size and age."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hypertool_callbacks.events import RunId, RunKind, Usage

if TYPE_CHECKING:
    from hypertool_callbacks.context.cost import Cost

UNKNOWN = "unknown"


class Source(StrEnum):
    """Where a resolved persona/stage/workflow value came from (precedence order)."""

    EXPLICIT = "explicit"
    RULE = "rule"
    CALLER = "caller"  # a tool run: the persona of the LLM call that asked for it
    STRUCTURE = "structure"
    INHERITED = "inherited"
    NODE = "node"  # fallback: the LangGraph node the run works in
    NONE = "none"


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # not sent: the persona's token budget was spent (raise mode)
    EVICTED = "evicted"


@dataclass(slots=True, eq=False)
class Run:
    """A live run, enriched by the tracker and shared (read-only) with every sink.

    Sinks may keep per-run state in ``extra`` (e.g. an OTel span); a sink that correlates
    traces sets ``trace_id`` (32 hex chars) so later sinks can attach it as an exemplar.
    """

    run_id: RunId
    parent: Run | None
    kind: RunKind
    name: str
    tags: Sequence[str]
    metadata: Mapping[str, Any]
    start_ns: int
    start_mono: float
    inputs: Any = None
    model: str | None = None
    provider: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    # The tracker's dispatch.Table for this run's tree: without the sinks that declined it
    # (Sink.takes_tree); a root's is set once its tree's sinks are known. Typed Any: the
    # dispatcher imports this module, not the other way round.
    table: Any = None
    trace_id: str | None = None  # the parent's until a sink names this run's own
    requested_by: str | None = None  # tool runs: persona of the LLM call that asked for it
    # Resolved once at start (see context.inference).
    persona: str = UNKNOWN
    persona_source: Source = Source.NONE
    stage: str = UNKNOWN
    stage_source: Source = Source.NONE
    workflow: str = UNKNOWN
    agent: str | None = None  # innermost named agent (graph) this run belongs to
    is_graph: bool = False  # a LangGraph graph (learned when its first node starts)
    is_node: bool = False  # a LangGraph node run (a graph's direct child)
    execution: str = ""  # workflow execution key: LangGraph thread_id or the root run id
    thread_id: str | None = None  # LangGraph thread_id (checkpointer), when there is one
    stage_run: Run | None = None  # the run that introduced this run's stage
    stage_persona: str | None = None  # first acting persona seen inside the stage
    gate: str | None = None  # quality gate this run introduces
    label: str = UNKNOWN  # bounded metric label: the model (LLM runs) or tool name (tool runs)
    # Filled while running / at the end.
    end_ns: int | None = None
    end_mono: float | None = None
    first_token_mono: float | None = None
    first_token_ns: int | None = None
    outputs: Any = None
    error: BaseException | None = None
    status: Status = Status.OK
    usage: Usage | None = None
    usage_in_child: bool = False  # an LLM call inside this one reported (and counted) usage
    response_model: str | None = None
    # LLM runs that counted usage: their price (context.cost), or unpriced when no price is known.
    cost: Cost | None = None
    unpriced: bool = False
    gate_result: str | None = None
    handoff_to: tuple[str, ...] = ()  # the agents (nodes) this run handed off to
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Run:
        run = self
        while run.parent is not None:
            run = run.parent
        return run

    @property
    def duration(self) -> float:
        """Seconds from start to end (0.0 while still running)."""
        end = self.end_mono
        if end is None:
            return 0.0
        seconds = end - self.start_mono
        return seconds if seconds > 0.0 else 0.0  # not max(): every sink reads this per run

    @property
    def is_agent(self) -> bool:
        """The run that *is* an agent: the graph (or root run) that introduces ``agent``.
        Runs inside it inherit ``agent`` and are not agents themselves."""
        if self.agent is None:
            return False
        parent = self.parent
        if parent is None:
            return True
        return self.is_graph and parent.agent != self.agent

    @property
    def introduces_stage(self) -> bool:
        return self.stage_run is self and self.stage != UNKNOWN


class RunTree:
    """Live runs by id. Finished runs are removed; runs that never end are evicted.

    Bounded two ways: at most ``max_runs`` entries (the oldest go first) and at most
    ``ttl_seconds`` of age. Dict insertion order is start order, so both checks look at the
    front of the dict only and stay cheap.
    """

    def __init__(self, max_runs: int, ttl_seconds: float) -> None:
        self._runs: dict[RunId, Run] = {}
        self.by_id = self._runs  # read directly on the tracker's hot path
        self.max_runs = max_runs
        self.ttl_seconds = ttl_seconds

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs.values()))

    def get(self, run_id: RunId) -> Run | None:
        return self._runs.get(run_id)

    def add(self, run: Run) -> None:
        self._runs[run.run_id] = run

    def pop(self, run_id: RunId) -> Run | None:
        return self._runs.pop(run_id, None)

    def evict(self, now_mono: float) -> list[Run]:
        """Remove and return runs that are too old or beyond the size bound."""
        evicted: list[Run] = []
        deadline = now_mono - self.ttl_seconds
        while self._runs:
            oldest = next(iter(self._runs.values()))
            if len(self._runs) <= self.max_runs and oldest.start_mono >= deadline:
                break
            del self._runs[oldest.run_id]
            evicted.append(oldest)
        return evicted
