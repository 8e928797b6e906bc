"""Token usage from the provider shapes LlamaIndex responses carry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse

from hypertool_callbacks.adapters.llamaindex_units import current_agent_name
from hypertool_callbacks.adapters.llamaindex_usage import (
    provider_of,
    response_model,
    response_usage,
    usage_of,
)
from hypertool_callbacks.events import Usage

ANSWER = ChatMessage(role="assistant", content="ok")


SHAPES = [
    pytest.param({"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                            "prompt_tokens_details": {"cached_tokens": 40},
                            "completion_tokens_details": {"reasoning_tokens": 8}}},
                 Usage(100, 20, 120, cache_read_tokens=40, reasoning_tokens=8), id="openai"),
    pytest.param({"usage": {"input_tokens": 50, "output_tokens": 9, "total_tokens": 59,
                            "input_tokens_details": {"cached_tokens": 10},
                            "output_tokens_details": {"reasoning_tokens": 4}}},
                 Usage(50, 9, 59, cache_read_tokens=10, reasoning_tokens=4),
                 id="openai-responses"),
    pytest.param({"usage": {"input_tokens": 10, "output_tokens": 5,
                            "cache_read_input_tokens": 200, "cache_creation_input_tokens": 30}},
                 Usage(240, 5, 245, cache_read_tokens=200, cache_creation_tokens=30),
                 id="anthropic"),
    pytest.param(SimpleNamespace(usage=SimpleNamespace(input_tokens=7, output_tokens=2,
                                                       cache_read_input_tokens=None)),
                 Usage(7, 2, 9), id="anthropic-sdk-object"),
    pytest.param({"usage_metadata": {"prompt_token_count": 30, "candidates_token_count": 6,
                                     "thoughts_token_count": 4, "total_token_count": 40,
                                     "cached_content_token_count": 12}},
                 Usage(30, 10, 40, cache_read_tokens=12, reasoning_tokens=4), id="gemini"),
    pytest.param({"usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14,
                            "cacheReadInputTokens": 5, "cacheWriteInputTokens": 2}},
                 Usage(11, 3, 14, cache_read_tokens=5, cache_creation_tokens=2),
                 id="bedrock-converse"),
    pytest.param({"ResponseMetadata": {"HTTPHeaders": {
        "x-amzn-bedrock-input-token-count": "21", "x-amzn-bedrock-output-token-count": "4"}}},
                 Usage(21, 4, 25), id="bedrock-invoke"),
    pytest.param({"model": "llama3", "prompt_eval_count": 26, "eval_count": 8},
                 Usage(26, 8, 34), id="ollama"),
]


@pytest.mark.parametrize(("raw", "expected"), SHAPES)
def test_provider_shapes(raw: Any, expected: Usage) -> None:
    assert response_usage(ChatResponse(message=ANSWER, raw=raw)) == expected


def test_additional_kwargs_when_raw_has_none() -> None:
    response = CompletionResponse(text="x", raw={"id": "1"}, additional_kwargs={
        "prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10})
    assert response_usage(response) == Usage(9, 1, 10)
    message = ChatMessage(role="assistant", content="x",
                          additional_kwargs={"prompt_tokens": 3, "completion_tokens": 2})
    assert response_usage(ChatResponse(message=message)) == Usage(3, 2, 5)


@pytest.mark.parametrize("raw", [None, "text", 3, [1, 2], {"usage": None},
                                 {"usage": {"prompt_tokens": -5, "completion_tokens": True}},
                                 SimpleNamespace(usage=lambda: {"prompt_tokens": 1})])
def test_no_usage(raw: Any) -> None:
    assert response_usage(ChatResponse(message=ANSWER, raw=raw)) is None


def test_response_model_and_provider() -> None:
    assert response_model(ChatResponse(message=ANSWER, raw={"model": "gpt-4o-2024"})) \
        == "gpt-4o-2024"
    assert response_model(ChatResponse(message=ANSWER, raw="x")) is None
    fake_openai = type("OpenAI", (), {"__module__": "llama_index.llms.openai.base"})()
    assert provider_of(fake_openai) == "openai"
    assert provider_of(object()) is None


class _Mapping(Mapping[str, Any]):
    """A mapping that is not a dict: read through the general path, not the dict fast path."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_any_mapping_reads_as_a_dict_does() -> None:
    """The dict fast path (``dict.get``, a key-set pre-check) answers as the general one."""
    odd = {"usage": {"prompt_tokens": 7.0, "completion_tokens": -1, "total_tokens": "x"}}
    for raw in [*(case.values[0] for case in SHAPES), {"id": "1"}, {}, odd]:
        if not isinstance(raw, dict):
            continue
        wrapped = _Mapping({k: _Mapping(v) if isinstance(v, dict) else v for k, v in raw.items()})
        assert usage_of(wrapped) == usage_of(raw)
    assert usage_of({"usage": {"prompt_tokens": 7.0, "completion_tokens": -1}}) == Usage(7, 0, 7)
    assert usage_of({"prompt_tokens": True, "completion_tokens": 2}) == Usage(0, 2, 2)


def test_current_agent_name_of_workflow_events() -> None:
    from llama_index.core.agent.workflow.workflow_events import AgentInput, ToolCall
    from workflows.events import StartEvent

    assert current_agent_name(ToolCall(tool_name="t", tool_kwargs={}, tool_id="1",
                                       current_agent_name="calc")) == "calc"  # an extra
    assert current_agent_name(ToolCall(tool_name="t", tool_kwargs={}, tool_id="1")) is None
    assert current_agent_name(StartEvent(user_msg="hi")) is None
    assert current_agent_name(AgentInput(input=[], current_agent_name="math")) == "math"  # field

    class Named(StartEvent):
        @property
        def current_agent_name(self) -> str:  # a class attribute wins over the extras
            return "prop"

    assert current_agent_name(Named(current_agent_name="extra")) == "prop"
    assert current_agent_name(SimpleNamespace(current_agent_name="plain")) == "plain"
    assert current_agent_name(None) is None
