"""Which LlamaIndex spans are units of work (runs), and what a run's start says about them."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.tools.types import BaseTool
from llama_index.core.workflow import Workflow

from hypertool_callbacks.adapters.llamaindex_usage import lookup, readable
from hypertool_callbacks.events import RunKind

_LLM_CALLS = frozenset({"chat", "achat", "stream_chat", "astream_chat", "complete", "acomplete",
                        "stream_complete", "astream_complete"})
_EMBED_CALLS = frozenset({"get_query_embedding", "aget_query_embedding", "get_text_embedding",
                          "aget_text_embedding", "get_text_embedding_batch",
                          "aget_text_embedding_batch", "get_agg_embedding_from_queries",
                          "aget_agg_embedding_from_queries"})
# (base class, methods, run kind, role); first match wins.
_UNITS: tuple[tuple[type, frozenset[str], RunKind, str], ...] = (
    (BaseLLM, _LLM_CALLS, RunKind.LLM, "llm"),
    (BaseEmbedding, _EMBED_CALLS, RunKind.EMBEDDING, "embedding"),
    (BaseTool, frozenset({"call", "acall", "__call__"}), RunKind.TOOL, "tool"),
    (BaseRetriever, frozenset({"retrieve", "aretrieve"}), RunKind.RETRIEVER, "retrieve"),
    (BaseQueryEngine, frozenset({"query", "aquery"}), RunKind.CHAIN, "query"),
    (BaseSynthesizer, frozenset({"synthesize", "asynthesize"}), RunKind.CHAIN, "synthesize"),
    (BaseChatEngine, frozenset({"chat", "achat", "stream_chat", "astream_chat"}), RunKind.CHAIN,
     "chat"),
    (BaseNodePostprocessor, frozenset({"postprocess_nodes", "apostprocess_nodes"}),
     RunKind.CHAIN, "rerank"),
)
_PARAMS = ("temperature", "max_tokens", "top_p", "top_k", "seed")
_MAX_PROMPT_CHARS = 20_000
_CLASSIFIED: dict[tuple[type, str], tuple[RunKind, str] | None] = {}
# What a span is: a unit of work, (run kind, role, its class's name: read once per class, as
# ``__name__`` of a pydantic class goes through its metaclass's ``__getattr__`` hook), a
# workflow's run, maybe a workflow step (a step is a plain function: its span has no instance,
# and says it is a step in its tags), or nothing of ours (None: a transparent span).
WORKFLOW, MAYBE_STEP = "workflow", "step"
Shape = tuple[RunKind, str, str] | str | None
# Run kinds read on every run: on Python 3.11 ``RunKind.LLM`` goes through EnumType's
# __getattr__ hook, several times the cost of a module constant.
LLM, TOOL, CHAIN, EMBEDDING = RunKind.LLM, RunKind.TOOL, RunKind.CHAIN, RunKind.EMBEDDING


def classify(instance: Any, method: str) -> tuple[RunKind, str] | None:
    if instance is None:
        return None
    # isinstance() against these ABCs costs ~1 us each: the answer per class and method is
    # cached (bounded by the classes and methods of the app).
    key = (type(instance), method)
    try:
        return _CLASSIFIED[key]
    except KeyError:
        pass
    found = next(((kind, role) for base, methods, kind, role in _UNITS
                  if method in methods and isinstance(instance, base)), None)
    if len(_CLASSIFIED) < 10_000:
        _CLASSIFIED[key] = found
    return found


def shape(instance: Any, qualified: str) -> Shape:
    """What the span of ``qualified`` (``Owner.method``) on ``instance`` is."""
    method = qualified.rpartition(".")[2]
    unit = classify(instance, method)
    if unit is not None:
        return (unit[0], unit[1], type(instance).__name__)
    if instance is None:
        return MAYBE_STEP
    if method == "run" and isinstance(instance, Workflow):
        return WORKFLOW
    return None


def qualified_name(id_: str) -> str:
    """``AgentWorkflow.setup_agent`` from ``AgentWorkflow.setup_agent-<uuid4>`` (the
    dispatcher's shape: a slice, not a split); any other id: up to its fifth dash from the
    end."""
    if id_[-37:-36] == "-" and id_.count("-", -36) == 4:
        return id_[:-37]
    return id_.rsplit("-", 5)[0]


# The span handler's lookup, per class of the span's instance: None when no span of the class
# can be a unit of work (not a unit's class nor a workflow: every span is transparent, the
# method is not even read), MAYBE_STEP for spans without an instance (functions: only the
# tags tell a step), else {qualified name: shape}, filled from ids of the dispatcher's shape
# (``name-<uuid4>``) only: the handler looks an id up by its slice without checking its uuid.
CLASSES: dict[type, Any] = {}
_UNIT_BASES = (*(base for base, _, _, _ in _UNITS), Workflow)


def shape_of(id_: str, instance: Any) -> Shape:
    """The shape of span ``id_`` the long way (the handler's cache missed); caches it."""
    qualified = qualified_name(id_)
    found = shape(instance, qualified)
    cls = type(instance)
    entry = CLASSES.get(cls, CLASSES)  # (the dict itself: nothing stored yet)
    if entry is CLASSES:
        if instance is None:
            entry = MAYBE_STEP
        elif isinstance(instance, _UNIT_BASES):
            entry = {}
        else:
            entry = None
        if len(CLASSES) < 1_000:
            CLASSES[cls] = entry
    if type(entry) is dict and len(entry) < 1_000 and qualified and qualified == id_[:-37]:
        entry[qualified] = found
    return found


_WORKFLOW_KINDS: dict[type, tuple[bool, bool]] = {}  # class -> (an agent, an AgentWorkflow)


def _workflow_kind(cls: type) -> tuple[bool, bool]:
    # Imported here: the agent package loads on first use; the answer is cached per class (an
    # import statement and two isinstance checks per workflow run otherwise).
    found = _WORKFLOW_KINDS.get(cls)
    if found is None:
        from llama_index.core.agent.workflow import AgentWorkflow, BaseWorkflowAgent

        found = (issubclass(cls, BaseWorkflowAgent), issubclass(cls, AgentWorkflow))
        if len(_WORKFLOW_KINDS) < 1_000:
            _WORKFLOW_KINDS[cls] = found
    return found


def is_agent(instance: Any) -> bool:
    return _workflow_kind(type(instance))[0]


def is_agent_workflow(instance: Any) -> bool:
    return _workflow_kind(type(instance))[1]


_AGENT_FIELD = "current_agent_name"
_EXTRAS: dict[type, bool] = {}  # event class -> its agent name can only be in its extras


def _only_in_extras(cls: type) -> bool:
    """Whether ``getattr(event, "current_agent_name")`` on an instance of ``cls`` always ends in
    the workflow ``Event``'s ``__getattr__`` reading its extras dict (``_data``): no field,
    private attribute or class attribute of that name, and that ``__getattr__``."""
    try:
        from workflows.events import DictLikeModel

        found = (getattr(cls, "__getattr__", None) is DictLikeModel.__getattr__
                 and _AGENT_FIELD not in cls.model_fields  # type: ignore[attr-defined]
                 and _AGENT_FIELD not in cls.__private_attributes__  # type: ignore[attr-defined]
                 and not hasattr(cls, _AGENT_FIELD))
    except Exception:  # another workflows layout: the plain getattr
        found = False
    if len(_EXTRAS) < 1_000:
        _EXTRAS[cls] = found
    return found


def current_agent_name(event: Any) -> Any:
    """``event.current_agent_name`` (None when it has none). An event without that field (a
    start event, a tool call) answers through two ``__getattr__`` hooks and an
    AttributeError: its extras dict is read directly instead, same answer."""
    if event is None:
        return None
    cls = type(event)
    extras = _EXTRAS.get(cls)
    if extras is None:
        extras = _only_in_extras(cls)
    if extras:
        data = getattr(event, "__pydantic_private__", None)
        data = data.get("_data") if type(data) is dict else None
        if type(data) is dict and _AGENT_FIELD not in event.__dict__:
            return data.get(_AGENT_FIELD)
    return getattr(event, _AGENT_FIELD, None)


def unit_name(instance: Any, role: str) -> str:
    if role == "tool":
        try:
            name = instance.metadata.get_name()
        except Exception:
            name = None
        if isinstance(name, str) and name:
            return name
    return type(instance).__name__


def inputs_of(kind: RunKind, arguments: dict[str, Any]) -> Any:
    if kind is LLM:
        if "messages" in arguments:
            return arguments["messages"]
        prompt = arguments.get("prompt")
        args = arguments.get("args")  # llm_completion_callback's wrapper takes *args
        if prompt is None and isinstance(args, tuple) and args:
            prompt = args[0]
        return [prompt] if prompt is not None else None
    if kind is TOOL:
        kwargs = arguments.get("kwargs")
        if isinstance(kwargs, dict):  # without the workflow Context a handoff tool receives
            return {k: v for k, v in kwargs.items() if k != "ctx"}
        return arguments.get("input", arguments.get("args"))
    for key in ("str_or_query_bundle", "query", "query_bundle", "message", "text", "texts",
                "nodes"):
        if key in arguments:
            return arguments[key]
    return None


_PARAMS_OF: dict[type, tuple[str, ...]] = {}  # class -> readable(class, _PARAMS)
_NUMBERS = (int, float)  # (``int | float`` builds a union object at every evaluation)


def parameters_of(llm: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    cls = type(llm)
    keys = _PARAMS_OF.get(cls)
    if keys is None:
        keys = readable(cls, _PARAMS)
        if len(_PARAMS_OF) < 1_000:
            _PARAMS_OF[cls] = keys
    for key in keys:
        value = lookup(llm, key)  # not getattr: a pydantic miss raises twice inside pydantic
        if isinstance(value, _NUMBERS) and not isinstance(value, bool):
            found[key] = value
    return found


def system_prompt_of(arguments: dict[str, Any], llm: Any) -> str | None:
    parts: list[str] = []
    messages = arguments.get("messages")
    if isinstance(messages, (list, tuple)):
        for message in messages:
            role = getattr(message, "role", None)
            if getattr(role, "value", role) == "system":
                content = getattr(message, "content", None)
                if isinstance(content, str):
                    parts.append(content)
    own = getattr(llm, "system_prompt", None)
    if isinstance(own, str):
        parts.append(own)
    text = " ".join(parts)
    return text[:_MAX_PROMPT_CHARS] or None
