"""Finished spans handed to the Langfuse processor (sinks/langfuse_direct), exported past the
SDK's media check where it changes nothing (sinks/langfuse_media), against today's live
SDK spans: the same workloads through both paths must reach the receiver as the same spans,
byte for byte once the random ids are numbered in order of appearance.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.langfuse_direct import clean_attributes, probe
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import StreamingFake, reply
from tests.langfuse_support import langfuse_env, use_live_path
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import LF_PATH

pytestmark = pytest.mark.usefixtures("reset_langfuse")
_RUN_ID = re.compile(rb"lc_run--[0-9a-f-]{36}")
IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake image bytes").decode()


class _Text(str):
    """A str subclass, as LangChain's text accessor is."""


@tool
def explode(x: str) -> str:
    """Always fails."""
    raise RuntimeError("boom")


def _workload(handler: HypertoolCallbackHandler, tracker: Tracker, clock: ManualClock) -> None:
    config: Any = {"callbacks": [handler], "tags": ["persona:reviewer", "stage:review"],
                   "metadata": {"langfuse_user_id": "u-1", "langfuse_session_id": "s-1",
                                "langfuse_tags": ["extra"]}, "run_name": "flow"}
    chain = (ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
             | FakeMessagesListChatModel(responses=[reply("hello wörld", tokens=(12, 3))])
             .bind(stop=["END"]) | StrOutputParser())
    chain.invoke({"q": "hi ünïcode"}, config=config)
    clock.advance(1.5)
    "".join(str(c.content) for c in StreamingFake(responses=[reply("a b c")]).stream(
        "q", config={"callbacks": [handler]}))
    with pytest.raises(RuntimeError):
        RunnableLambda(lambda x: explode.invoke(x), name="failing").invoke(
            "x", config={"callbacks": [handler]})
    RunnableLambda(lambda x: _Text(str(x["k"])), name="subclass").invoke(
        {"k": [1, 2.5, None, True]}, config={"callbacks": [handler]})
    # Media for the SDK's export-stage handling: a data URI, and JSON that may hold some.
    RunnableLambda(lambda x: IMAGE, name="media").invoke(
        {"image": IMAGE, "parts": [{"mime_type": "image/png", "data": "AAAA"}]},
        config={"callbacks": [handler]})
    tracker.start(RunStart("root", None, RunKind.CHAIN, "gate-flow", ("workflow:ship",)))
    tracker.start(RunStart("gate", "root", RunKind.CHAIN, "check", ("gate:tests_pass",)))
    clock.advance(2)
    tracker.end(RunEnd("gate", outputs={"passed": False}))
    tracker.start(RunStart("stuck", "root", RunKind.TOOL, "deploy"))
    clock.advance(61)
    tracker.evict_now()


def _spans(receiver: OTLPReceiver) -> list[bytes]:
    """Every received span, its ids numbered in order of appearance, serialised."""
    numbers: dict[bytes, bytes] = {b"": b""}
    out = []
    for received in receiver.received:
        if received.path != LF_PATH:
            continue
        for span in received.spans():
            for field in ("trace_id", "span_id", "parent_span_id"):
                value = getattr(span, field)
                number = numbers.setdefault(value, len(numbers).to_bytes(8, "big"))
                setattr(span, field, number)
            # LangChain's random run ids in message ids: same length, so the bytes stay valid.
            out.append(_RUN_ID.sub(lambda m: b"x" * len(m.group()),
                                   span.SerializeToString(deterministic=True)))
    return out


def _scopes(receiver: OTLPReceiver) -> list[tuple[bytes, str, str]]:
    return [(resource.resource.SerializeToString(deterministic=True), scope.scope.name,
             scope.scope.version)
            for received in receiver.received if received.path == LF_PATH
            for resource in received.request.resource_spans
            for scope in resource.scope_spans]


