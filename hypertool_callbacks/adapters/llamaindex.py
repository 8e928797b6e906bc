"""LlamaIndex adapter: instrumentation spans and events in, neutral run events out.

A :class:`HypertoolSpanHandler` and a :class:`HypertoolEventHandler` on LlamaIndex's root
dispatcher (``llama_index.core.instrumentation``) see every span LlamaIndex opens. Only the
spans that are units of work become runs (see :mod:`.llamaindex_units`); the others are
transparent, and their children are attached to the nearest run above them.

* LLM calls: the **outermost** ``chat``/``complete``/``stream_*``/``a*`` span of an LLM.
  ``CustomLLM.chat`` calls ``complete``, ``achat`` calls ``chat``, ``astream_chat`` iterates
  ``stream_chat`` (outside its own span): those inner calls are the same call, counted once.
  A streaming call's span exits before its chunks arrive: the run ends at its end event; its
  first chunk is the time to first token and its final response carries the usage.
* Workflows (``Workflow.run``, ``AgentWorkflow``, a lone ``FunctionAgent``/``ReActAgent``): the
  run's root span is a chain named after the workflow class (a lone agent: its ``name``);
  each step is a chain. A top-level workflow's steps are its stages.
* Agents: no event names the agent, but the steps' bound event does
  (``ev.current_agent_name``). Each stretch of steps of one agent is an *agent turn*, a chain
  run named after the agent that hosts those steps (the stage, like a LangGraph supervisor's
  worker node), and every run under it declares the agent, so the agent's name is the persona
  of its LLM and tool calls. The ``handoff`` tool is a handoff to its ``to_agent``.
* Query engines: ``query`` is a chain; ``retrieve`` and ``synthesize`` are its stages when the
  query is the top-level run.

Structure is passed to the tracker in the neutral vocabulary ``context/`` reads (node metadata
and step tags, the declared-agent key), so inference, rules, budgets and every sink are the
ones LangChain runs use. LlamaIndex has no tags or run metadata of its own: persona and stage
rules match run names (class names, step names, agent names), agent names, node names (the
agent or step), tool names and system prompts.

The dispatcher swallows every handler exception; on top of that, every entry point (the
bridge's, which the dispatcher calls directly) is guarded, counted in
``hypertool_internal_errors_total{component="llamaindex.*"}``.
"""

from __future__ import annotations

import inspect
import threading
from typing import TYPE_CHECKING, Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher
from pydantic import PrivateAttr

from hypertool_callbacks.adapters.llamaindex_spans import Bridge

if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker

__all__ = ["HypertoolEventHandler", "HypertoolSpanHandler", "attach", "attached", "detach"]

