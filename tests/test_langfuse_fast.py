"""The direct path's shortcuts against the steps they replace, value for value and byte for
byte: the one-pass observation attributes (langfuse_observation) against the live path's
builders, the spans' own wire bytes (langfuse_wire.WireReadySpan) against the SDK's
encoder, and the joined media pre-check (langfuse_media) against the per-value one.
"""

from __future__ import annotations

import datetime
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf.internal import encoder as _encoder
from langchain_core.messages import AIMessage, HumanMessage
from opentelemetry.exporter.otlp.proto.common._internal import _encode_attributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind
from prometheus_client import CollectorRegistry

from hypertool_callbacks.context.cost import Cost
from hypertool_callbacks.context.inference import THREAD_KEY
from hypertool_callbacks.context.runs import Run, Status
from hypertool_callbacks.events import RunKind, Usage
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.langfuse_content import dumps
from hypertool_callbacks.sinks.langfuse_direct import (
    clean_attributes,
    plain_values,
    root_attributes,
)
from hypertool_callbacks.sinks.langfuse_media import attributes_may_hold_media, may_hold_media
from hypertool_callbacks.sinks.langfuse_ready import _ASSIGNS, UNSET, WireReadySpan, ready_span
from hypertool_callbacks.sinks.langfuse_wire import WireEncoder
from tests.langfuse_support import langfuse_env
from tests.test_langfuse_direct import IMAGE

pytestmark = pytest.mark.usefixtures("reset_langfuse")


class _Text(str):
    """A str subclass, as LangChain's text accessor is."""


def _run(kind: RunKind = RunKind.CHAIN, parent: Run | None = None, **fields: Any) -> Run:
    base: dict[str, Any] = {"run_id": f"r{random.random()}", "parent": parent, "kind": kind,
                            "name": "step", "tags": (), "metadata": {}, "start_ns": 10**18,
                            "start_mono": 1.0, "end_ns": 10**18 + 5000, "end_mono": 2.0}
    base.update(fields)
    return Run(**base)


def _runs() -> list[Run]:
    """Runs covering every branch of the attributes: kinds, levels, metadata, usage, cost."""
    root = _run(name="flow", persona="reviewer", stage="review", workflow="ship",
                metadata={"langfuse_user_id": "u-1", "langfuse_session_id": "s-1",
                          "langfuse_tags": ["extra", "", 3, "t" * 300]},
                inputs={"q": "hi ünï", "when": datetime.date(2024, 1, 2)}, outputs="ok")
    usage = Usage(12, 5, 17, cache_read_tokens=2, reasoning_tokens=1)
    return [
        root,
        _run(parent=root, name="prompt", inputs={"q": "hi"}, outputs=[HumanMessage("hi")],
             persona="reviewer", workflow="ship", metadata={THREAD_KEY: "thread-9"}),
        _run(RunKind.LLM, parent=root, inputs=[[HumanMessage("hi")]], outputs=AIMessage("x"),
             model="gpt-4o", response_model="gpt-4o-2024", usage=usage, persona="reviewer",
             parameters={"temperature": 0.2, "stop": ["END"], "max_tokens": None, "odd": 1},
             cost=Cost(0.001, 0.002, 0.003, "gpt-4o", "override"), first_token_ns=10**18 + 7,
             metadata={"langfuse_user_id": 42}),
        _run(RunKind.LLM, parent=root, inputs=["prompt"], outputs=None, model="m",
             usage=Usage(1, 1, 2, estimated=True), usage_in_child=True, parameters={}),
        _run(RunKind.EMBEDDING, inputs=["a", "b"], outputs=[[0.1]], model=None),
        _run(RunKind.LLM, inputs=["q"], outputs="a", model=7),  # not a str: cleaned as usual
        _run(RunKind.TOOL, parent=root, name="deploy", error=RuntimeError("boom " * 300),
             status=Status.ERROR, inputs=_Text("sub"), outputs=None, gate="tests_pass",
             gate_result="failed", handoff_to=("a", "b")),
        _run(RunKind.RETRIEVER, status=Status.CANCELLED, inputs="q", outputs=[],
             metadata={"langfuse_user_id": True, "langfuse_session_id": ""}),
        _run(status=Status.EVICTED, workflow="unknown", persona="unknown", name="lonely",
             inputs={"image": IMAGE}, outputs=b"raw"),
        _run(agent="planner", is_graph=True, parent=root, name="graph", persona="planner",
             inputs={"x": [1, 2.5, None, True]}, outputs={"y": float("nan")}),
    ]


