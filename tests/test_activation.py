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


def test_attached_process_wide_handler_is_not_doubled_and_detaches(
    tracker: Tracker, sample: Callable[..., float]
) -> None:
    """The path start-up activation takes: the registry attaches LangChain; an explicit
    handler on the run is not doubled; uninstrument() detaches it."""
    from hypertool_callbacks import frameworks

    frameworks.attach_all(lambda: tracker)
    assert "langchain" in frameworks.attached()
    _call(tokens=6)
    model = FakeMessagesListChatModel(responses=[reply("x", tokens=(3, 1))])
    handler = hypertool_callbacks.HypertoolCallbackHandler(tracker)
    model.invoke("hi", config={"callbacks": [handler], "tags": ["persona:solo"]})
    hypertool_callbacks.uninstrument()
    assert not frameworks.attached()
    _call(tokens=6)
    assert sample("hypertool_persona_tokens_used_total", **LABELS) == 9


def test_explicit_api_raises_on_an_invalid_config_naming_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explicit calls fail loudly and alike (only start-up activation logs and stays off)."""
    (tmp_path / "hypertool.toml").write_text("[personas.solo]\nbudjet_tokens = 5\n")
    monkeypatch.chdir(tmp_path)
    previous = set_tracker(None)
    try:
        for call in (hypertool_callbacks.HypertoolCallbackHandler, hypertool_callbacks.instrument,
                     hypertool_callbacks.build_tracker, hypertool_callbacks.get_tracker):
            with pytest.raises(hypertool_callbacks.ConfigError) as raised:
                call()
            message = str(raised.value)
            assert "hypertool.toml" in message, call
            assert "personas.solo.budjet_tokens" in message
            assert "did you mean 'budget_tokens'?" in message
        assert not hypertool_callbacks.runtime.is_instrumented()
    finally:
        set_tracker(previous)
