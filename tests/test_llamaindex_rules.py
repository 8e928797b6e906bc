"""Configured persona and stage rules on LlamaIndex runs (issue 16: "persona rules from the
config apply"; README LlamaIndex "Rules": they match run names, agent names, nodes, tool names
and system prompts), and a tool called directly (``FunctionTool.call`` / ``acall``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool

from hypertool_callbacks.context.runs import Status
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.llama_support import UsageLLM
from tests.test_langfuse import Recorder

TOKENS = "hypertool_persona_tokens_used_total"
TOOLS = "hypertool_tool_calls_total"
STAGES = "hypertool_workflow_stage_duration_seconds_count"


@pytest.fixture
def ended() -> Recorder:
    return Recorder()


@pytest.fixture
def ruled(make_tracker: Callable[..., Tracker], registry: Any, ended: Recorder,
          attach_tracker: Callable[[Tracker], Tracker]) -> Tracker:
    tracker = make_tracker(sinks=[ended, PrometheusSink(registry)], personas={
        "librarian": {"names": ["VectorIndex*"]},
        "critic": {"prompt_keywords": ["harsh critic"]},
        "calculator": {"tools": ["add"]},
    }, stages={"lookup": {"nodes": ["retrieve"]}})
    return attach_tracker(tracker)


def test_name_and_node_rules_match_a_query(ruled: Tracker, ended: Recorder,
                                           sample: Callable[..., float]) -> None:
    index = VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                            embed_model=MockEmbedding(embed_dim=4))
    ended.runs.clear()
    assert str(index.as_query_engine(llm=UsageLLM()).query("Paris?")) == "the answer"

    (retrieve,) = ended.of_kind(RunKind.RETRIEVER)
    assert retrieve.name == "VectorIndexRetriever"
    assert retrieve.persona == "librarian"  # [personas.librarian] names
    assert retrieve.stage == "lookup"  # [stages.lookup] nodes = the retrieve phase
    (llm,) = ended.of_kind(RunKind.LLM)
    assert llm.persona == "unknown" and llm.stage == "synthesize"  # no rule matched it
    # A stage's persona label is the first persona of an LLM or tool call in it: none here.
    assert sample(STAGES, workflow="RetrieverQueryEngine", stage="lookup",
                  persona="unknown") == 1


def test_prompt_keyword_rule_names_an_llm_call(ruled: Tracker,
                                               sample: Callable[..., float]) -> None:
    UsageLLM(tokens=(6, 2)).chat([ChatMessage(role="system", content="You are a HARSH critic."),
                                  ChatMessage(role="user", content="review this")])
    UsageLLM(tokens=(6, 2)).chat([ChatMessage(role="user", content="no system prompt")])
    assert sample(TOKENS, persona="critic", model="usage-llm-1", token_type="input") == 6
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 6


def test_tools_called_directly_are_tool_runs_and_tool_rules_apply(
        ruled: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def explode() -> str:
        """Always fails."""
        raise RuntimeError("tool failed")

    adder, exploder = FunctionTool.from_defaults(add), FunctionTool.from_defaults(explode)
    assert adder.call(a=1, b=2).raw_output == 3
    assert asyncio.run(adder.acall(a=2, b=2)).raw_output == 4
    with pytest.raises(RuntimeError):  # called directly, FunctionTool lets it through
        exploder.call()

    tools = ended.of_kind(RunKind.TOOL)
    assert [(r.name, r.status) for r in tools] == [
        ("add", Status.OK), ("add", Status.OK), ("explode", Status.ERROR)]
    assert sample(TOOLS, tool="add", persona="calculator", status="ok") == 2
    assert sample(TOOLS, tool="explode", persona="unknown", status="error") == 1
    assert ruled.live_runs == 0
