"""A finished run's Langfuse span attributes in one pass, for the sink's direct path.

Why: the live path builds them in steps (trace attributes, the fields dict, the metadata
split, JSON of the dict fields, the SDK's attribute builder, merges), a dozen calls and as
many intermediate dicts per observation. :class:`ObservationAttributes` writes the same
dict, with the same keys, values and order, directly: the tests run the same workloads
through both paths and compare what the receiver gets, byte for byte. Values the SDK would
serialise in an unusual way (datetimes, non-string metadata, dicts with unusual values) are
still serialised by the SDK's own functions.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from langfuse import LangfuseOtelSpanAttributes

from hypertool_callbacks import semconv as sc
from hypertool_callbacks.context.inference import THREAD_KEY
from hypertool_callbacks.context.runs import UNKNOWN, Run, Status
from hypertool_callbacks.sinks.langfuse_fields import (
    CANCELLED,
    EVICTED,
    MAX_STATUS,
    SESSION_KEY,
    TAGS_KEY,
    USER_KEY,
    _text,
    llm_input,
    llm_output,
    sdk_json,
    to_datetime,
    usage_details,
)

try:  # the SDK's serialisers behind its attribute builders (a private module of 5.x)
    from langfuse._client.attributes import _serialize, _serialize_metadata_value

    AVAILABLE = True
except ImportError:  # pragma: no cover - another SDK layout: the sink's live path then
    AVAILABLE = False

A = LangfuseOtelSpanAttributes
_MAX_ATTR = 200  # as langfuse_fields: Langfuse drops longer tag values
_ROOT = {"langfuse.internal.as_root": True, "langfuse.internal.is_app_root": True}
_META = A.OBSERVATION_METADATA + "."
_META_KEYS = tuple(_META + key for key in (
    "persona", "stage", "workflow", "agent", "gate", "gate_result", "handoff_to",
    "usage_estimated", "status"))


def _json(value: Any) -> Any:
    """``_serialize(sdk_json(value))``: a plain dict as its JSON text, anything else the
    SDK's way (None stays None)."""
    return _serialize(sdk_json(value))