def _run(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> OTLPReceiver:
    with OTLPReceiver() as receiver:
        langfuse_env(monkeypatch, receiver.url, timeout="2")
        sink = lf.LangfuseSink(registry=CollectorRegistry())
        assert sink._direct is not None and sink._direct._emit is not None
        if not direct:  # today's path: live SDK spans, every span through the SDK's media check
            use_live_path(sink)
        clock = ManualClock()
        tracker = Tracker(Config.model_validate({"run_ttl_seconds": 60}),
                          [sink, PrometheusSink(CollectorRegistry())], clock)
        _workload(HypertoolCallbackHandler(tracker), tracker, clock)
        assert sink.flush(10.0)
        sink.shutdown(5.0)
    return receiver


@pytest.mark.parametrize("env", [
    {},
    {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "17"},  # evicts the oldest attributes
    {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "12"},  # cuts long values
    {"debug": "langfuse"},  # the SDK logs each span: the processor's own on_end then
])
def test_direct_spans_are_the_live_spans(monkeypatch: pytest.MonkeyPatch,
                                         env: dict[str, str]) -> None:
    for name, value in env.items():
        if name == "debug":
            logger = logging.getLogger(value)
            monkeypatch.setattr(logger, "level", logging.DEBUG)
        else:
            monkeypatch.setenv(name, value)
    live, direct = _run(monkeypatch, direct=False), _run(monkeypatch, direct=True)
    spans = _spans(live)
    assert len(spans) == 12
    if "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" not in env:  # else the data URI is cut
        assert sum(b"@@@langfuseMedia:" in span for span in spans) == 1  # the SDK's reference
    assert _spans(direct) == spans
    assert _scopes(direct) == _scopes(live)


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], lf.LangfuseSink]]:
    made: list[lf.LangfuseSink] = []

    def make() -> lf.LangfuseSink:
        langfuse_env(monkeypatch, "http://127.0.0.1:9", timeout="1")
        made.append(lf.LangfuseSink(registry=CollectorRegistry()))
        return made[-1]

    yield make
    for each in made:
        each.shutdown(0.1)


@pytest.mark.parametrize("env", [
    {"LANGFUSE_SAMPLE_RATE": "0.5"},  # another sampler
    {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "8"},  # Langfuse's own limit logic could bite
    {"OTEL_TRACES_SAMPLER": "always_off"},
])
def test_probe_declines_setups_it_cannot_reproduce(monkeypatch: pytest.MonkeyPatch,
                                                   sink: Callable[[], lf.LangfuseSink],
                                                   env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sink()._direct is None


def test_probe_declines_a_second_processor(sink: Callable[[], lf.LangfuseSink]) -> None:
    made = sink()
    assert made._direct is not None and made._provider is not None
    made._provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert probe(made._tracer) is None
    assert probe(object()) is None  # not an SDK tracer at all


@pytest.mark.parametrize("value", [
    "s", _Text("sub"), 1, 2.5, True, None, b"raw", ["a", "b"], ("a", 1), [_Text("x")],
    [], {"nested": 1}, [["deep"]], object(),
])
def test_clean_attributes_is_bounded_attributes(value: Any) -> None:
    expected = dict(BoundedAttributes(None, {"k": value}, immutable=True))
    cleaned = clean_attributes({"k": value})
    if cleaned is not None:  # None: left to BoundedAttributes itself
        assert cleaned == expected
        assert [type(v) for v in cleaned.values()] == [type(v) for v in expected.values()]


def test_a_processor_added_later_still_gets_every_span(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as receiver:
        langfuse_env(monkeypatch, receiver.url, timeout="2")
        sink = lf.LangfuseSink(registry=CollectorRegistry())
        assert sink._direct is not None and sink._provider is not None
        memory = InMemorySpanExporter()
        sink._provider.add_span_processor(SimpleSpanProcessor(memory))
        handler = HypertoolCallbackHandler(Tracker(Config(), [sink]))
        (RunnableLambda(lambda q: q, name="prep") | FakeMessagesListChatModel(
            responses=[reply("x")])).invoke("q", config={"callbacks": [handler]})
        assert sink.flush(10.0)
        sink.shutdown(5.0)
    assert len(_spans(receiver)) == 3
    assert sorted(span.name for span in memory.get_finished_spans()) == [
        "FakeMessagesListChatModel", "RunnableSequence", "prep"]
