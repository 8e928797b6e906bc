"""The shortest end-to-end path: a real chain, the handler, metrics in a fresh registry."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from tests.fakes import reply


def test_chain_with_explicit_persona_counts_tokens(
    handler: HypertoolCallbackHandler, sample: Callable[..., float]
) -> None:
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "{q}")])
    chain = prompt | model
    chain.invoke({"q": "hi"}, config={"callbacks": [handler], "tags": ["persona:reviewer"]})
    labels = {"persona": "reviewer", "model": "fake-messages-list-chat-model"}
    assert sample("hypertool_persona_tokens_used_total", token_type="input", **labels) == 12
    assert sample("hypertool_persona_tokens_used_total", token_type="output", **labels) == 3
    assert handler.tracker.live_runs == 0
