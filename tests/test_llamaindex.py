"""The LlamaIndex adapter on real llama-index-core: LLM calls, queries, agents, workflows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.context.runs import Status
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.llama_support import ScriptedAgentLLM, UsageLLM
from tests.llama_workloads import _tools, react_handoff_workflow, team_workflow
from tests.test_langfuse import Recorder

TOKENS = "hypertool_persona_tokens_used_total"
CALLS = "hypertool_llm_requests_total"
TOOLS = "hypertool_tool_calls_total"
SWITCHES = "hypertool_persona_switches_total"
HANDOFFS = "hypertool_persona_handoffs_total"
STAGES = "hypertool_workflow_stage_duration_seconds_count"
MISSING = "hypertool_llm_usage_missing_total"
USER = [ChatMessage(role="user", content="hi")]


@pytest.fixture
def ended() -> Recorder:
    return Recorder()


@pytest.fixture
def tracker(make_tracker: Callable[..., Tracker], registry: Any, ended: Recorder,
            attach_tracker: Callable[[Tracker], Tracker]) -> Tracker:
    return attach_tracker(make_tracker(sinks=[ended, PrometheusSink(registry)]))


def test_chat_is_one_llm_call_with_usage_and_model(
        tracker: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    llm = UsageLLM(tokens=(7, 3))
    assert llm.chat(USER).message.content == "the answer"  # chat -> complete inside
    asyncio.run(llm.achat(USER))  # achat -> chat -> complete

    (first, second) = ended.of_kind(RunKind.LLM)
    assert first.name == "UsageLLM" and first.model == "usage-llm-1"
    assert first.response_model == "usage-llm-1-2025"
    assert first.usage is not None and (first.usage.input_tokens, first.usage.output_tokens) \
        == (7, 3)
    assert second.parent is None and first.status is Status.OK
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 2
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 14
    assert sample(MISSING, model="usage-llm-1", persona="unknown") == 0
    assert tracker.live_runs == 0


def test_streaming_records_first_token_and_final_chunk_usage(
        tracker: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    llm = UsageLLM(text="one two three", tokens=(5, 3))
    chunks = [c.delta for c in llm.stream_chat(USER)]
    assert chunks == ["one", "two", "three"]

    async def consume() -> list[str]:
        stream = await llm.astream_chat(USER)  # iterates stream_chat outside its own span
        return [c.delta or "" async for c in stream]

    assert asyncio.run(consume()) == ["one", "two", "three"]
    runs = ended.of_kind(RunKind.LLM)
    assert len(runs) == 2
    for run in runs:
        assert run.first_token_mono is not None and run.usage is not None
        assert (run.usage.input_tokens, run.usage.output_tokens) == (5, 3)
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="output") == 6
    assert sample("hypertool_llm_time_to_first_token_seconds_count", model="usage-llm-1",
                  persona="unknown") == 2


def test_stream_closed_early_is_cancelled(tracker: Tracker, ended: Recorder) -> None:
    stream = UsageLLM(text="one two three").stream_chat(USER)
    next(stream)
    stream.close()
    (run,) = ended.of_kind(RunKind.LLM)
    assert run.status is Status.CANCELLED


def test_missing_usage_is_counted(tracker: Tracker, sample: Callable[..., float]) -> None:
    MockLLM().chat(USER)
    MockLLM().complete("x")
    assert sample(CALLS, model="unknown", persona="unknown", status="ok") == 2
    assert sample(MISSING, model="unknown", persona="unknown") == 2


def test_query_has_retrieve_and_synthesize_stages_and_one_llm_call(
        tracker: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    embed = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="Paris is in France."), Document(text="Rome is in Italy.")],
        embed_model=embed)
    ended.runs.clear()
    response = index.as_query_engine(llm=UsageLLM(tokens=(40, 4))).query("Where is Paris?")

    assert str(response) == "the answer"
    root = next(r for r in ended.runs if r.parent is None)
    assert root.name == "RetrieverQueryEngine" and root.workflow == "RetrieverQueryEngine"
    by_kind = {kind: ended.of_kind(kind) for kind in RunKind}
    assert len(by_kind[RunKind.LLM]) == 1
    assert len(by_kind[RunKind.RETRIEVER]) == 1 and len(by_kind[RunKind.EMBEDDING]) == 1
    (retrieve,) = by_kind[RunKind.RETRIEVER]
    assert retrieve.stage == "retrieve" and retrieve.persona == "unknown"
    assert retrieve.parent is not None and retrieve.parent.name == "retrieve"  # the phase
    assert retrieve.parent.parent is root
    assert by_kind[RunKind.EMBEDDING][0].parent is retrieve
    (llm,) = by_kind[RunKind.LLM]
    assert llm.stage == "synthesize" and llm.root is root
    for stage in ("retrieve", "synthesize"):
        assert sample(STAGES, workflow="RetrieverQueryEngine", stage=stage,
                      persona="unknown") == 1
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 40


def test_lone_function_agent_is_its_persona_and_a_raising_tool_is_an_error(
        tracker: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    llm = ScriptedAgentLLM(script=[("add", {"a": 2, "b": 3}), ("explode", {}), "five"],
                           tokens=(11, 2))
    agent = FunctionAgent(name="calculator", description="adds", llm=llm, tools=_tools())

    async def run() -> str:
        return str(await agent.run(user_msg="2+3?"))

    assert asyncio.run(run()) == "five"
    root = next(r for r in ended.runs if r.parent is None)
    assert root.name == "calculator" and root.workflow == "calculator"
    assert root.status is Status.OK
    tools = {r.name: r for r in ended.of_kind(RunKind.TOOL)}
    assert tools["add"].status is Status.OK and tools["explode"].status is Status.ERROR
    assert {r.persona for r in ended.of_kind(RunKind.LLM)} == {"calculator"}
    assert sample(TOOLS, tool="add", persona="calculator", status="ok") == 1
    assert sample(TOOLS, tool="explode", persona="calculator", status="error") == 1
    assert sample(TOKENS, persona="calculator", model="scripted", token_type="input") == 33
    assert sample(STAGES, workflow="calculator", stage="calculator", persona="calculator") == 1
    assert tracker.live_runs == 0


def test_agent_workflow_personas_handoffs_tokens_and_tools_run_twice(
        tracker: Tracker, ended: Recorder, sample: Callable[..., float]) -> None:
    workflow, _ = team_workflow()

    async def run() -> list[str]:
        return [str(await workflow.run(user_msg="go")) for _ in range(2)]

    assert asyncio.run(run()) == ["approved", "approved"]
    for persona, model, tokens in (("researcher", "m-research", (10, 1)),
                                   ("writer", "m-write", (20, 2)),
                                   ("reviewer", "m-review", (30, 3))):
        calls = 1 if persona == "reviewer" else 2
        for token_type, count in zip(("input", "output"), tokens, strict=True):
            assert sample(TOKENS, persona=persona, model=model,
                          token_type=token_type) == 2 * calls * count
        assert sample(CALLS, model=model, persona=persona, status="ok") == 2 * calls
    for a, b in (("researcher", "writer"), ("writer", "reviewer")):
        labels = {"from_persona": a, "to_persona": b, "workflow": "AgentWorkflow"}
        assert sample(SWITCHES, **labels) == 2
        assert sample(HANDOFFS, **labels) == 2
    assert sample(SWITCHES, from_persona="reviewer", to_persona="researcher",
                  workflow="AgentWorkflow") == 0
    assert sample(TOOLS, tool="add", persona="researcher", status="ok") == 2
    assert sample(TOOLS, tool="handoff", persona="researcher", status="ok") == 2
    assert sample(TOOLS, tool="explode", persona="writer", status="error") == 2
    assert sample(TOOLS, tool="handoff", persona="writer", status="ok") == 2
    for agent in ("researcher", "writer", "reviewer"):
        assert sample(STAGES, workflow="AgentWorkflow", stage=agent, persona=agent) == 2
    roots = [r for r in ended.runs if r.parent is None]
    assert [r.status for r in roots] == [Status.OK, Status.OK]
    assert roots[0].execution != roots[1].execution
    assert tracker.live_runs == 0


def test_react_agent_uses_its_name(tracker: Tracker, sample: Callable[..., float]) -> None:
    llm = ScriptedAgentLLM(script=["Thought: I can answer.\nAnswer: 42"], tokens=(9, 4))
    agent = ReActAgent(name="oracle", description="answers", llm=llm, tools=[])

    async def run() -> str:
        return str(await agent.run(user_msg="?"))

    assert asyncio.run(run()) == "42"
    assert sample(TOKENS, persona="oracle", model="scripted", token_type="input") == 9


class Pipeline(Workflow):
    @step
    async def plan(self, ev: StartEvent) -> StopEvent:
        llm = UsageLLM(tokens=(3, 1))
        return StopEvent(result=str(await llm.acomplete("plan it")))


def test_workflow_steps_are_stages(tracker: Tracker, ended: Recorder,
                                   sample: Callable[..., float]) -> None:
    async def run() -> str:
        return str(await Pipeline(timeout=10).run())

    assert asyncio.run(run()) == "the answer"
    (llm,) = ended.of_kind(RunKind.LLM)
    assert llm.stage == "plan" and llm.workflow == "Pipeline"
    assert sample(STAGES, workflow="Pipeline", stage="plan", persona="unknown") == 1


def test_concurrent_queries_keep_their_trees_apart(tracker: Tracker, ended: Recorder) -> None:
    index = VectorStoreIndex.from_documents([Document(text="x")],
                                            embed_model=MockEmbedding(embed_dim=4))
    engine = index.as_query_engine(llm=UsageLLM())
    ended.runs.clear()

    async def run() -> None:
        await asyncio.gather(*(engine.aquery(f"q{i}") for i in range(4)))

    asyncio.run(run())
    roots = [r for r in ended.runs if r.parent is None]
    assert len(roots) == 4
    for root in roots:
        mine = [r for r in ended.runs if r.root is root]
        assert sorted(r.kind.value for r in mine) == sorted(
            ["chain", "chain", "retriever", "embedding", "chain", "llm"])
    assert tracker.live_runs == 0


def test_attach_is_idempotent_and_detach_removes_everything(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    root = get_dispatcher()
    before = (list(root.span_handlers), list(root.event_handlers))
    first, second = make_tracker(), make_tracker()
    try:
        llamaindex.attach(first)
        llamaindex.attach(first)
        llamaindex.attach(second)  # switches tracker, adds nothing
        assert len(root.span_handlers) == len(before[0]) + 1
        assert len(root.event_handlers) == len(before[1]) + 1
        assert llamaindex.attached()
        UsageLLM().complete("x")
    finally:
        llamaindex.detach()
        llamaindex.detach()
    assert (root.span_handlers, root.event_handlers) == before
    assert not llamaindex.attached()
    UsageLLM().complete("x")  # not observed any more
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1


def test_instrument_and_uninstrument_cover_llamaindex(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    import hypertool_callbacks
    from hypertool_callbacks import wiring

    previous = wiring.set_tracker(None)
    try:
        hypertool_callbacks.instrument(make_tracker())
        hypertool_callbacks.instrument()  # idempotent
        handlers = [h for h in get_dispatcher().span_handlers
                    if isinstance(h, llamaindex.HypertoolSpanHandler)]
        assert len(handlers) == 1
        UsageLLM().complete("x")
        hypertool_callbacks.uninstrument()
        hypertool_callbacks.uninstrument()
        assert not llamaindex.attached()
        UsageLLM().complete("x")
    finally:
        hypertool_callbacks.uninstrument()
        wiring.set_tracker(previous)
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1


def test_set_global_handler_rejects_our_name_as_the_readme_says() -> None:
    from llama_index.core import set_global_handler

    with pytest.raises(ValueError):
        set_global_handler("hypertool")


def test_react_agent_hands_off_to_a_function_agent(
        tracker: Tracker, sample: Callable[..., float]) -> None:
    workflow = react_handoff_workflow()

    async def run() -> str:
        return str(await workflow.run(user_msg="go"))

    assert asyncio.run(run()) == "written"
    pair = {"from_persona": "scout", "to_persona": "scribe", "workflow": "AgentWorkflow"}
    assert sample(HANDOFFS, **pair) == 1 and sample(SWITCHES, **pair) == 1
    assert sample(TOKENS, persona="scout", model="scripted", token_type="input") == 8
    assert sample(TOKENS, persona="scribe", model="scripted", token_type="output") == 2
    assert sample(TOOLS, tool="handoff", persona="scout", status="ok") == 1


class _Runs(Recorder):
    """Keeps ended runs; like the Prometheus sink (``needed=False``) it may need no run that
    adds nothing to its parent, and such runs are then folded into their parent."""

    name = "runs"

    def __init__(self, needed: bool) -> None:
        super().__init__()
        self.needed = needed

    def needs_run(self, parent: Any) -> bool:
        return self.needed


def _folding(needed: bool, make_tracker: Callable[..., Tracker], registry: Any,
             attach_tracker: Callable[[Tracker], Tracker]) -> tuple[_Runs, Tracker]:
    """A tracker whose runs sink needs (or not) runs that add nothing, beside Prometheus."""
    runs = _Runs(needed)
    return runs, attach_tracker(make_tracker(sinks=[runs, PrometheusSink(registry)]))


def _paris() -> Any:
    return VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                           embed_model=MockEmbedding(embed_dim=8))


@pytest.mark.parametrize("needed", [True, False])
def test_a_query_inside_a_tool_is_folded_when_no_sink_needs_it(
        needed: bool, make_tracker: Callable[..., Tracker], registry: Any,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    from llama_index.core.tools import QueryEngineTool

    runs, tracker = _folding(needed, make_tracker, registry, attach_tracker)
    lookup = QueryEngineTool.from_defaults(_paris().as_query_engine(llm=UsageLLM(tokens=(40, 4))),
                                           name="lookup", description="looks places up")
    llm = ScriptedAgentLLM(script=[("lookup", {"input": "Where is Paris?"}), "France"],
                           tokens=(11, 2))
    agent = FunctionAgent(name="geo", description="answers", llm=llm, tools=[lookup])
    runs.runs.clear()

    async def run() -> str:
        return str(await agent.run(user_msg="Where is Paris?"))

    assert asyncio.run(run()) == "France"
    names = {r.name for r in runs.runs}
    # The query engine and its synthesizer inherit everything from the tool call.
    assert ({"RetrieverQueryEngine", "CompactAndRefine"} <= names) is needed
    retrievers = runs.of_kind(RunKind.RETRIEVER)
    if needed:
        (retriever,) = retrievers
        assert retriever.parent is not None and retriever.parent.name == "RetrieverQueryEngine"
    else:  # the retriever and its query embedding add nothing either: folded too
        assert retrievers == [] and runs.of_kind(RunKind.EMBEDDING) == []
    inner = next(r for r in runs.of_kind(RunKind.LLM) if r.model == "usage-llm-1")
    assert inner.persona == "geo" and inner.parent is not None
    assert inner.parent.name == ("CompactAndRefine" if needed else "lookup")
    # The metrics are the same either way.
    assert sample(TOKENS, persona="geo", model="usage-llm-1", token_type="input") == 40
    assert sample(TOKENS, persona="geo", model="scripted", token_type="input") == 22
    assert sample(TOOLS, tool="lookup", persona="geo", status="ok") == 1
    assert tracker.live_runs == 0


class _Broken(BaseRetriever):
    def _retrieve(self, query_bundle: Any) -> list[Any]:
        raise LookupError("index offline")


@pytest.mark.parametrize("needed", [True, False])
def test_a_top_level_retriever_folds_into_its_stage_when_no_sink_needs_it(
        needed: bool, make_tracker: Callable[..., Tracker], registry: Any,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    runs, tracker = _folding(needed, make_tracker, registry, attach_tracker)
    index = _paris()
    runs.runs.clear()
    assert str(index.as_query_engine(llm=UsageLLM(tokens=(40, 4))).query("Where?")) == \
        "the answer"
    retrievers = runs.of_kind(RunKind.RETRIEVER)
    assert len(retrievers) == (1 if needed else 0)
    (phase,) = [r for r in runs.runs if r.name == "retrieve"]  # its stage run, either way
    assert phase.status is Status.OK and phase.introduces_stage
    assert sample(STAGES, workflow="RetrieverQueryEngine", stage="retrieve",
                  persona="unknown") == 1
    assert tracker.live_runs == 0

    # A retriever that raises ends its stage run with the error, folded or not.
    runs.runs.clear()
    engine = RetrieverQueryEngine.from_args(_Broken(), llm=UsageLLM())
    with pytest.raises(LookupError):
        engine.query("Where?")
    (phase,) = [r for r in runs.runs if r.name == "retrieve"]
    assert phase.status is Status.ERROR and isinstance(phase.error, LookupError)
    assert len(runs.of_kind(RunKind.RETRIEVER)) == (1 if needed else 0)
    assert tracker.live_runs == 0


@pytest.mark.parametrize("needed", [True, False])
def test_an_agent_workflows_step_before_any_agent_acts_folds_when_no_sink_needs_it(
        needed: bool, make_tracker: Callable[..., Tracker], registry: Any,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    from tests.llama_workloads import lone_agent

    runs, tracker = _folding(needed, make_tracker, registry, attach_tracker)
    lone_agent()
    names = [r.name for r in runs.runs]
    # init_run declares no agent: it adds nothing to the workflow run. The agent's own steps
    # declare the agent and stay runs either way.
    assert ("init_run" in names) is needed
    assert names.count("run_agent_step") == 3 and names.count("call_tool") == 2
    assert sample(CALLS, model="scripted", persona="calculator", status="ok") == 3
    assert sample(TOOLS, tool="add", persona="calculator", status="ok") == 1
    assert tracker.live_runs == 0