@pytest.fixture
def make_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., lf.LangfuseSink]]:
    made: list[lf.LangfuseSink] = []

    def make(**kwargs: Any) -> lf.LangfuseSink:
        langfuse_env(monkeypatch, "http://127.0.0.1:9", timeout="1")
        made.append(lf.LangfuseSink(registry=CollectorRegistry(), **kwargs))
        assert made[-1]._direct is not None
        return made[-1]

    yield make
    for sink in made:
        sink.shutdown(0.1)


def _live(sink: lf.LangfuseSink, run: Run, root: bool) -> tuple[dict[str, Any], str | None]:
    """What the live path sets on a span: its builders, then the SDK's cleaning."""
    attributes = sink._trace_attributes(run)
    kind = lf.observation_type(run)
    fields = sink._fields(run, kind)
    ordered = root_attributes(root)
    ordered.update(sink._observation_attributes(kind, fields, attributes))
    cleaned = clean_attributes(ordered)
    assert cleaned is not None
    return cleaned, fields["status_message"] if fields.get("level") == "ERROR" else None


def _sdk_attributes(attributes: dict[str, Any]) -> bytes:
    """The ``Span.attributes`` fields the SDK's encoder writes for ``attributes``."""
    out = b""
    for pair in _encode_attributes(attributes) or []:
        data = pair.SerializePartialToString()
        out += b"\x4a" + _encoder._VarintBytes(len(data)) + data
    return out


@pytest.mark.parametrize("options", [
    {},
    {"persona_as_user": True},
    {"capture_content": False},
    {"content_max_chars": 10},
    {"mask": lambda value: "masked" if isinstance(value, str) else value},
    {"mask": lambda value: None},
    {"environment": "staging", "release": "v1.2"},
])
def test_attributes_are_the_live_paths(make_sink: Callable[..., lf.LangfuseSink],
                                       monkeypatch: pytest.MonkeyPatch,
                                       options: dict[str, Any]) -> None:
    if "environment" in options:
        monkeypatch.setenv("LANGFUSE_TRACING_ENVIRONMENT", options.pop("environment"))
        monkeypatch.setenv("LANGFUSE_RELEASE", options.pop("release"))
    sink = make_sink(**options)
    for run in _runs():
        for root in (False, True):
            for _ in range(2):  # again, from the builder's caches
                built, message, wire, media, plain = sink._build(
                    run, lf.observation_type(run), root)
                live, live_message = _live(sink, run, root)
                assert list(built.items()) == list(live.items())
                assert [type(v) for v in built.values()] == [type(v) for v in live.values()]
                assert message == live_message
                # Their OTLP bytes are the SDK encoder's; the media check and the cleaning
                # are the ones they stand for.
                assert wire == _sdk_attributes(live)
                assert media == any(may_hold_media(v) for v in live.values())
                if plain:
                    assert clean_attributes(dict(live)) == live


def test_direct_spans_carry_the_sdk_encoders_bytes(
        make_sink: Callable[..., lf.LangfuseSink]) -> None:
    sink = make_sink()
    direct = sink._direct
    assert direct is not None and direct.encoder is not None
    spans: list[ReadableSpan] = []
    direct._emit = spans.append
    runs = _runs()
    for run in runs:
        sink.on_run_start(run)
    for run in reversed(runs):
        sink.on_run_end(run)
    assert len(spans) == len(runs)
    assert all(type(span) is WireReadySpan for span in spans)
    assert [span.attributes["langfuse.observation.type"] for span in spans] == [
        lf.observation_type(run) for run in reversed(runs)]
    assert {"agent", "chain", "generation", "embedding", "tool", "retriever"} == {
        lf.observation_type(run) for run in runs}
    # The bytes each span carries are the SDK encoder's, alone and in one batch.
    for span in spans:
        assert WireEncoder().encode([span]) == encode_spans([span]).SerializePartialToString()
    assert WireEncoder().encode(spans) == encode_spans(spans).SerializePartialToString()
    for span in spans:
        assert isinstance(span, WireReadySpan)
        assert span.media == any(may_hold_media(v) for v in span.attributes.values())
    assert sum(isinstance(span, WireReadySpan) and span.media for span in spans) == 1


_PIECES = ["data", ":", '"', "inline_", "inlineData", "x", "ata", "_d", "\x00", "ü"]


def _value(rng: random.Random) -> Any:
    text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6)))
    return rng.choice([
        text, _Text(text), (text, "y"), [text], (text, 1), [1, 2], True, 3, 2.5, None,
        text.encode(), ((text,),), {"k": text},
    ])


