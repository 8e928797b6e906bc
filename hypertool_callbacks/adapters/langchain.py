"""LangChain/LangGraph adapter: callbacks in, neutral run events out.

``HypertoolCallbackHandler()`` is constructed by LangChain itself on every ``configure()`` when
activated by env var, so construction is trivial and all state lives in the shared tracker.
Every callback is guarded: nothing but :class:`TokenBudgetExceeded` (when configured) or, in
strict mode, our own errors, ever reaches the application.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackHandler

from hypertool_callbacks.adapters.langchain_results import handoff_targets, read_result
from hypertool_callbacks.errors import TokenBudgetExceeded
from hypertool_callbacks.events import RunKind

# Enum members read once: on Python 3.11 ``RunKind.LLM`` goes through EnumType's
# __getattr__ hook, several times the cost of a module constant.
_CHAIN = RunKind.CHAIN
_LLM = RunKind.LLM
_RETRIEVER = RunKind.RETRIEVER
_TOOL = RunKind.TOOL


if TYPE_CHECKING:
    from hypertool_callbacks.context.tracker import Tracker


# LangGraph control flow travels as exceptions; these are not failures.
CONTROL_FLOW_ERRORS = frozenset({"ParentCommand", "GraphInterrupt", "NodeInterrupt",
                                 "GraphBubbleUp"})


class ToolCallFailed(RuntimeError):
    """A tool failure LangChain reported as a ``ToolMessage(status="error")``. The message is
    fixed: the tool's own error text may carry content and stays out of spans."""


# The one place LangChain reads ``run_inline`` wrongly (see HypertoolCallbackHandler.run_inline).
_BUGGY_LLM_START = AsyncCallbackManager.on_llm_start.__code__

CANCELLATIONS = frozenset({"GeneratorExit", "CancelledError"})
_EMPTY: Mapping[str, Any] = {}
_MAX_PROMPT_CHARS = 20_000
_MODEL_KEYS = ("model", "model_name", "model_id", "_type")


def _asks_buggy_llm_start(frame: FrameType) -> bool:
    # Python 3.11 runs list comprehensions in a frame of their own; 3.12+ inlines them.
    if frame.f_code.co_name == "<listcomp>" and frame.f_back is not None:
        frame = frame.f_back
    return frame.f_code is _BUGGY_LLM_START


