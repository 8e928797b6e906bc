"""A run's Langfuse observation fields, and their metadata as span attributes.

Metadata strings are JSON-encoded here as the SDK encodes them (``json.dumps(value,
ensure_ascii=False)`` is the JSON string encoder itself), without the SDK's per-value
encoder object; other values still go through the SDK's builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

from langfuse import LangfuseOtelSpanAttributes

from hypertool_callbacks import semconv as sc
from hypertool_callbacks.context.inference import THREAD_KEY
from hypertool_callbacks.context.runs import UNKNOWN, Run, Status
from hypertool_callbacks.events import Usage
from hypertool_callbacks.sinks.langfuse_content import dumps

A = LangfuseOtelSpanAttributes
_PREFIX = A.OBSERVATION_METADATA + "."
USER_KEY = "langfuse_user_id"
SESSION_KEY = "langfuse_session_id"
TAGS_KEY = "langfuse_tags"
_MAX_ATTR = 200  # Langfuse drops longer user/session/tag values
MAX_STATUS = 1000
CANCELLED = "cancelled by the caller"
EVICTED = "evicted: the run had not ended within hypertool's bounds"


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)[:_MAX_ATTR]
    return None


def _lookup(run: Run, root: Run, key: str) -> Any:
    # LangChain copies metadata to child runs; the root is the fallback for other adapters.
    value = run.metadata.get(key)
    return value if value is not None else root.metadata.get(key)


def trace_attributes(run: Run, persona_as_user: bool) -> dict[str, Any]:
    """Trace name, user, session and tags: set on every observation, from the run itself."""
    root = run.root  # a walk up the tree: once, not per key
    user = run.persona if persona_as_user and run.persona != UNKNOWN else None
    user = user or _text(_lookup(run, root, USER_KEY))
    session = _text(_lookup(run, root, SESSION_KEY)) or _text(_lookup(run, root, THREAD_KEY))
    tags = [f"workflow:{run.workflow}"] if run.workflow != UNKNOWN else []
    if run.persona != UNKNOWN:
        tags.append(f"persona:{run.persona}")
    extra_tags = _lookup(run, root, TAGS_KEY)
    if isinstance(extra_tags, list | tuple):
        tags.extend(t[:_MAX_ATTR] for t in extra_tags if isinstance(t, str) and t)
    attributes: dict[str, Any] = {
        A.TRACE_NAME: run.workflow if run.workflow != UNKNOWN else root.name,
    }
    if user:
        attributes[A.TRACE_USER_ID] = user
    if session:
        attributes[A.TRACE_SESSION_ID] = session
    if tags:
        attributes[A.TRACE_TAGS] = tags
    return attributes


_SAFE_INT = 2**53 - 1  # the SDK's serializer writes larger ints as strings


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INT <= value <= _SAFE_INT)
    if kind is float:
        return math.isfinite(value)
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    return False


def sdk_json(value: Any) -> Any:
    """A flat dict the SDK would serialise (``json.dumps(value, cls=EventSerializer)``), as
    that text: for exact str keys and plain values its encoder hands ``json.dumps`` an equal
    dict, so the text is ``json.dumps(value)``. Anything else is returned for the SDK to do."""
    if type(value) is dict and all(type(key) is str and _plain(item)
                                   for key, item in value.items()):
        return dumps(value)
    return value


def usage_details(usage: Usage) -> dict[str, int]:
    """Langfuse usage keys. Details are split out of input/output, as Langfuse's own
    integrations do, so that summing the keys (cost, totals) counts no token twice."""
    cache_read, cache_creation = usage.cache_read_tokens, usage.cache_creation_tokens
    details = {
        "input": max(0, usage.input_tokens - cache_read - cache_creation),
        "output": max(0, usage.output_tokens - usage.reasoning_tokens),
        "total": usage.total_tokens or usage.input_tokens + usage.output_tokens,
        "input_cache_read": cache_read,
        "input_cache_creation": cache_creation,
        "output_reasoning": usage.reasoning_tokens,
    }
    return {key: value for key, value in details.items()
            if value or key in ("input", "output", "total")}


def metadata(run: Run) -> dict[str, Any]:
    values: dict[str, Any] = {
        "persona": run.persona, "stage": run.stage, "workflow": run.workflow,
        "agent": run.agent, "gate": run.gate, "gate_result": run.gate_result,
        "handoff_to": list(run.handoff_to) or None,
    }
    if run.usage is not None and run.usage.estimated:
        values["usage_estimated"] = True
    if run.status is Status.EVICTED:
        values["status"] = Status.EVICTED.value
    return {key: value for key, value in values.items() if value is not None}


def llm_input(inputs: Any) -> Any:
    # One prompt (or one message list) per call in practice: drop the batch level.
    if isinstance(inputs, list) and len(inputs) == 1:
        return inputs[0]
    return inputs


def llm_output(outputs: Any) -> Any:
    generations = getattr(outputs, "generations", None)
    if not isinstance(generations, list):
        return outputs
    items = [getattr(g, "message", None) or getattr(g, "text", None)
             for batch in generations for g in batch]
    return items[0] if len(items) == 1 else items


def to_datetime(ns: int) -> datetime:
    # Integer arithmetic: a float of ns since 1970 is off by a microsecond now and then.
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rest // 1000)


def metadata_attributes(values: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``langfuse.observation.metadata.<key>`` attributes of the plain-string values, and
    the other values (for the SDK's builder)."""
    attributes: dict[str, str] = {}
    rest: dict[str, Any] = {}
    for key, value in values.items():
        if type(value) is str:
            attributes[_PREFIX + key] = encode_basestring(value)
        else:
            rest[key] = value
    return attributes, rest


def observation_fields(run: Run, kind: str,
                       content: Callable[[Any], str | None]) -> dict[str, Any]:
    """The keyword arguments of the SDK's attribute builder for a finished run (the live
    path; ``content`` turns an input or output into its text)."""
    llm = kind in ("generation", "embedding")
    fields: dict[str, Any] = {
        "input": content(llm_input(run.inputs) if llm else run.inputs),
        "output": content(llm_output(run.outputs) if llm else run.outputs),
        "metadata": metadata(run),
    }
    if run.error is not None:
        fields["level"] = "ERROR"
        fields["status_message"] = f"{type(run.error).__name__}: {run.error}"[:MAX_STATUS]
    elif run.status is Status.CANCELLED:
        fields["level"] = "WARNING"
        fields["status_message"] = CANCELLED
    elif run.status is Status.EVICTED:
        fields["level"] = "WARNING"
        fields["status_message"] = EVICTED
    if llm:
        fields["model"] = run.response_model or run.model
        fields["model_parameters"] = {
            key: value for key, value in run.parameters.items()
            if value is not None and (key in sc.REQUEST_PARAMETERS or key == "stop")} or None
        # A call delegating to an inner one: the inner generation carries the usage.
        fields["usage_details"] = (usage_details(run.usage)
                                   if run.usage and not run.usage_in_child else None)
        cost = run.cost
        if cost is not None:  # our price, so that Langfuse does not guess one from the name
            fields["cost_details"] = {"input": cost.input_usd, "output": cost.output_usd,
                                      "total": cost.total_usd}
        if run.first_token_ns is not None:
            fields["completion_start_time"] = to_datetime(run.first_token_ns)
    return fields
