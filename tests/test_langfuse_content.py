"""What Langfuse receives of prompts and completions (issue 14, item 12): on by default, cut
to ``langfuse.content_max_chars`` with a marker, off with ``capture_content = false``, masked
before it is cut. The real Langfuse SDK exports to the local OTLP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks import langfuse_content as content
from hypertool_callbacks.sinks.langfuse_content import capped
from tests.fakes import reply
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import Obs, observations

pytestmark = pytest.mark.usefixtures("reset_langfuse", "public_key")

MB = 1024 * 1024


@pytest.fixture
def sinks() -> Iterator[list[lf.LangfuseSink]]:
    made: list[lf.LangfuseSink] = []
    yield made
    for sink in made:
        sink.shutdown(5.0)


def generation(sink: lf.LangfuseSink, receiver: OTLPReceiver, messages: Any,
               answer: str = "fine") -> Obs:
    model = FakeMessagesListChatModel(responses=[reply(answer)])
    handler = HypertoolCallbackHandler(Tracker(Config(), [sink]))
    assert model.invoke(messages, config={"callbacks": [handler]}).content == answer
    assert sink.flush(10.0)
    (found,) = [o for o in observations(receiver) if o.type == "generation"]
    return found


def test_a_megabyte_prompt_arrives_cut_to_the_default_limit(
        receiver: OTLPReceiver, registry: CollectorRegistry,
        sinks: list[lf.LangfuseSink]) -> None:
    (sink,) = lf.default_sinks(Config(), registry)  # the defaults: content on, 4096 chars
    sinks.append(sink)
    prompt = "x" * MB
    got = generation(sink, receiver, [SystemMessage("be brief"), HumanMessage(prompt)])
    sent = got.attrs["langfuse.observation.input"]
    assert isinstance(sent, str)
    assert sent.startswith('[{"content": "be brief"')  # the messages' JSON, from the start
    kept, marker = sent[:4096], sent[4096:]
    assert kept.endswith("x" * 100)
    total = len(json.dumps([m.model_dump() for m in (SystemMessage("be brief"),
                                                      HumanMessage(prompt))],
                           ensure_ascii=False))
    assert marker == f"...[truncated by hypertool: {total} chars, first 4096 kept]"
    # Content that fits arrives whole, as JSON Langfuse shows as structure.
    output = json.loads(got.attrs["langfuse.observation.output"])
    assert output["content"] == "fine" and output["type"] == "ai"


def test_the_limit_is_a_setting(receiver: OTLPReceiver, registry: CollectorRegistry,
                                sinks: list[lf.LangfuseSink]) -> None:
    config = Config.model_validate({"langfuse": {"content_max_chars": 10}})
    (sink,) = lf.default_sinks(config, registry)
    sinks.append(sink)
    got = generation(sink, receiver, "a question longer than ten characters",
                     answer="an answer longer than ten characters")
    assert got.attrs["langfuse.observation.input"].startswith('[{"content...[truncated')
    assert got.attrs["langfuse.observation.output"].startswith('{"content"...[truncated')


def test_capture_off_sends_no_content(receiver: OTLPReceiver, registry: CollectorRegistry,
                                      sinks: list[lf.LangfuseSink]) -> None:
    config = Config.model_validate({"langfuse": {"capture_content": False}})
    (sink,) = lf.default_sinks(config, registry)
    sinks.append(sink)
    got = generation(sink, receiver, "x" * MB)
    assert "langfuse.observation.input" not in got.attrs
    assert "langfuse.observation.output" not in got.attrs
    assert got.json("usage_details") == {"input": 10, "output": 5, "total": 15}


def test_the_mask_sees_the_whole_value_before_the_cut(
        receiver: OTLPReceiver, registry: CollectorRegistry,
        sinks: list[lf.LangfuseSink]) -> None:
    seen: list[int] = []

    def mask(text: str) -> str:  # a text mask, as instrument(mask=...) takes
        seen.append(len(text))
        return text.replace("sk-secret", "[key]")

    config = Config.model_validate({"langfuse": {"content_max_chars": 64}})
    (sink,) = lf.default_sinks(config, registry, mask=mask)
    sinks.append(sink)
    prompt = "y" * 5000 + " sk-secret"  # past the cut: still masked first
    got = generation(sink, receiver, prompt)
    assert max(seen) > 5000
    assert "sk-secret" not in got.attrs["langfuse.observation.input"]
    assert "[truncated by hypertool" in got.attrs["langfuse.observation.input"]


def test_capped_keeps_what_fits_and_never_raises() -> None:
    assert capped("short", 10) == "short"
    assert capped({"a": [1, 2]}, 100) == '{"a": [1, 2]}'
    loop: list[Any] = []
    loop.append(loop)
    assert capped(loop, 5).startswith("[[...")  # circular: its repr, cut


# -- the serialiser's fast path: the same text as json.dumps with the model_dump fallback -----

def _reference(value: Any) -> str:
    """Today's text before the fast path: ``json.dumps`` calling ``model_dump()``."""
    def default(obj: Any) -> Any:
        dump = getattr(obj, "model_dump", None)
        return dump() if callable(dump) else content._plain(obj)

    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=default)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _values() -> list[Any]:
    message = AIMessage("héllo \u2028 \"q\"", id="m-1", usage_metadata={
        "input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    prompt = ChatPromptTemplate.from_messages([("system", "s"), ("user", "{q}")]).invoke(
        {"q": "ü"})
    circular: list[Any] = []
    circular.append(circular)
    return [message, prompt, [[HumanMessage("q")]], [message, {"m": message}],
            LLMResult(generations=[[ChatGeneration(message=message)]]),
            {"a": 1, 2: "b", None: 3.5, True: [1, (2, 3)]}, float("nan"), -0.0, 10**30,
            {"s": {1}}, b"raw", date(2020, 1, 2), circular, {"k": circular}, "plain", None,
            Document(page_content="doc", metadata={"source": "x"})]


def test_fast_serialiser_writes_the_same_text() -> None:
    for value in _values():
        assert content.as_text(value) == _reference(value), value


def test_fast_serialiser_in_threads() -> None:
    values = _values()
    expected = [_reference(value) for value in values]
    failures: list[Any] = []

    def work() -> None:
        for _ in range(200):
            got = [content.as_text(value) for value in values]
            if got != expected:
                failures.append(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
