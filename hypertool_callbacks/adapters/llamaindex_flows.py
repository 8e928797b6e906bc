"""The LlamaIndex bridge's state, and the spans of workflows and their steps: a workflow's run,
its steps (an agent workflow's: in turns of the agent that hosts them).

:class:`BridgeState` holds what the handlers share; :class:`FlowSpans` adds the workflow side;
:class:`~.llamaindex_spans.Bridge` the handlers' entry points and every other unit of work.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hypertool_callbacks.adapters.llamaindex_records import (
    AGENT,
    EMPTY,
    FLOW,
    RUN_ID,
    Flow,
    Llm,
    Span,
)
from hypertool_callbacks.adapters.llamaindex_units import (
    CHAIN,
    current_agent_name,
    is_agent,
    is_agent_workflow,
    qualified_name,
)
from hypertool_callbacks.context.inference import (
    AGENT_KEY,
    NAMESPACE_KEY,
    NODE_KEY,
    NODE_TAG_PREFIX,
)
from hypertool_callbacks.errors import TokenBudgetExceeded
from hypertool_callbacks.events import RunEnd, RunStart

if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker

MAX_SPANS = 50_000
_CANCELLATIONS = frozenset({"GeneratorExit", "CancelledError", "WorkflowCancelledByUser"})
_NAMES: dict[str, tuple[str, str]] = {}  # qualified span name -> (owner, method); see _names()


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _names(id_: str) -> tuple[str, str]:
    """(owner, method) of a span id: ``("AgentWorkflow", "setup_agent")``; cached by the id's
    slice for ids of the dispatcher's shape (the caller looks that up first)."""
    qualified = qualified_name(id_)
    owner, _, method = qualified.rpartition(".")
    if qualified and qualified == id_[:-37] and len(_NAMES) < 10_000:  # dispatcher's shape only
        _NAMES[qualified] = (owner, method)
    return owner, method


