"""The LlamaIndex span tree, mapped to runs: which spans are runs, how they nest, when they end.

The handlers in :mod:`.llamaindex` hand the dispatcher the :class:`Bridge`'s entry points
(``span_enter``, ``span_exit``, ``span_drop``, ``handle``), each guarded inline. A span that is
not a unit of work costs a class lookup, a dict insert and, at its exit, a pop. State is per
span id, bounded: spans that never exit are forgotten oldest first.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from hypertool_callbacks.adapters.llamaindex_flows import (
    MAX_SPANS,
    FlowSpans,
    cancels,
    ending,
    text,
)
from hypertool_callbacks.adapters.llamaindex_records import (
    AGENT,
    EMPTY,
    FLOW,
    FOLDED,
    HANDOFF,
    INSTANCE_ID,
    KIND,
    NAME,
    NO_RUN,
    ROLE,
    RUN_ID,
    WRAPPER,
    Llm,
    Span,
    make_span,
)
from hypertool_callbacks.adapters.llamaindex_units import (
    CHAIN,
    CLASSES,
    EMBEDDING,
    LLM,
    MAYBE_STEP,
    TOOL,
    WORKFLOW,
    inputs_of,
    parameters_of,
    shape_of,
    system_prompt_of,
    unit_name,
)
from hypertool_callbacks.adapters.llamaindex_usage import (
    provider_of,
    request_model,
    response_model,
    response_usage,
    usage_and_model,
)
from hypertool_callbacks.context.inference import AGENT_KEY, NODE_KEY, NODE_TAG_PREFIX
from hypertool_callbacks.events import RunEnd, RunKind

# Phases of a top-level query that are its stages.
_QUERY_STAGES = {"retrieve": "retrieve", "synthesize": "synthesize", "rerank": "rerank"}
_STEP_TAG = "llamaindex.step.input_event"
_HANDOFF_TOOL = "handoff"
_FOLDABLE = frozenset({RunKind.CHAIN, RunKind.RETRIEVER, RunKind.EMBEDDING})
_FIRST_TOKEN = frozenset({"LLMChatInProgressEvent", "LLMCompletionInProgressEvent"})
_LLM_END = frozenset({"LLMChatEndEvent", "LLMCompletionEndEvent"})
EVENTS = _FIRST_TOKEN | _LLM_END | {"ExceptionEvent"}  # the events the bridge reads
_STREAMS = (GeneratorType, AsyncGeneratorType)  # inspect.isgenerator / isasyncgen, no frames
_STAGE_TAGS = (f"{NODE_TAG_PREFIX}1",)


_EVENT_KINDS: dict[type, str | None] = {}  # event class -> its name if in EVENTS, else None


def _event_kind(cls: type) -> str | None:
    kind = cls.__name__ if cls.__name__ in EVENTS else None
    if len(_EVENT_KINDS) < 1_000:
        _EVENT_KINDS[cls] = kind
    return kind


class ToolCallFailed(RuntimeError):
    """A tool that reported ``ToolOutput(is_error=True)`` instead of raising. The message is
    fixed: the tool's own error text may carry content and stays out of spans."""