class ObservationAttributes:
    """Builds the attributes (and the error message) of one sink's finished observations."""

    def __init__(self, persona_as_user: bool, environment: Any, release: Any,
                 content: Callable[[Any], str | None]) -> None:
        self._persona_as_user = persona_as_user
        self._environment = environment or None  # as the sink: set only when truthy
        self._release = release or None
        self._content = content
        self._tags: dict[tuple[str, str], tuple[str, ...]] = {}

    def build(self, run: Run, kind: str, root: bool) -> tuple[dict[str, Any], str | None]:
        """The attributes, in the order the live path sets them, and the status message of
        an ERROR level (None otherwise)."""
        top = run.root
        persona, workflow, metadata = run.persona, run.workflow, run.metadata
        attributes: dict[str, Any] = dict(_ROOT) if root else {}
        # Trace attributes (langfuse_fields.trace_attributes).
        attributes[A.TRACE_NAME] = workflow if workflow != UNKNOWN else top.name
        user = persona if self._persona_as_user and persona != UNKNOWN else None
        if not user:
            value = metadata.get(USER_KEY)
            user = _text(value if value is not None else top.metadata.get(USER_KEY))
        if user:
            attributes[A.TRACE_USER_ID] = user
        value = metadata.get(SESSION_KEY)
        session = _text(value if value is not None else top.metadata.get(SESSION_KEY))
        if not session:
            value = metadata.get(THREAD_KEY)
            session = _text(value if value is not None else top.metadata.get(THREAD_KEY))
        if session:
            attributes[A.TRACE_SESSION_ID] = session
        tags = self._tags.get((workflow, persona))
        if tags is None:  # a tuple, as BoundedAttributes would make of the live path's list
            found = [f"workflow:{workflow}"] if workflow != UNKNOWN else []
            if persona != UNKNOWN:
                found.append(f"persona:{persona}")
            if len(self._tags) >= 1024:
                self._tags.clear()
            tags = self._tags[(workflow, persona)] = tuple(found)
        value = metadata.get(TAGS_KEY)
        extra = value if value is not None else top.metadata.get(TAGS_KEY)
        if isinstance(extra, list | tuple):
            tags += tuple(t[:_MAX_ATTR] for t in extra if isinstance(t, str) and t)
        if tags:
            attributes[A.TRACE_TAGS] = tags
        if self._environment:
            attributes[A.ENVIRONMENT] = self._environment
        if self._release:
            attributes[A.RELEASE] = self._release
        # The SDK's builder: type, level, status message, input, output (, generation fields).
        attributes[A.OBSERVATION_TYPE] = kind
        message = None
        if run.error is not None:
            message = f"{type(run.error).__name__}: {run.error}"[:MAX_STATUS]
            attributes[A.OBSERVATION_LEVEL] = "ERROR"
            attributes[A.OBSERVATION_STATUS_MESSAGE] = message
        elif run.status is Status.CANCELLED:
            attributes[A.OBSERVATION_LEVEL] = "WARNING"
            attributes[A.OBSERVATION_STATUS_MESSAGE] = CANCELLED
        elif run.status is Status.EVICTED:
            attributes[A.OBSERVATION_LEVEL] = "WARNING"
            attributes[A.OBSERVATION_STATUS_MESSAGE] = EVICTED
        llm = kind == "generation" or kind == "embedding"
        text = self._content(llm_input(run.inputs) if llm else run.inputs)
        if text is not None:
            attributes[A.OBSERVATION_INPUT] = text
        text = self._content(llm_output(run.outputs) if llm else run.outputs)
        if text is not None:
            attributes[A.OBSERVATION_OUTPUT] = text
        if llm:
            self._generation(run, attributes)
        self._metadata(run, attributes)
        return attributes, message

    @staticmethod
    def _generation(run: Run, attributes: dict[str, Any]) -> None:
        model = run.response_model or run.model
        if model is not None:
            attributes[A.OBSERVATION_MODEL] = model
        if run.usage and not run.usage_in_child:
            value = _json(usage_details(run.usage))
            if value is not None:
                attributes[A.OBSERVATION_USAGE_DETAILS] = value
        cost = run.cost
        if cost is not None:
            value = _json({"input": cost.input_usd, "output": cost.output_usd,
                           "total": cost.total_usd})
            if value is not None:
                attributes[A.OBSERVATION_COST_DETAILS] = value
        if run.first_token_ns is not None:
            value = _serialize(to_datetime(run.first_token_ns))
            if value is not None:
                attributes[A.OBSERVATION_COMPLETION_START_TIME] = value
        parameters = {key: value for key, value in run.parameters.items()
                      if value is not None and (key in sc.REQUEST_PARAMETERS or key == "stop")}
        if parameters:
            value = _json(parameters)
            if value is not None:
                attributes[A.OBSERVATION_MODEL_PARAMETERS] = value

    @staticmethod
    def _metadata(run: Run, attributes: dict[str, Any]) -> None:
        # The SDK's builder writes the non-string values (its own JSON), then the sink adds
        # the strings (langfuse_fields.metadata_attributes): two passes in that order.
        usage = run.usage
        values = (run.persona, run.stage, run.workflow, run.agent, run.gate, run.gate_result,
                  list(run.handoff_to) or None,
                  True if usage is not None and usage.estimated else None,
                  Status.EVICTED.value if run.status is Status.EVICTED else None)
        strings = []
        for key, value in zip(_META_KEYS, values, strict=True):
            if value is None:
                continue
            if type(value) is str:
                strings.append((key, value))
            else:
                attributes[key] = _serialize_metadata_value(value)
        for key, value in strings:
            attributes[key] = encode_basestring(value)
