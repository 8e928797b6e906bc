"""Prompt/completion content in spans: off by default, opt-in, truncated, masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.otel import ENV_CAPTURE_CONTENT, OtelSink, default_sinks
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.test_otel_support import Spans, attrs

MODEL = "fake-messages-list-chat-model"
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result", "hypertool.input", "hypertool.output"}
INPUT_MESSAGES = [
    {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
    {"role": "user", "parts": [{"type": "text", "content": "my key is s3cr3t"}]},
]


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}"


def _run(tracker: Tracker) -> Any:
    """prompt | model | a step that calls a tool; returns the chain's output."""
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hello s3cr3t", tokens=(12, 3))])
    step = RunnableLambda(lambda msg: lookup.invoke({"query": msg.content})).with_config(
        run_name="use_tool")
    return (prompt | model | step).invoke(
        {"q": "my key is s3cr3t"}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})


def _content(spans: Spans) -> dict[str, str]:
    """Content attributes by ``<span name>/<key>``."""
    return {f"{s.name}/{k}": v for s in spans.finished for k, v in attrs(s).items()
            if k in CONTENT_KEYS}


def test_content_is_not_captured_by_default(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    calls: list[str] = []
    sink = OtelSink(spans.provider, mask=lambda text: calls.append(text) or text)
    assert _run(make_tracker(sinks=[sink])) == "found hello s3cr3t"
    assert len(spans.finished) == 5
    assert _content(spans) == {}
    assert calls == []  # nothing is even encoded


def test_content_captured_when_enabled(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    _run(make_tracker(sinks=[OtelSink(spans.provider, capture_content=True)]))
    content = _content(spans)
    assert json.loads(content[f"chat {MODEL}/gen_ai.input.messages"]) == INPUT_MESSAGES
    assert json.loads(content[f"chat {MODEL}/gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "hello s3cr3t"}]}]
    assert json.loads(content["execute_tool lookup/gen_ai.tool.call.arguments"]) == {
        "query": "hello s3cr3t"}
    assert content["execute_tool lookup/gen_ai.tool.call.result"] == "found hello s3cr3t"
    root = "invoke_workflow RunnableSequence"
    assert json.loads(content[f"{root}/hypertool.input"]) == {"q": "my key is s3cr3t"}
    assert content[f"{root}/hypertool.output"] == "found hello s3cr3t"


def test_tool_calls_in_messages_follow_the_genai_shape(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider, capture_content=True)])
    model = FakeMessagesListChatModel(responses=[
        reply("", tokens=(5, 2), calls=[("lookup", {"query": "otel"})])])
    model.invoke("find otel", config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    llm = attrs(spans.named(f"chat {MODEL}"))
    assert json.loads(llm["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "find otel"}]}]
    assert json.loads(llm["gen_ai.output.messages"]) == [{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "call_0_lookup", "name": "lookup",
         "arguments": {"query": "otel"}}]}]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False), ({ENV_CAPTURE_CONTENT: "true"}, True), ({ENV_CAPTURE_CONTENT: "TRUE"}, True),
    ({ENV_CAPTURE_CONTENT: "false"}, False), ({ENV_CAPTURE_CONTENT: ""}, False),
])
def test_default_sinks_follow_the_env_var(
    make_tracker: Callable[..., Tracker], env: dict[str, str], expected: bool
) -> None:
    spans = Spans()
    [sink] = default_sinks(Config(), tracer_provider=spans.provider, environ=env)
    _run(make_tracker(sinks=[sink]))
    assert bool(_content(spans)) is expected


def test_bad_env_value_warns_and_means_off(
    make_tracker: Callable[..., Tracker], caplog: pytest.LogCaptureFixture
) -> None:
    spans = Spans()
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks.sinks.otel"):
        [sink] = default_sinks(Config(), tracer_provider=spans.provider,
                               environ={ENV_CAPTURE_CONTENT: "yes-please"})
    assert [r.getMessage() for r in caplog.records] == [
        f"{ENV_CAPTURE_CONTENT}='yes-please' is not true or false; message content is not "
        "captured"]
    _run(make_tracker(sinks=[sink]))
    assert _content(spans) == {}


def test_configuration_overrides_the_env_var(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    config = Config.model_validate({"otel": {"capture_content": False}})
    [sink] = default_sinks(config, tracer_provider=spans.provider,
                           environ={ENV_CAPTURE_CONTENT: "true"})
    _run(make_tracker(sinks=[sink]))
    assert _content(spans) == {}


def test_content_is_truncated(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    _run(make_tracker(sinks=[OtelSink(spans.provider, capture_content=True,
                                      content_max_chars=25)]))
    full = json.dumps(INPUT_MESSAGES, ensure_ascii=False)
    llm = attrs(spans.named(f"chat {MODEL}"))
    assert llm["gen_ai.input.messages"] == full[:25]
    assert all(len(v) <= 25 for v in _content(spans).values())
    assert attrs(spans.named("execute_tool lookup"))["gen_ai.tool.call.result"] == (
        "found hello s3cr3t")  # short values are left whole


def test_mask_hook_sees_every_value_before_truncation(
    make_tracker: Callable[..., Tracker],
) -> None:
    spans = Spans()
    seen: list[str] = []

    def mask(text: str) -> str:
        seen.append(text)
        return text.replace("s3cr3t", "***")

    _run(make_tracker(sinks=[OtelSink(spans.provider, capture_content=True, mask=mask,
                                      content_max_chars=20)]))
    content = _content(spans)
    # Inputs and outputs of 5 runs, each masked once, whole (cut afterwards).
    assert len(seen) == len(content) == 10
    assert '{"q": "my key is s3cr3t"}' in seen
    # Cutting first would have left "s3cr" of the secret in the span.
    assert not any("s3cr" in value for value in content.values())
    assert content["invoke_workflow RunnableSequence/hypertool.input"] == '{"q": "my key is ***'
    assert content["execute_tool lookup/gen_ai.tool.call.result"] == "found hello ***"


@pytest.mark.parametrize("mask", [
    pytest.param(lambda text: 1 / 0, id="raises"),
    pytest.param(lambda text: None, id="returns-none"),
])
def test_failing_mask_drops_content_and_nothing_else(
    make_tracker: Callable[..., Tracker], registry: Any, sample: Callable[..., float],
    caplog: pytest.LogCaptureFixture, mask: Callable[[str], Any],
) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider, capture_content=True, mask=mask),
                                  PrometheusSink(registry)])
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks.sinks.otel"):
        assert _run(tracker) == "found hello s3cr3t"
    assert _content(spans) == {}
    assert len(spans.finished) == 5
    assert {attrs(s).get("hypertool.content.dropped") for s in spans.finished} == {"mask_error"}
    assert attrs(spans.named(f"chat {MODEL}"))["gen_ai.usage.input_tokens"] == 12
    # Logged once (rate-limited), and metrics were unaffected.
    assert len([r for r in caplog.records if "content dropped (mask_error)" in r.getMessage()]) == 1
    assert sample("hypertool_llm_requests_total", model=MODEL, persona="unknown",
                  status="ok") == 1