class Bridge(FlowSpans):
    """Shared state of one span handler and one event handler, feeding one tracker: the
    handlers' entry points, and every unit of work but workflows."""

    # -- the handlers' entry points ------------------------------------------------------
    # The handlers' own attributes (see .llamaindex): the dispatcher calls these bound methods
    # with no frame of ours in between, and each guards itself inline.

    def span_enter(self, id_: str, bound_args: inspect.BoundArguments | None,
                   instance: Any | None = None, parent_id: str | None = None,
                   tags: dict[str, Any] | None = None, **kwargs: Any) -> None:
        try:
            spans = self.spans
            if id_ in spans:  # the same handler registered twice
                self.duplicate(id_)
                return
            parent = spans.get(parent_id) if parent_id else None
            try:  # (subscripts, not .get(): a miss is once per class and method)
                what = CLASSES[type(instance)]
                if type(what) is dict:
                    # By the id's name part: entries come from ids of the dispatcher's shape
                    # (``Owner.method-<uuid4>``, every id LlamaIndex makes), so this id's uuid
                    # is not checked again (a string count costs more than the rest of a
                    # transparent span).
                    what = what[id_[:-37]]
            except KeyError:
                what = shape_of(id_, instance)
            if what is None or (what is MAYBE_STEP and not (isinstance(tags, dict)
                                                            and _STEP_TAG in tags)):
                # Transparent: stands for the nearest run above it (its kind and role
                # included, so a call nested below it is still recognised as the same call).
                spans[id_] = parent if parent is not None else NO_RUN
                if len(spans) > MAX_SPANS:
                    self.trim()
            elif type(what) is tuple:
                self.unit(id_, what, instance, bound_args, parent)
            else:
                self.flow_span(id_, what is WORKFLOW, instance, bound_args, parent)
        except Exception as exc:
            self.failed("span_enter", exc)

    def span_exit(self, id_: str, bound_args: inspect.BoundArguments | None,
                  instance: Any | None = None, result: Any | None = None,
                  **kwargs: Any) -> None:
        try:
            if self._echoes and self.echo(id_):
                return
            span = self.spans.pop(id_, None)
            if span is not None:
                if span[RUN_ID] != id_:
                    return  # transparent, or the same call one level down
                if span[ROLE] == "step" and not span[FOLDED]:
                    # A step's run ends with its result, nothing else (exit_run's last case).
                    (self._tracker or self.tracker).end_run(id_, result)
                    return
            self.exit_run(id_, span, result)
        except Exception as exc:
            self.failed("span_exit", exc)

    def span_drop(self, id_: str, bound_args: inspect.BoundArguments | None,
                  instance: Any | None = None, err: BaseException | None = None,
                  **kwargs: Any) -> None:
        try:
            if self._echoes and self.echo(id_):
                return
            span = self.spans.pop(id_, None)
            if span is None or span[RUN_ID] == id_:
                self.drop_run(id_, span, err)
        except Exception as exc:
            self.failed("span_drop", exc)

    def handle(self, event: Any, **kwargs: Any) -> None:
        try:
            try:  # (by class: ``__name__`` of a pydantic class goes through a hook)
                kind = _EVENT_KINDS[type(event)]
            except KeyError:
                kind = _event_kind(type(event))
            if kind is not None:  # most events (a retrieval's, a step's output...): None
                self.event(event, kind)
        except Exception as exc:
            self.failed("handle", exc)

    # -- spans -----------------------------------------------------------------------------

    def unit(self, id_: str, what: tuple[RunKind, str, str], instance: Any,
             bound_args: inspect.BoundArguments | None, parent: Span | None) -> None:
        """A span that is a unit of work: an LLM, embedding, tool, retriever... call
        (``what``: its kind, its role and its class's name)."""
        kind, role, class_name = what
        instance_id = id(instance)
        if parent is not None:
            if parent[KIND] is kind and (kind is LLM or parent[INSTANCE_ID] == instance_id):
                # The same call again one level down (chat -> complete, acall -> call).
                self._alias(id_, parent, kind)
                return
            parent_run, agent, flow = parent[RUN_ID], parent[AGENT], parent[FLOW]
        else:
            parent_run = agent = flow = None
        if kind is LLM:
            stream = self._streams.get(instance_id)
            if stream is not None and stream.parent_id == parent_run:
                # astream_chat iterating stream_chat: outside its span, but the same call.
                self._alias(id_, make_span(stream.run_id, LLM, instance_id), kind)
                return
        tracker = self._tracker or self.tracker
        metadata: Mapping[str, Any] = {AGENT_KEY: agent} if agent else EMPTY
        tags: tuple[str, ...] = ()
        name = unit_name(instance, role) if role == "tool" else class_name
        wrapper = None
        stage = _QUERY_STAGES.get(role)
        if stage and parent is not None and flow is None and parent[ROLE] == "query":
            query_run = tracker.get_run(parent_run) if parent_run else None
            if query_run is not None and query_run.parent is None:
                node = {NODE_KEY: stage}
                if kind is CHAIN:
                    metadata, tags = {**metadata, **node}, _STAGE_TAGS
                else:
                    # A stage is a chain run (a retriever that is itself a node would be taken
                    # for a persona named after the node): the phase wraps the call.
                    wrapper = f"{id_}#stage"
                    tracker.start_run(wrapper, parent_run, CHAIN, stage, _STAGE_TAGS,
                                      {**metadata, **node})
                    parent_run = wrapper
        spans = self.spans
        if (kind in _FOLDABLE and not tags and parent_run is not None
                and tracker.fold(id_, parent_run, tags, metadata)):
            # A query, synthesizer, retriever or embedding call inside another run (or the
            # stage run wrapping it), adding nothing, that no sink needs (metrics count LLM
            # and tool calls and stages, never these). A wrapper still ends with the call.
            spans[id_] = (id_, kind, instance_id, agent, flow, role, name, None, wrapper, True)
            if len(spans) > MAX_SPANS:
                self.trim()
            return
        arguments = bound_args.arguments if bound_args is not None else {}
        inputs = inputs_of(kind, arguments)
        handoff = model = provider = prompt = None
        parameters: Mapping[str, Any] = EMPTY
        if kind is LLM:
            # The system prompt feeds persona rules only: read when rules are configured.
            prompt = system_prompt_of(arguments, instance) if tracker.reads_prompts else None
            model, provider = request_model(instance), provider_of(instance)
            parameters = parameters_of(instance)
            self._llms[id_] = Llm(id_, instance_id, parent_run, None, None, False, None, [])
        elif kind is EMBEDDING:
            model, provider = request_model(instance), provider_of(instance)
        elif kind is TOOL and name == _HANDOFF_TOOL:
            kwargs = arguments.get("kwargs")
            handoff = text(kwargs.get("to_agent")) if isinstance(kwargs, dict) else None
        spans[id_] = (id_, kind, instance_id, agent, flow, role, name, handoff, wrapper, False)
        if len(spans) > MAX_SPANS:
            self.trim()
        # A RunStart's fields as arguments (Tracker.start_run): no event object per run.
        tracker.start_run(id_, parent_run, kind, name, tags, metadata, inputs, model, provider,
                          parameters, prompt)

    def _alias(self, id_: str, outer: Span, kind: RunKind) -> None:
        run_id = outer[RUN_ID]
        self._remember(id_, (run_id, kind, outer[INSTANCE_ID], outer[AGENT], outer[FLOW],
                             outer[ROLE], outer[NAME], None, None, False))
        if kind is LLM and run_id is not None:
            with self._lock:
                llm = self._llms.get(run_id)
                if llm is not None:
                    self._llms[id_] = llm
                    llm.aliases.append(id_)

    def exit_run(self, id_: str, span: Span | None, result: Any) -> None:
        """The exit of a span that is a run (``span``), or that we never saw (None)."""
        tracker = self._tracker or self.tracker
        if span is None:
            tracker.end(RunEnd(id_))  # never seen: counted as an unknown run
            return
        if span[FOLDED]:
            tracker.unfold(id_)
            if span[WRAPPER] is not None:
                tracker.end_run(span[WRAPPER], result)
            return
        kind = span[KIND]
        if kind is LLM:
            lock = self._lock
            lock.acquire()  # not `with`: half its cost
            try:
                llm = self._llms.get(id_)
                if llm is not None and isinstance(result, _STREAMS):
                    llm.stream = True
                    self._streams[llm.instance_id] = llm
                    return  # the end event (or an exception event) ends it
            finally:
                lock.release()
            if llm is not None:
                self._end_llm(llm, result, None)
                return
        flow = span[FLOW]
        if flow is not None and span[ROLE] == "workflow":
            self._end_turn(flow, None)
        if kind is TOOL:
            error = (ToolCallFailed("tool returned is_error=True")
                     if getattr(result, "is_error", False) is True else None)
            # A handoff is recorded when the target agent's turn starts (the tracker lands
            # it): a refused handoff (unknown agent) never starts one.
            handoff = span[HANDOFF]
            tracker.end_run(id_, result, error, None, None,
                            (handoff,) if handoff and error is None else ())
        else:
            tracker.end_run(id_, result)
        wrapper = span[WRAPPER]
        if wrapper is not None:
            tracker.end_run(wrapper, result)

    def drop_run(self, id_: str, span: Span | None, err: BaseException | None) -> None:
        """A span that is a run (or that we never saw) raised."""
        if span is None:
            self.tracker.end(RunEnd(id_))  # counted as an unknown run
            return
        if span[FOLDED]:
            (self._tracker or self.tracker).unfold(id_)
            if span[WRAPPER] is not None:
                self.tracker.end(ending(span[WRAPPER], None, err))
            return
        llm = self._llms.get(id_) if span[KIND] is LLM else None
        if llm is not None:
            self._end_llm(llm, None, err)
            return
        flow = span[FLOW]
        if span[ROLE] == "workflow" and flow is not None:
            self._end_turn(flow, err)
        self.tracker.end(ending(id_, None, err))
        wrapper = span[WRAPPER]
        if wrapper is not None:
            self.tracker.end(ending(wrapper, None, err))

    # -- LLM events ------------------------------------------------------------------------

    def event(self, event: Any, kind: str) -> None:
        """An event the bridge reads (``kind``: its class's name)."""
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
        usage, model = usage_and_model(response)
        if usage is not None:
            llm.usage = usage
        llm.model = model or llm.model
        llm.read = response
        if llm.stream and span_id == llm.run_id:
            self._end_llm(llm, response, None)

    def _end_llm(self, llm: Llm, result: Any, error: BaseException | None) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if self._llms.pop(llm.run_id, None) is None:
                return  # already ended (an end event and an exception event)
            for alias in llm.aliases:
                self._llms.pop(alias, None)
            if self._streams.get(llm.instance_id) is llm:
                del self._streams[llm.instance_id]
        finally:
            lock.release()
        if result is not None and result is llm.read:
            # The end event has read this very response (the usual case): not twice.
            usage, model = llm.usage, llm.model
        else:
            usage = (response_usage(result) if error is None else None) or llm.usage
            model = response_model(result) or llm.model
        cancelled = cancels(error)
        self.tracker.end_run(llm.run_id, result, None if cancelled else error, usage, model,
                             (), False, cancelled)