class HypertoolSpanHandler(BaseSpanHandler[SimpleSpan]):
    """Turns LlamaIndex spans into runs. Register it (with :class:`HypertoolEventHandler` on
    the same :class:`Bridge`) on the root dispatcher, or just call :func:`attach`.

    Example::

        from llama_index.core.instrumentation.dispatcher import get_dispatcher

        span_handler, event_handler = handlers(tracker)
        get_dispatcher().add_span_handler(span_handler)
        get_dispatcher().add_event_handler(event_handler)
    """

    _bridge: Bridge = PrivateAttr()

    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self._bridge = bridge
        _route(self, bridge, ("span_enter", "span_exit", "span_drop"))

    @classmethod
    def class_name(cls) -> str:
        return "HypertoolSpanHandler"

    # The dispatcher finds the bridge's own methods on the instance (see _route); these are
    # for a caller going through the class. The base class would keep every open span in
    # ``open_spans`` (locks, span objects); the bridge keeps what it needs.
    def span_enter(self, id_: str, bound_args: inspect.BoundArguments,
                   instance: Any | None = None, parent_id: str | None = None,
                   tags: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._bridge.span_enter(id_, bound_args, instance, parent_id, tags)

    def span_exit(self, id_: str, bound_args: inspect.BoundArguments,
                  instance: Any | None = None, result: Any | None = None,
                  **kwargs: Any) -> None:
        self._bridge.span_exit(id_, bound_args, instance, result)

    def span_drop(self, id_: str, bound_args: inspect.BoundArguments,
                  instance: Any | None = None, err: BaseException | None = None,
                  **kwargs: Any) -> None:
        self._bridge.span_drop(id_, bound_args, instance, err)

    def new_span(self, id_: str, bound_args: inspect.BoundArguments,
                 instance: Any | None = None, parent_span_id: str | None = None,
                 tags: dict[str, Any] | None = None, **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_exit_span(self, id_: str, bound_args: inspect.BoundArguments,
                             instance: Any | None = None, result: Any | None = None,
                             **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: inspect.BoundArguments,
                             instance: Any | None = None, err: BaseException | None = None,
                             **kwargs: Any) -> SimpleSpan | None:
        return None


class HypertoolEventHandler(BaseEventHandler):
    """LLM progress and end events (first token, usage, end of a stream)."""

    _bridge: Bridge = PrivateAttr()

    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self._bridge = bridge
        _route(self, bridge, ("handle",))

    @classmethod
    def class_name(cls) -> str:
        return "HypertoolEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:  # see HypertoolSpanHandler.span_enter
        self._bridge.handle(event)


def _route(handler: BaseSpanHandler[Any] | BaseEventHandler, bridge: Bridge,
           names: tuple[str, ...]) -> None:
    """The dispatcher calls ``handler.span_enter(...)``: with the bridge's bound method as an
    instance attribute (found before the class's method), that is the bridge's own method,
    guarded inline: no frame of ours in between, and no read of the bridge off a pydantic
    model (BaseModel's ``__getattr__`` hook makes every attribute read several times dearer).
    Pydantic ignores the extra instance attributes (repr, dumps, copies)."""
    for name in names:
        object.__setattr__(handler, name, getattr(bridge, name))


def handlers(tracker: Tracker | None = None) -> tuple[HypertoolSpanHandler, HypertoolEventHandler]:
    """A span handler and an event handler sharing one bridge (``tracker``: default the
    process-wide one, resolved on first use)."""
    bridge = Bridge(tracker)
    return HypertoolSpanHandler(bridge), HypertoolEventHandler(bridge)


# -- attach / detach (the framework registry's integration API) ------------------------------

_lock = threading.RLock()
_attached: tuple[HypertoolSpanHandler, HypertoolEventHandler] | None = None


def attach(tracker: Tracker | None = None) -> None:
    """Observe every LlamaIndex run from now on: our handlers on the root dispatcher.

    Idempotent; called again with another tracker, the handlers switch to it.
    """
    global _attached
    with _lock:
        if _attached is not None:
            _attached[0]._bridge.use(tracker)
            return
        span_handler, event_handler = handlers(tracker)
        root = get_dispatcher()
        # Replace the lists rather than append in place: the dispatcher iterates its lists
        # while other threads may be dispatching.
        root.span_handlers = [*root.span_handlers, span_handler]
        root.event_handlers = [*root.event_handlers, event_handler]
        _attached = (span_handler, event_handler)


def detach() -> None:
    """Undo :func:`attach` (the dispatcher has no remove API: the lists are filtered)."""
    global _attached
    with _lock:
        if _attached is None:
            return
        span_handler, event_handler = _attached
        root = get_dispatcher()
        root.span_handlers = [h for h in root.span_handlers if h is not span_handler]
        root.event_handlers = [h for h in root.event_handlers if h is not event_handler]
        _attached = None


def attached() -> bool:
    """Whether hypertool's instrumentation handlers are on the root dispatcher (then the
    legacy callback handler stands aside, so nothing is counted twice)."""
    return any(isinstance(h, HypertoolSpanHandler) for h in get_dispatcher().span_handlers)