def test_joined_media_check_is_the_per_value_check() -> None:
    rng = random.Random(7)
    for _ in range(20000):
        attributes = {f"k{i}": _value(rng) for i in range(rng.randint(0, 4))}
        expected = any(may_hold_media(v) for v in attributes.values())
        assert attributes_may_hold_media(attributes) == expected, attributes


def test_mixed_batches_grouped_as_the_sdk_groups_them(
        make_sink: Callable[..., lf.LangfuseSink]) -> None:
    from tests.test_langfuse_wire import _spans as other_spans

    sink = make_sink()
    assert sink._direct is not None
    ours: list[ReadableSpan] = []
    sink._direct._emit = ours.append
    runs = _runs()
    for run in runs:
        sink.on_run_start(run)
    for run in reversed(runs):
        sink.on_run_end(run)
    others = list(other_spans())  # other resources and scopes, and spans of every kind
    mixed = [span for pair in zip(ours, others, strict=False) for span in pair]
    mixed += others[len(ours):]
    for batch in (mixed, list(reversed(mixed)), ours[:1] + others[:1] + ours[1:]):
        assert WireEncoder().encode(batch) == encode_spans(batch).SerializePartialToString()


def test_ready_spans_are_made_as_readable_spans_are(
        make_sink: Callable[..., lf.LangfuseSink]) -> None:
    assert _ASSIGNS  # this SDK's ReadableSpan only assigns: the shortcut is in use
    tracer = make_sink()._tracer
    context, parent = SpanContext(5, 6, False), SpanContext(5, 7, False)
    attributes = {"k": "v"}
    made = ready_span("n", context, parent, tracer.resource, attributes,
                      tracer.instrumentation_info, UNSET, 1, 2,
                      tracer._instrumentation_scope, b"wire", True)
    sdk = ReadableSpan(name="n", context=context, parent=parent,
                       resource=tracer.resource,
                       attributes=attributes, kind=SpanKind.INTERNAL,
                       instrumentation_info=tracer.instrumentation_info,
                       status=UNSET, start_time=1, end_time=2,
                       instrumentation_scope=tracer._instrumentation_scope)
    assert vars(made) == vars(sdk)
    assert (made.wire, made.media) == (b"wire", True)


@pytest.mark.parametrize("value", [
    {"input": 12, "output": 3, "total": 15}, {"f": 0.1, "g": 1e20, "h": -0.0}, {"u": "ünï\n\""},
    {"l": [1, "a", None, True, 2.5]}, {}, {"nested": {"a": [{"b": None}]}},
])
def test_dumps_is_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value)
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError):
        dumps(circular)
    assert dumps(value) == json.dumps(value)  # a fresh scanner after the failure


def test_plain_values_is_what_cleaning_keeps() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        attributes = {f"k{i}": _value(rng) for i in range(rng.randint(0, 4))}
        kept = clean_attributes(dict(attributes))
        if plain_values(attributes.values()):
            assert kept == attributes
            assert [type(v) for v in kept.values()] == [type(v) for v in attributes.values()]


def _received(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[bytes]:
    """test_langfuse_direct's workload and spans, with the options it leaves at defaults."""
    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
    from hypertool_callbacks.clock import ManualClock
    from hypertool_callbacks.config import Config
    from hypertool_callbacks.context.tracker import Tracker
    from tests.langfuse_support import use_live_path
    from tests.otlp_receiver import OTLPReceiver
    from tests.test_langfuse_direct import _spans, _workload

    with OTLPReceiver() as receiver:
        langfuse_env(monkeypatch, receiver.url, timeout="2")
        sink = lf.LangfuseSink(registry=CollectorRegistry(), persona_as_user=True,
                               content_max_chars=40)
        assert sink._direct is not None and sink._direct.encoder is not None
        if not direct:  # the live path, as test_langfuse_direct sets it up
            use_live_path(sink)
        clock = ManualClock()
        tracker = Tracker(Config.model_validate({"run_ttl_seconds": 60}), [sink], clock)
        _workload(HypertoolCallbackHandler(tracker), tracker, clock)
        assert sink.flush(10.0)
        sink.shutdown(5.0)
    return _spans(receiver)


def test_received_spans_with_other_options_are_the_live_paths(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENVIRONMENT", "staging")
    monkeypatch.setenv("LANGFUSE_RELEASE", "v1.2")
    live = _received(monkeypatch, direct=False)
    assert len(live) == 12
    assert all(b"staging" in span and b"v1.2" in span for span in live)
    assert sum(b"user.id" in span for span in live) > 2  # the persona, and the metadata's
    assert _received(monkeypatch, direct=True) == live
