"""instrument()/uninstrument(), the scoped context manager, and the env-var hook, in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel

import hypertool_callbacks
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.runtime import set_tracker
from tests.fakes import reply

LABELS = {"persona": "solo", "model": "fake-messages-list-chat-model", "token_type": "input"}


@pytest.fixture
def tracker(make_tracker: Callable[..., Tracker]) -> Iterator[Tracker]:
    tracker = make_tracker()
    previous = set_tracker(tracker)
    yield tracker
    hypertool_callbacks.uninstrument()
    set_tracker(previous)


def _call(tokens: int = 4) -> None:
    model = FakeMessagesListChatModel(responses=[reply("x", tokens=(tokens, 1))])
    model.invoke("hi", config={"tags": ["persona:solo"]})


def test_instrument_attaches_everywhere_until_uninstrument(
    tracker: Tracker, sample: Callable[..., float]
) -> None:
    _call()
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 0
    assert hypertool_callbacks.instrument() is tracker
    hypertool_callbacks.instrument()  # idempotent: still one handler per run
    _call()
    worker = threading.Thread(target=_call)  # a fresh thread, no copied context
    worker.start()
    worker.join()
    asyncio.run(FakeMessagesListChatModel(responses=[reply("x", tokens=(4, 1))]).ainvoke(
        "hi", config={"tags": ["persona:solo"]}))
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 12
    hypertool_callbacks.uninstrument()
    _call()
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 12


def test_instrumented_block_is_scoped(tracker: Tracker, sample: Callable[..., float]) -> None:
    with hypertool_callbacks.instrumented() as active:
        assert active is tracker
        _call(tokens=5)
    _call(tokens=5)
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 5


def test_env_var_hook_attaches_without_passing_a_handler(
    tracker: Tracker, sample: Callable[..., float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERTOOL_CALLBACKS", "true")
    _call(tokens=6)
    monkeypatch.setenv("HYPERTOOL_CALLBACKS", "false")
    _call(tokens=6)
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 6


def test_handler_passed_explicitly_is_not_doubled_by_the_hook(
    tracker: Tracker, sample: Callable[..., float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERTOOL_CALLBACKS", "true")
    model = FakeMessagesListChatModel(responses=[reply("x", tokens=(3, 1))])
    handler = hypertool_callbacks.HypertoolCallbackHandler(tracker)
    model.invoke("hi", config={"callbacks": [handler], "tags": ["persona:solo"]})
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 3


def test_invalid_config_file_never_breaks_a_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler built without a tracker loads the configuration inside LangChain's callback:
    a bad file is reported loudly, and the chain still runs."""
    (tmp_path / "hypertool.toml").write_text("[personas.solo]\nbudjet_tokens = 5\n")
    monkeypatch.chdir(tmp_path)
    previous = set_tracker(None)
    try:
        with pytest.raises(hypertool_callbacks.ConfigError):
            hypertool_callbacks.get_tracker()  # the explicit API fails loudly
        model = FakeMessagesListChatModel(responses=[reply("fine")])
        handler = hypertool_callbacks.HypertoolCallbackHandler()
        assert model.invoke("hi", config={"callbacks": [handler]}).content == "fine"
        assert handler.tracker.sinks == []
        assert "personas.solo.budjet_tokens" in caplog.text
    finally:
        set_tracker(previous)