def _name(serialized: Any, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if type(serialized) is dict or isinstance(serialized, Mapping):
        if isinstance(serialized.get("name"), str):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return default


def _tags(tags: Any) -> tuple[str, ...]:
    # Element types are checked where tags are read (inference): one pass, not two.
    if type(tags) is tuple:  # already ours (on_chain_start passes them on)
        return tags
    if type(tags) is list:  # as LangChain passes them
        return tuple(tags)
    return tuple(tags) if isinstance(tags, list | tuple) else ()


def _metadata(metadata: Any) -> Mapping[str, Any]:
    # ``type(x) is dict`` first, here and below: an ABC isinstance check costs ten times more.
    return metadata if (type(metadata) is dict or isinstance(metadata, Mapping)) else {}


def _model(params: Mapping[str, Any]) -> str | None:
    """The requested model named by the invocation parameters (metadata's
    ``ls_model_name``, when LangChain sets it, is read first by the caller)."""
    for key in _MODEL_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _system_prompt(messages: Any) -> str | None:
    try:
        parts = [m.content for batch in messages for m in batch
                 if getattr(m, "type", None) == "system"]
    except TypeError:
        return None
    text = " ".join(p if isinstance(p, str) else str(p) for p in parts)
    return text[:_MAX_PROMPT_CHARS] or None


class HypertoolCallbackHandler(BaseCallbackHandler):
    """Persona- and stage-aware observability for LangChain and LangGraph runs.

    Example::

        handler = HypertoolCallbackHandler()          # the process-wide tracker
        graph.invoke(state, config={"callbacks": [handler]})
    """

    @property
    def run_inline(self) -> bool:  # type: ignore[override]
        """Run on the caller's thread: cheap and thread-safe, keeps event order and the task's
        context under asyncio, no thread-pool hop per event.

        Except where LangChain reads it in ``AsyncCallbackManager.on_llm_start``: there an
        inline handler makes it skip every non-inline one (langchain-ai/langchain#39633), so
        other tracers, ``astream_events`` and ``collect_runs`` would lose completion-model runs.
        Answering False there only sends the event to every handler; ``ahandle_event`` asks
        again and still runs us inline."""
        return not _asks_buggy_llm_start(sys._getframe(1))

    def __init__(self, tracker: Tracker | None = None) -> None:
        if tracker is None:
            from hypertool_callbacks.wiring import get_tracker

            # Explicit API: an invalid configuration raises ConfigError here, naming the file
            # and the key (start-up activation catches it and stays off instead).
            tracker = get_tracker()
        self._tracker = tracker

    @property
    def tracker(self) -> Tracker:
        return self._tracker

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """Let LangChain re-raise only what we raise on purpose (budget) or in strict mode."""
        config = self._tracker.config
        return config.strict or config.on_budget_exceeded == "raise"

    def _failed(self, where: str, exc: Exception) -> None:
        """Every callback's guard (inline, not a decorator: a wrapper frame repacking the
        arguments would cost more than most callbacks): our own failures are counted and
        swallowed; a spent budget (when configured to raise) and strict mode re-raise."""
        if isinstance(exc, TokenBudgetExceeded) or self._tracker.config.strict:
            raise exc
        self._tracker.internal_error(f"langchain.{where}", exc)

    def _start(self, kind: RunKind, serialized: Any, inputs: Any, run_id: UUID,
               parent_run_id: UUID | None, tags: Any, metadata: Any,
               kwargs: Mapping[str, Any], **extra: Any) -> None:
        # A RunStart's fields as arguments (Tracker.start_run): no event object per run.
        self._tracker.start_run(run_id, parent_run_id, kind,
                                _name(serialized, kwargs, str(kind)), _tags(tags),
                                _metadata(metadata), inputs, **extra)

    def _chain_end(self, run_id: UUID, outputs: Any) -> None:
        if self._tracker.unfold(run_id):
            return
        # A Command(goto=...) out of a node is a handoff; anything else ends plainly.
        if type(outputs).__name__ == "Command":
            self._end(run_id, outputs)
        else:
            self._tracker.end_run(run_id, outputs)

    def _end(self, run_id: UUID, outputs: Any = None, error: BaseException | None = None,
             tool: bool = False, **extra: Any) -> None:
        if error is not None and type(error).__name__ in CANCELLATIONS:
            # The consumer stopped (a stream closed early, a task cancelled): not a failure.
            extra["cancelled"], error = True, None
        elif error is not None and type(error).__name__ in CONTROL_FLOW_ERRORS:
            # An interrupt pauses the run (it re-runs on resume); a ParentCommand hands off.
            extra["paused"] = type(error).__name__ != "ParentCommand"
            outputs, error = (error.args[0] if error.args else None), None
        elif tool and error is None and getattr(outputs, "status", None) == "error":
            # handle_tool_error=True: the tool failed, LangChain reports it as an output.
            error = ToolCallFailed("tool returned status=error")
        if error is None:
            name = None
            if tool:
                run = self._tracker.get_run(run_id)
                name = run.name if run is not None else None
            extra["handoffs"] = handoff_targets(name, outputs) if (name or not tool) else ()
        self._tracker.end_run(run_id, outputs, error, **extra)

    # -- chains (incl. LangGraph graphs and nodes) -------------------------------------------

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        try:
            own_tags, meta = _tags(tags), _metadata(metadata)
            if parent_run_id is not None and self._tracker.fold(run_id, parent_run_id,
                                                                own_tags, meta):
                return  # inherits everything, and no sink needs it: a prompt, a parser...
            self._start(_CHAIN, serialized, inputs, run_id, parent_run_id, own_tags, meta,
                        kwargs)
        except Exception as exc:
            self._failed("on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._chain_end(run_id, outputs)
        except Exception as exc:
            self._failed("on_chain_end", exc)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            if not self._tracker.unfold(run_id):
                self._end(run_id, error=error)
        except Exception as exc:
            self._failed("on_chain_error", exc)

    # -- LLMs ------------------------------------------------------------------------------

    def _llm_start(self, serialized: Any, inputs: Any, run_id: UUID,
                   parent_run_id: UUID | None, tags: Any, metadata: Any,
                   kwargs: Mapping[str, Any], system_prompt: str | None) -> None:
        meta = metadata if (type(metadata) is dict or isinstance(metadata, Mapping)) else _EMPTY
        params = kwargs.get("invocation_params")
        params = params if (type(params) is dict or isinstance(params, Mapping)) else _EMPTY
        provider = meta.get("ls_provider")
        model = meta.get("ls_model_name")
        if not (isinstance(model, str) and model):
            model = _model(params)
        # The invocation parameters as LangChain gives them: sinks pick the ones they export.
        self._tracker.start_run(
            run_id, parent_run_id, _LLM, _name(serialized, kwargs, "llm"), _tags(tags),
            meta, inputs, model, provider if isinstance(provider, str) else None, params,
            system_prompt)

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                            **kwargs: Any) -> None:
        try:
            # The system prompt feeds persona rules only: read when rules are configured.
            self._llm_start(serialized, messages, run_id, parent_run_id, tags, metadata, kwargs,
                            _system_prompt(messages) if self._tracker.reads_prompts else None)
        except Exception as exc:
            self._failed("on_chat_model_start", exc)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *,
                     run_id: UUID, parent_run_id: UUID | None = None,
                     tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
        try:
            self._llm_start(serialized, prompts, run_id, parent_run_id, tags, metadata, kwargs,
                            None)
        except Exception as exc:
            self._failed("on_llm_start", exc)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._tracker.first_token(run_id)
        except Exception as exc:
            self._failed("on_llm_new_token", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            try:
                usage, model, calls = read_result(response)
            except Exception as exc:  # an odd provider result must not leave the run open
                self._failed("on_llm_end", exc)
                usage, model, calls = None, None, ()
            self._tracker.end_run(run_id, response, None, usage, model, (), False, False, calls)
        except Exception as exc:
            self._failed("on_llm_end", exc)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            self._failed("on_llm_error", exc)

    # -- tools and retrievers ----------------------------------------------------------------

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, inputs: Any = None,
                      **kwargs: Any) -> None:
        try:
            call_id = kwargs.get("tool_call_id")
            self._start(_TOOL, serialized, inputs if inputs is not None else input_str,
                        run_id, parent_run_id, tags, metadata, kwargs,
                        tool_call_id=call_id if isinstance(call_id, str) and call_id else None)
        except Exception as exc:
            self._failed("on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, output, tool=True)
        except Exception as exc:
            self._failed("on_tool_end", exc)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error, tool=True)
        except Exception as exc:
            self._failed("on_tool_error", exc)

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *,
                           run_id: UUID, parent_run_id: UUID | None = None,
                           tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                           **kwargs: Any) -> None:
        try:
            self._start(_RETRIEVER, serialized, query, run_id, parent_run_id, tags, metadata,
                        kwargs)
        except Exception as exc:
            self._failed("on_retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, documents)
        except Exception as exc:
            self._failed("on_retriever_end", exc)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._end(run_id, error=error)
        except Exception as exc:
            self._failed("on_retriever_error", exc)