class BridgeState:
    """Shared state of one span handler and one event handler, feeding one tracker."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        self._tracker = tracker
        self._lock = threading.Lock()
        # Span id -> its span, in insertion order (oldest first). Single dict operations
        # (atomic under the GIL) on the hot path.
        self.spans: dict[str, Span] = {}
        self._llms: dict[str, Llm] = {}  # own and alias span ids -> the LLM run
        self._streams: dict[int, Llm] = {}  # LLM instance -> its stream waiting for chunks
        # Span id -> exits still to ignore: a handler registered twice hears every span twice.
        self._echoes: dict[str, int] = {}

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            from hypertool_callbacks.wiring import get_tracker_or_disabled

            self._tracker = get_tracker_or_disabled()
        return self._tracker

    def use(self, tracker: Tracker | None) -> None:
        self._tracker = tracker

    def failed(self, where: str, exc: Exception) -> None:
        """A handler entry point failed: counted and swallowed (strict mode re-raises)."""
        if isinstance(exc, TokenBudgetExceeded):
            # The dispatcher swallows whatever a handler raises, so a spent budget cannot stop
            # a LlamaIndex call: the tracker has recorded it (refused run, exceeded counter).
            return
        tracker = self.tracker
        if tracker.config.strict:
            raise exc
        tracker.internal_error(f"llamaindex.{where}", exc)

    def duplicate(self, id_: str) -> None:
        """A span entered again (the same handler registered twice): counted once, and its
        next exit is ignored, so the span stays one run (or stays transparent)."""
        echoes = self._echoes
        if len(echoes) >= MAX_SPANS:  # exits that never came
            echoes.clear()
        echoes[id_] = echoes.get(id_, 0) + 1
        self.tracker.dropped("duplicate_run")

    def echo(self, id_: str) -> bool:
        """Whether this exit is the echo of a duplicate enter (then it is ignored)."""
        left = self._echoes.pop(id_, 0)
        if left > 1:
            self._echoes[id_] = left - 1
        return left > 0

    def trim(self) -> None:
        """Spans that never exit are forgotten, oldest first."""
        with self._lock:
            spans = self.spans
            # A list first: iterating while another thread inserts would raise.
            for key in list(itertools.islice(spans, max(0, len(spans) - MAX_SPANS))):
                spans.pop(key, None)

    def _remember(self, id_: str, span: Span) -> None:
        spans = self.spans
        spans[id_] = span
        if len(spans) > MAX_SPANS:
            self.trim()


class FlowSpans(BridgeState):
    """Workflow runs and steps."""

    def flow_span(self, id_: str, workflow: bool, instance: Any,
                  bound_args: inspect.BoundArguments | None, parent: Span | None) -> None:
        """A workflow's run (``workflow``) or one of its steps."""
        try:
            owner, method = _NAMES[id_[:-37]]  # see _names()
        except KeyError:
            owner, method = _names(id_)
        if workflow:
            self._workflow(id_, instance, parent, owner)
            return
        flow = parent[FLOW] if parent is not None else None
        tracker = self._tracker or self.tracker
        spans = self.spans
        if flow is None or parent is None:
            parent_run = parent[RUN_ID] if parent is not None else None
            folded = parent_run is not None and tracker.fold(id_, parent_run, (), EMPTY)
            spans[id_] = (id_, CHAIN, 0, None, None, "step", method, None, None, folded)
            if len(spans) > MAX_SPANS:
                self.trim()
            if not folded:
                tracker.start_run(id_, parent_run, CHAIN, method, (), EMPTY)
            return
        metadata: Mapping[str, Any] = EMPTY
        tags: tuple[str, ...] = ()
        parent_run = flow.run_id
        if flow.agentic:
            named = current_agent_name(bound_args.arguments.get("ev")
                                       if bound_args is not None else None)
            if not (isinstance(named, str) and named):
                named = None
            agent = named or flow.agent
            if named and named != flow.turn_agent:
                self._new_turn(flow, named)
            flow.agent = agent
            parent_run = flow.turn_id or flow.run_id
            if agent:
                metadata = {AGENT_KEY: agent}
        else:
            agent = parent[AGENT]
            if flow.top_level:
                flow.steps += 1
                metadata = {AGENT_KEY: agent, NODE_KEY: method} if agent else {NODE_KEY: method}
                tags = (f"{NODE_TAG_PREFIX}{flow.steps}",)
            elif agent:
                metadata = {AGENT_KEY: agent}
        # A nested workflow's step inside its flow run, adding nothing: folded when no sink
        # needs it. (An agent's step declares the agent, which its turn does not: never; an
        # agent workflow's step before any agent acts, e.g. init_run, declares nothing.)
        folded = ((not flow.agentic or metadata is EMPTY) and not tags
                  and tracker.fold(id_, parent_run, tags, metadata))
        spans[id_] = (id_, CHAIN, 0, agent, flow, "step", method, None, None, folded)
        if len(spans) > MAX_SPANS:
            self.trim()
        if not folded:
            tracker.start_run(id_, parent_run, CHAIN, method, tags, metadata)

    def _workflow(self, id_: str, instance: Any, parent: Span | None, owner: str) -> None:
        agent_name = text(getattr(instance, "name", None)) if is_agent(instance) else None
        name = agent_name or owner or type(instance).__name__
        parent_run = parent[RUN_ID] if parent is not None else None
        flow = Flow(id_, parent_run is None,
                    agent_name is not None or is_agent_workflow(instance))
        agent = parent[AGENT] if parent is not None else None
        self._remember(id_, (id_, CHAIN, id(instance), agent, flow, "workflow", name, None, None,
                             False))
        self.tracker.start(RunStart(id_, parent_run, CHAIN, name, (),
                                    {AGENT_KEY: agent} if agent else EMPTY))

    def _new_turn(self, flow: Flow, agent: str) -> None:
        """The next agent acts: close the previous agent's turn, open this one's."""
        self._end_turn(flow, None)
        flow.turns += 1
        flow.turn_id, flow.turn_agent = f"{flow.run_id}#turn-{flow.turns}", agent
        metadata: dict[str, Any] = {NODE_KEY: agent}
        if not flow.top_level:
            # A nested workflow's agents are not stages of the outer one (a LangGraph
            # subgraph's namespace says the same), but handoffs between them still land.
            metadata[NAMESPACE_KEY] = f"{flow.run_id}|{agent}"
        self.tracker.start(RunStart(flow.turn_id, flow.run_id, CHAIN, agent,
                                    (f"{NODE_TAG_PREFIX}{flow.turns}",), metadata))

    def _end_turn(self, flow: Flow, error: BaseException | None) -> None:
        if flow.turn_id is not None:
            turn, flow.turn_id, flow.turn_agent = flow.turn_id, None, None
            self.tracker.end(ending(turn, None, error))


def cancels(error: BaseException | None) -> bool:
    """Whether ``error`` means the caller stopped the run (neither ok nor an error)."""
    return error is not None and type(error).__name__ in _CANCELLATIONS


def ending(run_id: str, outputs: Any, error: BaseException | None) -> RunEnd:
    if cancels(error):
        return RunEnd(run_id, outputs, None, None, None, (), False, True)
    return RunEnd(run_id, outputs, error)
