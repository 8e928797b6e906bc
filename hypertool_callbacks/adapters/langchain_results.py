"""What a LangChain callback's outputs say: token usage, the model that answered and the
tool calls asked for (an ``LLMResult``), and where control went (a handoff tool's name or a
LangGraph ``Command``). Plain reads, never raising on odd shapes: absent means None / ()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypertool_callbacks.events import Usage

HANDOFF_PREFIXES = ("transfer_back_to_", "transfer_to_")


def read_result(response: Any) -> tuple[Usage | None, str | None, tuple[str, ...]]:
    """Token usage, response model and the ids of the tool calls asked for, of an
    ``LLMResult``, in one pass: ``usage_metadata`` of the (merged, when streaming) message
    first, then the provider's ``llm_output``; None / () when absent."""
    usage: Usage | None = None
    model: str | None = None
    calls: list[str] = []
    for batch in getattr(response, "generations", None) or ():
        for generation in batch:
            message = getattr(generation, "message", None)
            if message is None:
                continue
            meta = getattr(message, "usage_metadata", None)
            if usage is None and (type(meta) is dict or isinstance(meta, Mapping)):
                usage = _usage_metadata(meta)
            info = getattr(message, "response_metadata", None)
            if model is None and (type(info) is dict or isinstance(info, Mapping)):
                found = info.get("model_name") or info.get("model")
                model = found if isinstance(found, str) else None
            for call in getattr(message, "tool_calls", None) or ():
                call_id = call.get("id") if isinstance(call, Mapping) else None
                if isinstance(call_id, str) and call_id:
                    calls.append(call_id)
    llm_output = getattr(response, "llm_output", None)
    # (None first: an ABC's isinstance check of None costs as much as the rest of a read)
    if llm_output is not None and (type(llm_output) is dict
                                   or isinstance(llm_output, Mapping)):
        if usage is None:
            raw = llm_output.get("token_usage") or llm_output.get("usage")
            if isinstance(raw, Mapping):
                usage = _provider_usage(raw)
        found = llm_output.get("model_name") or llm_output.get("model")
        if isinstance(found, str):
            model = found
    return usage, model, tuple(calls)


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, checked first
        return value if value > 0 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage_metadata(meta: Mapping[str, Any]) -> Usage:
    counts = (_int(meta.get("input_tokens")), _int(meta.get("output_tokens")),
              _int(meta.get("total_tokens")))
    inputs = meta.get("input_token_details")
    outputs = meta.get("output_token_details")
    if not inputs and not outputs:  # most replies: no cache or reasoning details
        return Usage(*counts)
    inputs = inputs if isinstance(inputs, Mapping) else {}
    outputs = outputs if isinstance(outputs, Mapping) else {}
    return Usage(*counts, _int(inputs.get("cache_read")), _int(inputs.get("cache_creation")),
                 _int(outputs.get("reasoning")))


def _provider_usage(raw: Mapping[str, Any]) -> Usage:
    prompt = _int(raw.get("prompt_tokens") or raw.get("input_tokens"))
    completion = _int(raw.get("completion_tokens") or raw.get("output_tokens"))
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
        cache_read_tokens=_int(prompt_details.get("cached_tokens"))
        if isinstance(prompt_details, Mapping) else 0,
        reasoning_tokens=_int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, Mapping) else 0,
    )


def handoff_targets(tool_name: str | None, output: Any) -> tuple[str, ...]:
    """Where control went: a ``transfer_to_<agent>`` tool, or each target of a
    ``Command(goto=...)`` (a node name, a ``Send``, or a list of them), in order, once each."""
    if tool_name:
        for prefix in HANDOFF_PREFIXES:
            if tool_name.startswith(prefix) and len(tool_name) > len(prefix):
                return (tool_name[len(prefix):],)
        return ()
    if type(output).__name__ != "Command":
        return ()
    goto = getattr(output, "goto", None)
    items = goto if isinstance(goto, Sequence) and not isinstance(goto, str) else (goto,)
    targets: list[str] = []
    for item in items:
        node = item if isinstance(item, str) else getattr(item, "node", None)  # a Send
        if isinstance(node, str) and node and not node.startswith("__") and node not in targets:
            targets.append(node)
    return tuple(targets)
