"""Prompt/completion content for spans, in the GenAI message shape.

Duck-typed (``.type``, ``.content``, ``.tool_calls``...), so no framework import is needed.
Only used when content capture is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypertool_callbacks import semconv as sc
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.events import RunKind

Put = Callable[[str, Any], None]  # sets one content attribute (encoded, masked, cut)
_LLM, _TOOL, _RETRIEVER = RunKind.LLM, RunKind.TOOL, RunKind.RETRIEVER

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "tool", "developer": "system"}


def content_in(put: Put, run: Run) -> None:
    """A run's inputs, at its start, under the attribute its kind uses."""
    value, kind = run.inputs, run.kind
    if kind is _LLM:
        messages = [encode_message(m) for batch in as_sequence(value)
                    for m in (as_sequence(batch) if not isinstance(batch, str) else [batch])]
        put(sc.GEN_AI_INPUT_MESSAGES, messages)
    elif kind is _TOOL:
        put(sc.GEN_AI_TOOL_CALL_ARGUMENTS, value)
    elif kind is _RETRIEVER:
        put(sc.GEN_AI_RETRIEVAL_QUERY_TEXT, value)
    else:
        put(sc.HT_INPUT, value)


def content_out(put: Put, run: Run) -> None:
    """A run's outputs, at its (successful) end."""
    value, kind = run.outputs, run.kind
    if kind is _LLM:
        generations = getattr(value, "generations", None)
        if generations is not None:
            put(sc.GEN_AI_OUTPUT_MESSAGES,
                [encode_generation(g) for batch in generations for g in batch])
    elif kind is _TOOL:
        put(sc.GEN_AI_TOOL_CALL_RESULT, getattr(value, "content", value))  # a ToolMessage's
    elif kind is _RETRIEVER:
        put(sc.GEN_AI_RETRIEVAL_DOCUMENTS, value)
    else:
        put(sc.HT_OUTPUT, value)


def as_sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else [value]


def _is_message(value: Any) -> bool:
    return isinstance(getattr(value, "type", None), str) and hasattr(value, "content")


def _role(message: Any) -> str:
    kind = str(message.type)
    if kind.endswith("MessageChunk"):
        kind = kind[: -len("MessageChunk")].lower()
    if kind == "chat":
        return str(getattr(message, "role", "user"))
    return _ROLES.get(kind, kind)


def _parts(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[Any] = []
    for block in as_sequence(content):
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append({"type": "text", "content": block.get("text", "")})
        else:
            parts.append(to_plain(block))
    return parts


def encode_message(message: Any) -> Any:
    """A message in the GenAI convention's shape: ``{"role", "parts": [...]}``."""
    if isinstance(message, str):
        return {"role": "user", "parts": _parts(message)}
    if not _is_message(message):
        return to_plain(message)
    role = _role(message)
    if role == "tool":
        return {"role": role, "parts": [{
            "type": "tool_call_response", "id": getattr(message, "tool_call_id", None),
            "response": to_plain(message.content)}]}
    parts = _parts(message.content)
    for call in getattr(message, "tool_calls", None) or ():
        if isinstance(call, Mapping):
            parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                          "arguments": to_plain(call.get("args"))})
    return {"role": role, "parts": parts}


def encode_generation(generation: Any) -> Any:
    message = getattr(generation, "message", None)
    out = (encode_message(message) if message is not None else
           {"role": "assistant", "parts": _parts(getattr(generation, "text", ""))})
    info = getattr(generation, "generation_info", None)
    reason = info.get("finish_reason") if isinstance(info, Mapping) else None
    if reason is None and message is not None:
        meta = getattr(message, "response_metadata", None)
        reason = meta.get("finish_reason") if isinstance(meta, Mapping) else None
    if isinstance(reason, str):
        out["finish_reason"] = reason
    return out


def to_plain(value: Any, depth: int = 0) -> Any:
    """JSON-ready structure, bounded in depth and width."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth > 8:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, depth + 1) for k, v in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [to_plain(v, depth + 1) for v in value[:100]]
    if _is_message(value):
        return encode_message(value)
    page = getattr(value, "page_content", None)
    if isinstance(page, str):  # a retrieved document
        doc: dict[str, Any] = {"content": page}
        if getattr(value, "id", None) is not None:
            doc["id"] = str(value.id)
        return doc
    return str(value)


# -- configuration --------------------------------------------------------------------------

