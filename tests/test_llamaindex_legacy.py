"""LlamaIndex's legacy CallbackManager path, alone and next to the instrumentation handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.adapters.llamaindex_legacy import HypertoolLlamaCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from tests.llama_support import UsageLLM

CALLS = "hypertool_llm_requests_total"
TOKENS = "hypertool_persona_tokens_used_total"
STAGES = "hypertool_workflow_stage_duration_seconds_count"


@pytest.fixture
def legacy(make_tracker: Callable[..., Tracker]) -> Iterator[HypertoolLlamaCallbackHandler]:
    handler = HypertoolLlamaCallbackHandler(make_tracker())
    previous = Settings.callback_manager
    Settings.callback_manager = CallbackManager([handler])
    yield handler
    Settings.callback_manager = previous


def _query() -> Any:
    index = VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                            embed_model=MockEmbedding(embed_dim=4))
    return index.as_query_engine(llm=UsageLLM(tokens=(21, 4))).query("Where is Paris?")


def test_legacy_handler_sees_query_phases_and_counts_chat_once(
        legacy: HypertoolLlamaCallbackHandler, sample: Callable[..., float]) -> None:
    assert str(_query()) == "the answer"
    llm = UsageLLM(tokens=(5, 1), callback_manager=Settings.callback_manager)
    llm.chat([ChatMessage(role="user", content="hi")])  # chat -> complete: one call
    list(llm.stream_chat([ChatMessage(role="user", content="hi")]))

    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 3
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 31
    assert sample(STAGES, workflow="query", stage="retrieve", persona="unknown") == 1
    assert sample(STAGES, workflow="query", stage="synthesize", persona="unknown") == 1
    assert legacy.tracker.live_runs == 0


def test_both_paths_active_count_once(legacy: HypertoolLlamaCallbackHandler,
                                      sample: Callable[..., float]) -> None:
    llamaindex.attach(legacy.tracker)
    try:
        assert str(_query()) == "the answer"
    finally:
        llamaindex.detach()
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 21
    # The instrumentation path named the workflow after the engine: the legacy one stood aside.
    assert sample(STAGES, workflow="RetrieverQueryEngine", stage="retrieve",
                  persona="unknown") == 1
    assert sample(STAGES, workflow="query", stage="retrieve", persona="unknown") == 0


def test_legacy_errors_are_counted_not_raised(legacy: HypertoolLlamaCallbackHandler,
                                              sample: Callable[..., float]) -> None:
    legacy.on_event_end("llm", {"response": object()}, event_id="never-started")
    legacy.on_event_start(object(), None, event_id="x", parent_id="unknown")  # type: ignore[arg-type]
    legacy.on_event_end(object(), None, event_id="x")  # type: ignore[arg-type]
    assert sample("hypertool_internal_errors_total",
                  component="llamaindex_legacy.on_event_start") == 0
    assert legacy.tracker.live_runs == 0
