"""LlamaIndex's legacy callbacks (``CallbackManager`` / ``Settings.callback_manager``).

For apps that pass handlers the old way::

    from llama_index.core import Settings
    from llama_index.core.callbacks import CallbackManager
    from hypertool_callbacks.adapters.llamaindex_legacy import HypertoolLlamaCallbackHandler

    Settings.callback_manager = CallbackManager([HypertoolLlamaCallbackHandler()])

The legacy events are coarser than the instrumentation module's (no workflow steps, no agent
names, streams end when the manager says so), so when hypertool's instrumentation handlers are
on the root dispatcher (``instrument()``, ``HYPERTOOL_CALLBACKS``, ...) this handler does
nothing: every call is counted once, by the richer path.
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.adapters.llamaindex_usage import response_model, response_usage
from hypertool_callbacks.context.inference import NODE_KEY, NODE_TAG_PREFIX
from hypertool_callbacks.events import RunEnd, RunKind, RunStart

if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker

_KINDS: dict[CBEventType, tuple[RunKind, str]] = {
    CBEventType.LLM: (RunKind.LLM, "llm"),
    CBEventType.EMBEDDING: (RunKind.EMBEDDING, "embedding"),
    CBEventType.RETRIEVE: (RunKind.RETRIEVER, "retrieve"),
    CBEventType.QUERY: (RunKind.CHAIN, "query"),
    CBEventType.SYNTHESIZE: (RunKind.CHAIN, "synthesize"),
    CBEventType.FUNCTION_CALL: (RunKind.TOOL, "tool"),
    CBEventType.AGENT_STEP: (RunKind.CHAIN, "agent_step"),
    CBEventType.RERANKING: (RunKind.CHAIN, "rerank"),
    CBEventType.SUB_QUESTION: (RunKind.CHAIN, "sub_question"),
}
_STAGES = frozenset({"retrieve", "synthesize", "rerank"})
_MAX_EVENTS = 20_000
# LLM events are "leaf" events: the manager gives the call ``complete`` makes inside ``chat``
# the same parent as ``chat`` itself. The open outer LLM call of this context tells them apart.
_open_llm: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hypertool_legacy_llm", default=None)
# (our run id or None, its kind, its role, whether this event is that run, stage wrapper id)
_Entry = tuple[str | None, RunKind | None, str, bool, str | None]


class HypertoolLlamaCallbackHandler(BaseCallbackHandler):
    """Legacy LlamaIndex callback handler feeding the same tracker as every other adapter."""

    def __init__(self, tracker: Tracker | None = None) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self._tracker = tracker
        self._events: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            from hypertool_callbacks.wiring import get_tracker_or_disabled

            self._tracker = get_tracker_or_disabled()
        return self._tracker

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(self, trace_id: str | None = None,
                  trace_map: dict[str, list[str]] | None = None) -> None:
        return None

    def on_event_start(self, event_type: CBEventType, payload: dict[str, Any] | None = None,
                       event_id: str = "", parent_id: str = "", **kwargs: Any) -> str:
        try:
            if not llamaindex.attached():
                self._start(event_type, payload or {}, event_id, parent_id)
        except Exception as exc:
            self._failed("on_event_start", exc)
        return event_id

    def on_event_end(self, event_type: CBEventType, payload: dict[str, Any] | None = None,
                     event_id: str = "", **kwargs: Any) -> None:
        try:
            self._end(payload or {}, event_id)
        except Exception as exc:
            self._failed("on_event_end", exc)

    def _failed(self, where: str, exc: Exception) -> None:
        if self.tracker.config.strict:
            raise exc
        self.tracker.internal_error(f"llamaindex_legacy.{where}", exc)

    def _start(self, event_type: Any, payload: dict[str, Any], event_id: str,
               parent_id: str) -> None:
        with self._lock:
            parent = self._events.get(parent_id)
        parent_run, parent_kind, parent_role = (parent[0], parent[1], parent[2]) if parent else (
            None, None, "")
        found = _KINDS.get(event_type)
        if found is not None and found[0] is RunKind.LLM:
            outer = _open_llm.get()
            with self._lock:
                if outer is not None and outer in self._events:
                    parent_kind = RunKind.LLM
            if parent_kind is not RunKind.LLM:
                _open_llm.set(event_id)
        if found is None or (found[0] is RunKind.LLM and parent_kind is RunKind.LLM):
            # Not a unit of work, or the same LLM call one level down (chat -> complete).
            self._remember(event_id, (parent_run, parent_kind, parent_role, False, None))
            return
        kind, role = found
        run_id, wrapper = f"legacy:{event_id}", None
        metadata: dict[str, Any] = {}
        tags: tuple[str, ...] = ()
        if role in _STAGES and parent_role == "query" and parent_run is not None:
            query = self.tracker.get_run(parent_run)
            if query is not None and query.parent is None:
                if kind is RunKind.CHAIN:
                    metadata, tags = {NODE_KEY: role}, (f"{NODE_TAG_PREFIX}1",)
                else:  # a stage is a chain: the phase wraps the retriever (see llamaindex)
                    wrapper = f"{run_id}#stage"
                    self.tracker.start(RunStart(wrapper, parent_run, RunKind.CHAIN, role,
                                                tags=(f"{NODE_TAG_PREFIX}1",),
                                                metadata={NODE_KEY: role}))
                    parent_run = wrapper
        start = RunStart(run_id, parent_run, kind, _name(kind, role, payload), tags=tags,
                         metadata=metadata, inputs=_inputs(kind, payload))
        if kind is RunKind.LLM:
            serialized = payload.get(EventPayload.SERIALIZED)
            if isinstance(serialized, dict):
                model = serialized.get("model") or serialized.get("model_name")
                start.model = model if isinstance(model, str) and model else None
        self._remember(event_id, (run_id, kind, role, True, wrapper))
        self.tracker.start(start)

    def _remember(self, event_id: str, entry: _Entry) -> None:
        with self._lock:
            self._events[event_id] = entry
            while len(self._events) > _MAX_EVENTS:
                self._events.popitem(last=False)

    def _end(self, payload: dict[str, Any], event_id: str) -> None:
        with self._lock:
            entry = self._events.pop(event_id, None)
        if _open_llm.get() == event_id:
            _open_llm.set(None)
        if entry is None or not entry[3] or entry[0] is None:
            return  # not ours (ignored while instrumentation was on) or not a run
        run_id, kind, _, _, wrapper = entry
        error = payload.get(EventPayload.EXCEPTION)
        error = error if isinstance(error, BaseException) else None
        end = RunEnd(run_id, error=error)
        if kind is RunKind.LLM and error is None:
            response = payload.get(EventPayload.RESPONSE, payload.get(EventPayload.COMPLETION))
            end.outputs, end.usage = response, response_usage(response)
            end.response_model = response_model(response)
        elif kind is RunKind.TOOL and error is None:
            end.outputs = payload.get(EventPayload.FUNCTION_OUTPUT)
        self.tracker.end(end)
        if wrapper is not None:
            self.tracker.end(RunEnd(wrapper, error=error))


def _name(kind: RunKind, role: str, payload: dict[str, Any]) -> str:
    if kind is RunKind.TOOL:
        name = getattr(payload.get(EventPayload.TOOL), "name", None)
        if isinstance(name, str) and name:
            return name
    return role


def _inputs(kind: RunKind, payload: dict[str, Any]) -> Any:
    if kind is RunKind.LLM:
        messages = payload.get(EventPayload.MESSAGES)
        if messages is not None:
            return messages
        prompt = payload.get(EventPayload.PROMPT)
        return [prompt] if prompt is not None else None
    for key in (EventPayload.QUERY_STR, EventPayload.FUNCTION_CALL, EventPayload.CHUNKS):
        if key in payload:
            return payload[key]
    return None
