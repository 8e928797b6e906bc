"""A finished run's Langfuse span attributes in one pass, for the sink's direct path.

Why: the live path builds them in steps (trace attributes, the fields dict, the metadata
split, JSON of the dict fields, the SDK's attribute builder, merges), a dozen calls and as
many intermediate dicts per observation. :class:`ObservationAttributes` writes the same
dict, with the same keys, values and order, directly: the tests run the same workloads
through both paths and compare what the receiver gets, byte for byte. Values the SDK would
serialise in an unusual way (datetimes, non-string metadata, dicts with unusual values) are
still serialised by the SDK's own functions.

Most attributes repeat from run to run (trace name, user, session, tags, type, metadata):
those come in two blocks, each built once per distinct set of values with its OTLP bytes
(when an encoder is given), its media pre-check and whether the SDK's cleaning would keep
it as it is. Per run then: the block lookups, the content, the generation's own fields.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any, cast

from langfuse import LangfuseOtelSpanAttributes

from hypertool_callbacks import semconv as sc
from hypertool_callbacks.context.inference import THREAD_KEY
from hypertool_callbacks.context.runs import UNKNOWN, Run, Status
from hypertool_callbacks.sinks.langfuse_direct import plain_values
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
from hypertool_callbacks.sinks.langfuse_media import attributes_may_hold_media, may_hold_media
from hypertool_callbacks.sinks.langfuse_wire import WireEncoder

try:  # the SDK's serialisers behind its attribute builders (a private module of 5.x)
    from langfuse._client.attributes import _serialize, _serialize_metadata_value

    AVAILABLE = True
except ImportError:  # pragma: no cover - another SDK layout: the sink's live path then
    AVAILABLE = False

A = LangfuseOtelSpanAttributes
_MAX_ATTR = 200  # as langfuse_fields: Langfuse drops longer tag values
_BLOCKS_MAX = 1024  # distinct blocks kept, per kind of block
_META = A.OBSERVATION_METADATA + "."
_META_KEYS = tuple(_META + key for key in (
    "persona", "stage", "workflow", "agent", "gate", "gate_result", "handoff_to",
    "usage_estimated", "status"))
_INPUT, _OUTPUT = A.OBSERVATION_INPUT, A.OBSERVATION_OUTPUT
_COUNTS = (int,) * 6  # the types of a Usage's counts that its JSON is kept for

Pairs = tuple[tuple[str, Any], ...]
_ROOT: Pairs = (("langfuse.internal.as_root", True), ("langfuse.internal.is_app_root", True))
Block = tuple[Pairs, bytes | None, bool, bool]  # pairs, their OTLP bytes, media, plain
Built = tuple[dict[str, Any], str | None, bytes | None, bool, bool]
"""The attributes; the status message of an ERROR level (else None); their OTLP bytes, in
order (None: not written); whether any may hold media; whether all are plain (kept as
they are by the SDK's cleaning, see langfuse_direct.plain_values)."""


def _json(value: Any) -> Any:
    """``_serialize(sdk_json(value))``: a plain dict as its JSON text, anything else the
    SDK's way (None stays None)."""
    return _serialize(sdk_json(value))


class ObservationAttributes:
    """Builds the attributes (and the error message) of one sink's finished observations;
    with ``encoder``, their OTLP bytes too."""

    def __init__(self, persona_as_user: bool, environment: Any, release: Any,
                 content: Callable[[Any], str | None], encoder: WireEncoder | None) -> None:
        self._persona_as_user = persona_as_user
        self._constant: Pairs = tuple(  # as the sink: set only when truthy
            (key, value) for key, value in ((A.ENVIRONMENT, environment),
                                            (A.RELEASE, release)) if value)
        self._content = content
        self._encoder = encoder
        self._tags: dict[tuple[str, str], tuple[str, ...]] = {}
        self._heads: dict[tuple[Any, ...], Block] = {}
        self._metas: dict[tuple[Any, ...], Block] = {}
        self._usages: dict[tuple[int, ...], Any] = {}

    def build(self, run: Run, kind: str, root: bool) -> Built:
        """The attributes, in the order the live path sets them (see :data:`Built`)."""
        head, message = self._head(run, kind, root)
        attributes = dict(head[0])
        parts: list[bytes | None] = [head[1]]
        media, plain = head[2], head[3]
        llm = kind == "generation" or kind == "embedding"
        encoder = self._encoder
        for key, value in ((_INPUT, llm_input(run.inputs) if llm else run.inputs),
                           (_OUTPUT, llm_output(run.outputs) if llm else run.outputs)):
            text = self._content(value)
            if text is not None:
                attributes[key] = text
                # A str (subclass) from content(): plain; may_hold_media(text), inline.
                if not media and ("inlineData" in text or ("data" in text and (
                        "data:" in text or "inline_data" in text or '"data"' in text))):
                    media = True
                if encoder is not None:
                    try:
                        parts.append(encoder.text_pair(key, text))
                    except Exception:  # left to the SDK's encoder: no bytes for this span
                        parts.append(None)
        if llm:
            for key, value in self._generation(run):
                attributes[key] = value
                media = media or may_hold_media(value)
                plain = plain and type(value) is str  # the model name may be anything
                if encoder is not None:
                    try:
                        parts.append(encoder.pair(key, value))
                    except Exception:  # left to the SDK's encoder: no bytes for this span
                        parts.append(None)
        meta = self._metadata(run)
        attributes.update(meta[0])
        parts.append(meta[1])
        wire = (b"".join(cast(list[bytes], parts))
                if encoder is not None and None not in parts else None)
        return attributes, message, wire, media or meta[2], plain and meta[3]

    def _block(self, pairs: Pairs) -> Block:
        attributes = dict(pairs)
        wire = None
        if self._encoder is not None:
            try:
                wire = b"".join([self._encoder.pair(key, value) for key, value in pairs])
            except Exception:  # a value the encoder leaves to the SDK's: no bytes then
                wire = None
        return (pairs, wire, attributes_may_hold_media(attributes),
                plain_values(attributes.values()))

    def _head(self, run: Run, kind: str, root: bool) -> tuple[Block, str | None]:
        """Root marks, trace attributes (langfuse_fields.trace_attributes), environment,
        release, then the SDK builder's type, level and status message; and the message of
        an ERROR level."""
        top = run.root
        persona, workflow, metadata = run.persona, run.workflow, run.metadata
        name = workflow if workflow != UNKNOWN else top.name
        user = persona if self._persona_as_user and persona != UNKNOWN else None
        # _text(None) is None: its frame only for values.
        if not user:
            value = metadata.get(USER_KEY)
            if value is None:
                value = top.metadata.get(USER_KEY)
            user = None if value is None else _text(value)
        value = metadata.get(SESSION_KEY)
        if value is None:
            value = top.metadata.get(SESSION_KEY)
        session = None if value is None else _text(value)
        if not session:
            value = metadata.get(THREAD_KEY)
            if value is None:
                value = top.metadata.get(THREAD_KEY)
            session = None if value is None else _text(value)
        tags = self._tags.get((workflow, persona))
        if tags is None:  # a tuple, as BoundedAttributes would make of the live path's list
            found = [f"workflow:{workflow}"] if workflow != UNKNOWN else []
            if persona != UNKNOWN:
                found.append(f"persona:{persona}")
            if len(self._tags) >= _BLOCKS_MAX:
                self._tags.clear()
            tags = self._tags[(workflow, persona)] = tuple(found)
        value = metadata.get(TAGS_KEY)
        extra = value if value is not None else top.metadata.get(TAGS_KEY)
        if isinstance(extra, list | tuple):
            tags += tuple(t[:_MAX_ATTR] for t in extra if isinstance(t, str) and t)
        level = message = None
        if run.error is not None:
            level, message = "ERROR", f"{type(run.error).__name__}: {run.error}"[:MAX_STATUS]
        elif run.status is Status.CANCELLED:
            level, message = "WARNING", CANCELLED
        elif run.status is Status.EVICTED:
            level, message = "WARNING", EVICTED
        # The types too: equal values of another type (a str subclass) are other values.
        key = (root, name, type(name), user, type(user), session, tags, kind, level, message)
        try:
            block = self._heads.get(key)
        except TypeError:  # an unhashable name: built each time
            block = None
        error = message if level == "ERROR" else None
        if block is not None:
            return block, error
        pairs: list[tuple[str, Any]] = [*_ROOT] if root else []
        pairs.append((A.TRACE_NAME, name))
        if user:
            pairs.append((A.TRACE_USER_ID, user))
        if session:
            pairs.append((A.TRACE_SESSION_ID, session))
        if tags:
            pairs.append((A.TRACE_TAGS, tags))
        pairs += self._constant
        pairs.append((A.OBSERVATION_TYPE, kind))
        if level is not None:
            pairs += ((A.OBSERVATION_LEVEL, level), (A.OBSERVATION_STATUS_MESSAGE, message))
        block = self._block(tuple(pairs))
        try:
            if len(self._heads) >= _BLOCKS_MAX:
                self._heads.clear()
            self._heads[key] = block
        except TypeError:
            pass
        return block, error

    def _generation(self, run: Run) -> list[tuple[str, Any]]:
        """The SDK builder's generation fields after input and output."""
        found: list[tuple[str, Any]] = []
        model = run.response_model or run.model
        if model is not None:
            found.append((A.OBSERVATION_MODEL, model))
        usage = run.usage
        if usage and not run.usage_in_child:
            # usage_details reads these counts only: its JSON once per set of counts.
            counts = (usage.input_tokens, usage.output_tokens, usage.total_tokens,
                      usage.cache_read_tokens, usage.cache_creation_tokens,
                      usage.reasoning_tokens)
            exact = tuple(map(type, counts)) == _COUNTS  # 1 == 1.0 == True: ints only
            value = self._usages.get(counts) if exact else None
            if value is None:
                value = _json(usage_details(usage))
                if exact:
                    if len(self._usages) >= _BLOCKS_MAX:
                        self._usages.clear()
                    self._usages[counts] = value
            if value is not None:
                found.append((A.OBSERVATION_USAGE_DETAILS, value))
        cost = run.cost
        if cost is not None:
            value = _json({"input": cost.input_usd, "output": cost.output_usd,
                           "total": cost.total_usd})
            if value is not None:
                found.append((A.OBSERVATION_COST_DETAILS, value))
        if run.first_token_ns is not None:
            value = _serialize(to_datetime(run.first_token_ns))
            if value is not None:
                found.append((A.OBSERVATION_COMPLETION_START_TIME, value))
        parameters = {key: value for key, value in run.parameters.items()
                      if value is not None and (key in sc.REQUEST_PARAMETERS or key == "stop")}
        if parameters:
            value = _json(parameters)
            if value is not None:
                found.append((A.OBSERVATION_MODEL_PARAMETERS, value))
        return found

    def _metadata(self, run: Run) -> Block:
        usage = run.usage
        values = (run.persona, run.stage, run.workflow, run.agent, run.gate, run.gate_result,
                  run.handoff_to, usage is not None and usage.estimated,
                  run.status is Status.EVICTED)
        # The types too: a str subclass is written another way (and in another place).
        key = (values, tuple(map(type, values)))
        try:
            block = self._metas.get(key)
        except TypeError:  # unhashable values: built each time
            block = None
        if block is not None:
            return block
        # The SDK's builder writes the non-string values (its own JSON), then the sink adds
        # the strings (langfuse_fields.metadata_attributes): two passes in that order.
        found = (*values[:6], list(values[6]) or None, True if values[7] else None,
                 Status.EVICTED.value if values[8] else None)
        pairs: list[tuple[str, Any]] = []
        strings: list[tuple[str, Any]] = []
        for name, value in zip(_META_KEYS, found, strict=True):
            if value is None:
                continue
            if type(value) is str:
                strings.append((name, encode_basestring(value)))
            else:
                pairs.append((name, _serialize_metadata_value(value)))
        block = self._block(tuple(pairs + strings))
        try:
            if len(self._metas) >= _BLOCKS_MAX:
                self._metas.clear()
            self._metas[key] = block
        except TypeError:
            pass
        return block
