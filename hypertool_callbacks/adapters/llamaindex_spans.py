"""The LlamaIndex span tree, mapped to runs: which spans are runs, how they nest, when they end.

Called by the handlers in :mod:`.llamaindex` (which guard every call). State is per span id,
bounded: spans that never exit are forgotten oldest first.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from types import AsyncGeneratorType, GeneratorType
from typing import TYPE_CHECKING, Any

from hypertool_callbacks.adapters.llamaindex_records import NO_RUN, Flow, Llm, Span
from hypertool_callbacks.adapters.llamaindex_units import (
    MAYBE_STEP,
    SHAPES,
    WORKFLOW,
    current_agent_name,
    inputs_of,
    is_agent,
    is_agent_workflow,
    parameters_of,
    shape,
    system_prompt_of,
    unit_name,
)
from hypertool_callbacks.adapters.llamaindex_usage import (
    provider_of,
    request_model,
    response_model,
    response_usage,
)
from hypertool_callbacks.context.inference import (
    AGENT_KEY,
    NAMESPACE_KEY,
    NODE_KEY,
    NODE_TAG_PREFIX,
)
from hypertool_callbacks.errors import TokenBudgetExceeded
from hypertool_callbacks.events import RunEnd, RunKind, RunStart

if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker

# Phases of a top-level query that are its stages.
_QUERY_STAGES = {"retrieve": "retrieve", "synthesize": "synthesize", "rerank": "rerank"}
_STEP_TAG = "llamaindex.step.input_event"
_HANDOFF_TOOL = "handoff"
_CANCELLATIONS = frozenset({"GeneratorExit", "CancelledError", "WorkflowCancelledByUser"})
_MAX_SPANS = 50_000
_FOLDABLE = frozenset({RunKind.CHAIN, RunKind.RETRIEVER, RunKind.EMBEDDING})
_FIRST_TOKEN = frozenset({"LLMChatInProgressEvent", "LLMCompletionInProgressEvent"})
_LLM_END = frozenset({"LLMChatEndEvent", "LLMCompletionEndEvent"})
EVENTS = _FIRST_TOKEN | _LLM_END | {"ExceptionEvent"}  # the events the bridge reads
_STREAMS = (GeneratorType, AsyncGeneratorType)  # inspect.isgenerator / isasyncgen, no frames


class ToolCallFailed(RuntimeError):
    """A tool that reported ``ToolOutput(is_error=True)`` instead of raising. The message is
    fixed: the tool's own error text may carry content and stays out of spans."""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class Bridge:
    """Shared state of one span handler and one event handler, feeding one tracker."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        self._tracker = tracker
        self._lock = threading.Lock()
        self._spans: OrderedDict[str, Span] = OrderedDict()
        self._llms: dict[str, Llm] = {}  # own and alias span ids -> the LLM run
        self._streams: dict[int, Llm] = {}  # LLM instance -> its stream waiting for chunks

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

    # -- spans -----------------------------------------------------------------------------

    def span_enter(self, id_: str, bound_args: inspect.BoundArguments, instance: Any,
                   parent_id: str | None, tags: Any) -> None:
        # Single dict operations (atomic under the GIL) on the hot path: a transparent span
        # costs a lookup, an insert and, at its exit, a pop.
        spans = self._spans
        if id_ in spans:  # the same handler registered twice
            self.tracker.start(RunStart(id_, None, RunKind.CHAIN, "duplicate"))  # counted
            return
        parent = spans.get(parent_id) if parent_id else None
        # ``AgentWorkflow.setup_agent`` from ``AgentWorkflow.setup_agent-<uuid4>`` (the
        # dispatcher's shape: a slice, not a split).
        if id_[-37:-36] == "-" and id_.count("-", -36) == 4:
            qualified = id_[:-37]
        else:
            qualified = id_.rsplit("-", 5)[0]
        try:
            what = SHAPES[(type(instance), qualified)]
        except KeyError:
            what = shape(instance, qualified)
        if what is None or (what is MAYBE_STEP and not (isinstance(tags, dict)
                                                        and _STEP_TAG in tags)):
            # Transparent: stands for the nearest run above it (its kind and role included, so
            # a call nested below it is still recognised as the same call).
            spans[id_] = parent or NO_RUN
            if len(spans) > _MAX_SPANS:
                self._trim()
            return
        arguments = bound_args.arguments if bound_args is not None else {}
        owner, _, method = qualified.rpartition(".")
        if isinstance(what, tuple):
            self._unit(id_, what[0], what[1], instance, arguments, parent)
        elif what is WORKFLOW:
            self._workflow(id_, instance, parent, owner)
        else:
            self._step(id_, owner, method, parent, arguments)

    def _remember(self, id_: str, span: Span) -> None:
        self._spans[id_] = span
        if len(self._spans) > _MAX_SPANS:
            self._trim()

    def _trim(self) -> None:
        """Spans that never exit are forgotten, oldest first."""
        with self._lock:
            while len(self._spans) > _MAX_SPANS:
                self._spans.popitem(last=False)

    def _unit(self, id_: str, kind: RunKind, role: str, instance: Any,
              arguments: dict[str, Any], parent: Span | None) -> None:
        parent_run = parent.run_id if parent else None
        instance_id = id(instance)
        if parent is not None and parent.kind is kind and (
                kind is RunKind.LLM or parent.instance_id == instance_id):
            # The same call again one level down (chat -> complete, acall -> call): one run.
            self._alias(id_, parent, kind)
            return
        if kind is RunKind.LLM:
            stream = self._streams.get(instance_id)
            if stream is not None and stream.parent_id == parent_run:
                # astream_chat iterating stream_chat: outside its span, but the same call.
                self._alias(id_, Span(stream.run_id, RunKind.LLM, instance_id), kind)
                return
        tracker = self._tracker or self.tracker
        agent = parent.agent if parent else None
        metadata: dict[str, Any] = {AGENT_KEY: agent} if agent else {}
        tags: tuple[str, ...] = ()
        name = unit_name(instance, role) if role == "tool" else type(instance).__name__
        flow = parent.flow if parent else None
        stage, wrapper = _QUERY_STAGES.get(role), None
        if stage and parent is not None and parent.role == "query" and flow is None:
            query_run = tracker.get_run(parent.run_id) if parent.run_id else None
            if query_run is not None and query_run.parent is None:
                node = {NODE_KEY: stage}
                if kind is RunKind.CHAIN:
                    metadata, tags = {**metadata, **node}, (f"{NODE_TAG_PREFIX}1",)
                else:
                    # A stage is a chain run (a retriever that is itself a node would be taken
                    # for a persona named after the node): the phase wraps the call.
                    wrapper = f"{id_}#stage"
                    tracker.start(RunStart(wrapper, parent_run, RunKind.CHAIN, stage,
                                           (f"{NODE_TAG_PREFIX}1",), {**metadata, **node}))
                    parent_run = wrapper
        # (Not a call its stage run wraps: the wrapper ends with it.)
        if (kind in _FOLDABLE and not tags and wrapper is None and parent_run is not None
                and tracker.fold(id_, parent_run, tags, metadata)):
            # A query, synthesizer, retriever or embedding call inside another run, adding
            # nothing, that no sink needs (metrics count LLM and tool calls, never these).
            self._remember(id_, Span(id_, kind, instance_id, agent, flow, role, name,
                                      folded=True))
            return
        start = RunStart(id_, parent_run, kind, name, tags, metadata,
                         inputs_of(kind, arguments))
        if kind is RunKind.LLM or kind is RunKind.EMBEDDING:
            start.model, start.provider = request_model(instance), provider_of(instance)
        handoff = None
        if kind is RunKind.LLM:
            start.parameters = parameters_of(instance)
            # The system prompt feeds persona rules only: read when rules are configured.
            if tracker.reads_prompts:
                start.system_prompt = system_prompt_of(arguments, instance)
            self._llms[id_] = Llm(id_, instance_id, parent_run)
        elif kind is RunKind.TOOL and name == _HANDOFF_TOOL:
            kwargs = arguments.get("kwargs")
            handoff = _text(kwargs.get("to_agent")) if isinstance(kwargs, dict) else None
        self._remember(id_, Span(id_, kind, instance_id, agent, flow, role, name, handoff,
                                  wrapper))
        tracker.start(start)

    def _alias(self, id_: str, outer: Span, kind: RunKind) -> None:
        self._remember(id_, Span(outer.run_id, kind, outer.instance_id, outer.agent,
                                  outer.flow, outer.role, outer.name))
        if kind is RunKind.LLM and outer.run_id is not None:
            with self._lock:
                llm = self._llms.get(outer.run_id)
                if llm is not None:
                    self._llms[id_] = llm
                    llm.aliases.append(id_)

    def _workflow(self, id_: str, instance: Any, parent: Span | None, owner: str) -> None:
        agent_name = _text(getattr(instance, "name", None)) if is_agent(instance) else None
        name = agent_name or owner or type(instance).__name__
        parent_run = parent.run_id if parent else None
        flow = Flow(id_, top_level=parent_run is None,
                     agentic=agent_name is not None or is_agent_workflow(instance))
        agent = parent.agent if parent else None
        self._remember(id_, Span(id_, RunKind.CHAIN, id(instance), agent, flow,
                                  "workflow", name))
        self.tracker.start(RunStart(id_, parent_run, RunKind.CHAIN, name,
                                    metadata={AGENT_KEY: agent} if agent else {}))

    def _step(self, id_: str, owner: str, method: str, parent: Span | None,
              arguments: dict[str, Any]) -> None:
        flow = parent.flow if parent else None
        tracker = self._tracker or self.tracker
        if flow is None or parent is None:
            parent_run = parent.run_id if parent else None
            folded = parent_run is not None and tracker.fold(id_, parent_run, (), {})
            self._remember(id_, Span(id_, RunKind.CHAIN, 0, None, None, "step", method,
                                      folded=folded))
            if not folded:
                tracker.start(RunStart(id_, parent_run, RunKind.CHAIN, method))
            return
        metadata: dict[str, Any] = {}
        tags: tuple[str, ...] = ()
        parent_run = flow.run_id
        if flow.agentic:
            named = _text(current_agent_name(arguments.get("ev")))
            agent = named or flow.agent
            if named and named != flow.turn_agent:
                self._new_turn(flow, named)
            flow.agent = agent
            parent_run = flow.turn_id or flow.run_id
            if agent:
                metadata[AGENT_KEY] = agent
        else:
            agent = parent.agent
            if agent:
                metadata[AGENT_KEY] = agent
            if flow.top_level:
                flow.steps += 1
                metadata[NODE_KEY], tags = method, (f"{NODE_TAG_PREFIX}{flow.steps}",)
        # A nested workflow's step inside its flow run, adding nothing: folded when no sink
        # needs it. (An agent's step declares the agent, which its turn does not: never.)
        folded = not flow.agentic and not tags and tracker.fold(id_, parent_run, tags, metadata)
        self._remember(id_, Span(id_, RunKind.CHAIN, 0, agent, flow, "step", method,
                                  folded=folded))
        if not folded:
            tracker.start(RunStart(id_, parent_run, RunKind.CHAIN, method, tags, metadata))

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
        self.tracker.start(RunStart(flow.turn_id, flow.run_id, RunKind.CHAIN, agent,
                                    tags=(f"{NODE_TAG_PREFIX}{flow.turns}",), metadata=metadata))

    def _end_turn(self, flow: Flow, error: BaseException | None) -> None:
        if flow.turn_id is not None:
            turn, flow.turn_id, flow.turn_agent = flow.turn_id, None, None
            self.tracker.end(_ending(turn, None, error))

    def span_exit(self, id_: str, result: Any) -> None:
        span = self._spans.pop(id_, None)
        tracker = self._tracker or self.tracker
        if span is None:
            tracker.end(RunEnd(id_))  # never seen: counted as an unknown run
            return
        if span.run_id != id_:
            return  # transparent, or the same call one level down
        if span.folded:
            tracker.unfold(id_)
            return
        kind = span.kind
        if kind is RunKind.LLM:
            with self._lock:
                llm = self._llms.get(id_)
                if llm is not None and isinstance(result, _STREAMS):
                    llm.stream = True
                    self._streams[llm.instance_id] = llm
                    return  # the end event (or an exception event) ends it
            if llm is not None:
                self._end_llm(llm, result, None)
                return
        if span.flow is not None and span.role == "workflow":
            self._end_turn(span.flow, None)
        if kind is RunKind.TOOL:
            error = (ToolCallFailed("tool returned is_error=True")
                     if getattr(result, "is_error", False) is True else None)
            # A handoff is recorded when the target agent's turn starts (the tracker lands
            # it): a refused handoff (unknown agent) never starts one.
            tracker.end(RunEnd(id_, outputs=result, error=error, handoffs=(
                (span.handoff,) if span.handoff and error is None else ())))
        else:
            tracker.end(RunEnd(id_, result))
        if span.wrapper is not None:
            tracker.end(RunEnd(span.wrapper, result))

    def span_drop(self, id_: str, err: BaseException | None) -> None:
        span = self._spans.pop(id_, None)
        if span is None:
            self.tracker.end(RunEnd(id_))  # counted as an unknown run
            return
        if span.run_id != id_:
            return  # transparent, or the same call one level down
        if span.folded:
            (self._tracker or self.tracker).unfold(id_)
            return
        llm = self._llms.get(id_) if span.kind is RunKind.LLM else None
        if llm is not None:
            self._end_llm(llm, None, err)
            return
        if span.role == "workflow" and span.flow is not None:
            self._end_turn(span.flow, err)
        self.tracker.end(_ending(id_, None, err))
        if span.wrapper is not None:
            self.tracker.end(_ending(span.wrapper, None, err))

    # -- LLM events ------------------------------------------------------------------------

    def event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind in _FIRST_TOKEN:
            llm = self._llms.get(event.span_id)
            if llm is not None:
                self.tracker.first_token(llm.run_id)
        elif kind in _LLM_END:
            self._llm_end_event(event.span_id, getattr(event, "response", None))
        elif kind == "ExceptionEvent":
            llm = self._llms.get(event.span_id)
            if llm is not None and llm.stream and event.span_id == llm.run_id:
                self._end_llm(llm, None, getattr(event, "exception", None))

    def _llm_end_event(self, span_id: Any, response: Any) -> None:
        llm = self._llms.get(span_id) if isinstance(span_id, str) else None
        if llm is None:
            # An end event for a call we never saw start: counted, never raised.
            self.tracker.end(RunEnd(span_id if isinstance(span_id, str) else "unknown"))
            return
        usage = response_usage(response)
        if usage is not None:
            llm.usage = usage
        llm.model = response_model(response) or llm.model
        llm.read = response
        if llm.stream and span_id == llm.run_id:
            self._end_llm(llm, response, None)

    def _end_llm(self, llm: Llm, result: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._llms.pop(llm.run_id, None) is None:
                return  # already ended (an end event and an exception event)
            for alias in llm.aliases:
                self._llms.pop(alias, None)
            if self._streams.get(llm.instance_id) is llm:
                del self._streams[llm.instance_id]
        event = _ending(llm.run_id, result, error)
        if result is not None and result is llm.read:
            # The end event has read this very response (the usual case): not twice.
            event.usage, event.response_model = llm.usage, llm.model
        else:
            usage = response_usage(result) if error is None else None
            event.usage = usage or llm.usage
            event.response_model = response_model(result) or llm.model
        self.tracker.end(event)


def _ending(run_id: str, outputs: Any, error: BaseException | None) -> RunEnd:
    if error is not None and type(error).__name__ in _CANCELLATIONS:
        return RunEnd(run_id, outputs=outputs, cancelled=True)
    return RunEnd(run_id, outputs=outputs, error=error)
