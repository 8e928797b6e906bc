"""Issue 10: zero-config personas for real multi-agent apps (supervisor, swarm, nested agents).

Real langgraph / langgraph-supervisor / langgraph-swarm / langchain agents, fake models (see
``tests/agents.py``), no hypertool configuration and no persona tags unless a test says so.
Every assertion compares a whole metric family (all its non-zero series) with exact values,
so an extra series (a spurious switch, a generic label) fails the test too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.inference import Resolver
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.tracker import Tracker
from tests.agents import (
    AGENT_AS_TOOL_TOKENS,
    AGENT_KINDS,
    CODER_TESTER_TOKENS,
    COMMAND_TOKENS,
    NESTED_TOKENS,
    SOLO_TOKENS,
    SUPERVISOR_TOKENS,
    SWARM_TOKENS_FIRST,
    SWARM_TOKENS_SECOND,
    AgentKind,
    Graph,
    Tokens,
    agent_as_tool_team,
    coder_tester_flow,
    command_handoff_team,
    command_routed_agent,
    nested_agent_team,
    solo_agent,
    supervisor_team,
    swarm_team,
    triage_desk,
)

MakeTracker = Callable[..., Tracker]
Series = dict[tuple[str, ...], float]

MODEL = "fake-messages-list-chat-model"
INPUT: dict[str, Any] = {"messages": [("user", "go")]}
TEAM = "research_team"  # the supervisor graph's compiled name: the workflow label
PAIR = "pair"  # the swarm's compiled name

SWITCHES = "hypertool_persona_switches_total"
HANDOFFS = "hypertool_persona_handoffs_total"
TOKENS = "hypertool_persona_tokens_used_total"
TOOL_CALLS = "hypertool_tool_calls_total"
LLM_REQUESTS = "hypertool_llm_requests_total"
STAGES = "hypertool_workflow_stage_duration_seconds"
PERSONA_SECONDS = "hypertool_persona_duration_seconds"

# Seconds each scenario tool takes on the manual clock (nothing else advances it).
TOOL_SECONDS = {"search": 2.0, "write_draft": 3.0}


# -- helpers ----------------------------------------------------------------------------------

def series(registry: CollectorRegistry, name: str, *labels: str) -> Series:
    """Every non-zero sample called ``name``, keyed by the values of ``labels`` in order."""
    found: Series = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name and sample.value:
                key = tuple(sample.labels[label] for label in labels)
                found[key] = found.get(key, 0.0) + sample.value
    return found


def switches(registry: CollectorRegistry) -> Series:
    return series(registry, SWITCHES, "from_persona", "to_persona", "workflow")


def handoffs(registry: CollectorRegistry) -> Series:
    return series(registry, HANDOFFS, "from_persona", "to_persona", "workflow")


def tokens(registry: CollectorRegistry) -> Series:
    return series(registry, TOKENS, "persona", "model", "token_type")


def tool_calls(registry: CollectorRegistry) -> Series:
    return series(registry, TOOL_CALLS, "tool", "persona", "status")


def llm_requests(registry: CollectorRegistry) -> Series:
    return series(registry, LLM_REQUESTS, "model", "persona", "status")


def stages(registry: CollectorRegistry, suffix: str = "_count") -> Series:
    return series(registry, STAGES + suffix, "workflow", "stage", "persona")


def persona_seconds(registry: CollectorRegistry, suffix: str = "_count") -> Series:
    return series(registry, PERSONA_SECONDS + suffix, "persona", "workflow")


def expected_tokens(*per_run: Tokens) -> Series:
    """The tokens series one run of each given scenario script produces (summed)."""
    out: Series = {}
    for script in per_run:
        for persona, (inp, outp) in script.items():
            for token_type, count in (("input", inp), ("output", outp)):
                key = (persona, MODEL, token_type)
                out[key] = out.get(key, 0.0) + count
    return out


def times(values: Series, n: int) -> Series:
    return {key: value * n for key, value in values.items()}


def clock_hook(clock: ManualClock) -> Callable[[str], None]:
    return lambda tool_name: clock.advance(TOOL_SECONDS[tool_name])


def run(app: Graph, handler: HypertoolCallbackHandler, **config: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.invoke(
        INPUT, config=cast(RunnableConfig, {"callbacks": [handler], **config}))
    return result


# Single-run expectations of the supervisor team (workflow TEAM).
SUPERVISOR_SWITCHES: Series = {
    ("supervisor", "researcher", TEAM): 1, ("researcher", "supervisor", TEAM): 1,
    ("supervisor", "writer", TEAM): 1, ("writer", "supervisor", TEAM): 1,
}
SUPERVISOR_HANDOFFS: Series = {("supervisor", "researcher", TEAM): 1,
                               ("supervisor", "writer", TEAM): 1}
SUPERVISOR_TOOLS: Series = {
    ("transfer_to_researcher", "supervisor", "ok"): 1, ("search", "researcher", "ok"): 1,
    ("transfer_to_writer", "supervisor", "ok"): 1, ("write_draft", "writer", "ok"): 1,
}
SUPERVISOR_LLM: Series = {(MODEL, "supervisor", "ok"): 3, (MODEL, "researcher", "ok"): 2,
                          (MODEL, "writer", "ok"): 2}
SUPERVISOR_STAGES: Series = {(TEAM, "supervisor", "supervisor"): 3,
                             (TEAM, "researcher", "researcher"): 1,
                             (TEAM, "writer", "writer"): 1}


# -- 1. supervisor with two named sub-agents --------------------------------------------------

@pytest.mark.parametrize("kind", AGENT_KINDS)
def test_supervisor_team_personas_switches_handoffs_tokens_tools(
    kind: AgentKind, make_tracker: MakeTracker, registry: CollectorRegistry,
    clock: ManualClock,
) -> None:
    """Personas come from the agents' names alone; the transfer tools are handoffs (counted
    once although their Command bubbles through two node runs); each agent's tokens and tools
    are its own; the supervisor graph's nodes are the stages."""
    tracker = make_tracker(clock=clock)
    run(supervisor_team(kind, on_tool=clock_hook(clock), name=TEAM),
        HypertoolCallbackHandler(tracker))

    assert switches(registry) == SUPERVISOR_SWITCHES
    assert handoffs(registry) == SUPERVISOR_HANDOFFS
    assert tokens(registry) == expected_tokens(SUPERVISOR_TOKENS)
    assert tool_calls(registry) == SUPERVISOR_TOOLS
    assert llm_requests(registry) == SUPERVISOR_LLM
    assert stages(registry) == SUPERVISOR_STAGES
    # Only the tools take time: the researcher's stint and stage last exactly its search.
    assert stages(registry, "_sum") == {(TEAM, "researcher", "researcher"): 2.0,
                                        (TEAM, "writer", "writer"): 3.0}
    assert persona_seconds(registry) == {("supervisor", TEAM): 3, ("researcher", TEAM): 1,
                                         ("writer", TEAM): 1}
    assert persona_seconds(registry, "_sum") == {("researcher", TEAM): 2.0,
                                                 ("writer", TEAM): 3.0}
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


# -- 2. swarm with handoffs both ways, across two invocations of one thread ------------------

@pytest.mark.parametrize("kind", AGENT_KINDS)
def test_swarm_handoffs_both_ways_and_switches_continue_across_invocations(
    kind: AgentKind, make_tracker: MakeTracker, registry: CollectorRegistry,
    clock: ManualClock,
) -> None:
    """The thread is the workflow execution: the second invocation starts with alice, who was
    acting when the first ended, so it is no switch; its alice->bob adds to the same series.
    Idle time between invocations is nobody's stint."""
    tracker = make_tracker(clock=clock)
    handler = HypertoolCallbackHandler(tracker)
    app = swarm_team(kind, on_tool=clock_hook(clock))
    thread = {"configurable": {"thread_id": "t1"}}

    run(app, handler, **thread)
    assert switches(registry) == {("alice", "bob", PAIR): 1,
                                  ("bob", "alice", PAIR): 1}
    assert handoffs(registry) == {("alice", "bob", PAIR): 1,
                                  ("bob", "alice", PAIR): 1}
    assert tokens(registry) == expected_tokens(SWARM_TOKENS_FIRST)
    assert tool_calls(registry) == {
        ("search", "alice", "ok"): 1, ("transfer_to_bob", "alice", "ok"): 1,
        ("write_draft", "bob", "ok"): 1, ("transfer_to_alice", "bob", "ok"): 1,
    }
    assert tracker.live_executions == 1  # the thread's acting persona is kept

    clock.advance(100.0)  # the user thinks
    result = run(app, handler, **thread)
    assert result["active_agent"] == "bob"
    assert switches(registry) == {("alice", "bob", PAIR): 2,
                                  ("bob", "alice", PAIR): 1}
    assert handoffs(registry) == {("alice", "bob", PAIR): 2,
                                  ("bob", "alice", PAIR): 1}
    assert tokens(registry) == expected_tokens(SWARM_TOKENS_FIRST, SWARM_TOKENS_SECOND)
    assert tool_calls(registry) == {
        ("search", "alice", "ok"): 1, ("transfer_to_bob", "alice", "ok"): 2,
        ("write_draft", "bob", "ok"): 1, ("transfer_to_alice", "bob", "ok"): 1,
    }
    assert llm_requests(registry) == {(MODEL, "alice", "ok"): 4, (MODEL, "bob", "ok"): 3}
    assert stages(registry) == {(PAIR, "alice", "alice"): 3,
                                (PAIR, "bob", "bob"): 2}
    # alice: until the first handoff, after the hand-back, and in the second invocation until
    # her handoff; bob: his turn in each invocation. The 100 s pause counts for no one.
    assert persona_seconds(registry) == {("alice", PAIR): 3, ("bob", PAIR): 2}
    assert persona_seconds(registry, "_sum") == {("alice", PAIR): 2.0,
                                                 ("bob", PAIR): 3.0}
    assert tracker.live_runs == 0


# -- 3. agents nested in other agents' graphs -------------------------------------------------

def test_named_agent_nested_in_a_hand_built_agent_graph(
    make_tracker: MakeTracker, registry: CollectorRegistry, clock: ManualClock,
) -> None:
    """``lead`` is a top-level graph with an ``agent`` node (so it is an agent); its ``inner``
    node hosts ``create_agent(name="inner")``: inner's LLM calls and tools are inner's."""
    tracker = make_tracker(clock=clock)
    run(nested_agent_team(on_tool=clock_hook(clock)), HypertoolCallbackHandler(tracker))

    assert switches(registry) == {("lead", "inner", "lead"): 1, ("inner", "lead", "lead"): 1}
    assert handoffs(registry) == {}
    assert tokens(registry) == expected_tokens(NESTED_TOKENS)
    assert tool_calls(registry) == {("search", "inner", "ok"): 1}
    assert llm_requests(registry) == {(MODEL, "lead", "ok"): 2, (MODEL, "inner", "ok"): 2}
    assert persona_seconds(registry, "_sum") == {("inner", "lead"): 2.0}
    # The generic ``agent`` node is the lead's stage, named after the lead (the ``inner``
    # stage's persona is the next test's subject).
    assert stages(registry)[("lead", "lead", "lead")] == 2


def test_stage_hosting_a_sub_agent_is_attributed_to_that_sub_agent(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """The stage ``inner`` is worked by the inner agent alone (every LLM and tool call in it is
    inner's), so its stage-duration series names persona ``inner``, not ``lead`` whose only
    run in that stage is the hosting node run itself."""
    run(nested_agent_team(), HypertoolCallbackHandler(make_tracker()))

    assert stages(registry) == {("lead", "lead", "lead"): 2, ("lead", "inner", "inner"): 1}


def test_agent_used_as_a_tool_of_another_agent(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``expert`` runs inside lead's ``ask_expert`` tool: its calls are expert's, the tool
    call itself is lead's, and the stage stays lead's (only the outermost graph's nodes are
    stages, never the expert's internal ``model``/``tools``)."""
    tracker = make_tracker()
    run(agent_as_tool_team(), HypertoolCallbackHandler(tracker))

    assert switches(registry) == {("lead", "expert", "lead"): 1,
                                  ("expert", "lead", "lead"): 1}
    assert handoffs(registry) == {}
    assert tokens(registry) == expected_tokens(AGENT_AS_TOOL_TOKENS)
    assert tool_calls(registry) == {("ask_expert", "lead", "ok"): 1,
                                    ("search", "expert", "ok"): 1}
    assert stages(registry) == {("lead", "lead", "lead"): 3}
    assert tracker.live_runs == 0


def test_unnamed_subgraphs_are_named_by_their_hosting_nodes(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """Unnamed compiled agents (graph name ``LangGraph``) as nodes ``coder`` and ``tester`` of a
    workflow graph: the node names become the personas; the workflow graph itself is no agent
    (its nodes are its stages)."""
    run(coder_tester_flow(), HypertoolCallbackHandler(make_tracker()))

    assert switches(registry) == {("coder", "tester", "dev_flow"): 1}
    assert handoffs(registry) == {}
    assert tokens(registry) == expected_tokens(CODER_TESTER_TOKENS)
    assert tool_calls(registry) == {("write_draft", "coder", "ok"): 1,
                                    ("search", "tester", "ok"): 1}
    assert llm_requests(registry) == {(MODEL, "coder", "ok"): 2, (MODEL, "tester", "ok"): 2}
    assert stages(registry) == {("dev_flow", "coder", "coder"): 1,
                                ("dev_flow", "tester", "tester"): 1}


# -- 4. a single named agent ------------------------------------------------------------------

@pytest.mark.parametrize("kind", AGENT_KINDS)
def test_single_named_agent_is_its_own_persona_and_stage(
    kind: AgentKind, make_tracker: MakeTracker, registry: CollectorRegistry,
    clock: ManualClock,
) -> None:
    tracker = make_tracker(clock=clock)
    run(solo_agent(kind, on_tool=clock_hook(clock)), HypertoolCallbackHandler(tracker))

    assert switches(registry) == {}
    assert handoffs(registry) == {}
    assert tokens(registry) == expected_tokens(SOLO_TOKENS)
    assert tool_calls(registry) == {("search", "solo", "ok"): 1}
    assert llm_requests(registry) == {(MODEL, "solo", "ok"): 2}
    # model, tools, model: three node runs, each a ``solo`` stage (generic node names replaced).
    assert stages(registry) == {("solo", "solo", "solo"): 3}
    assert persona_seconds(registry) == {("solo", "solo"): 1}
    assert persona_seconds(registry, "_sum") == {("solo", "solo"): 2.0}
    assert tracker.live_executions == 0


# -- Command(goto=...) handoffs ---------------------------------------------------------------

def test_command_goto_from_a_sub_agent_is_one_handoff(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """A tool not named ``transfer_to_*`` returning ``Command(goto="bob", graph=PARENT)``: the
    Command surfaces at alice's ``tools`` node and again at the outer ``alice`` node, and is
    one handoff; the tool call is a success."""
    run(command_handoff_team(), HypertoolCallbackHandler(make_tracker()))

    assert handoffs(registry) == {("alice", "bob", "team"): 1}
    assert switches(registry) == {("alice", "bob", "team"): 1}
    assert tokens(registry) == expected_tokens(COMMAND_TOKENS)
    assert tool_calls(registry) == {("pass_to_bob", "alice", "ok"): 1}


def test_command_from_a_plain_routing_node_is_no_handoff_from_unknown(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``triage`` is a function node of a workflow graph: it belongs to no agent, so its
    ``Command(goto="alice")`` cannot be recorded as a handoff from a persona; ``unknown`` never
    appears as from/to persona. Alice's work is alice's; the first persona is no switch."""
    run(triage_desk(), HypertoolCallbackHandler(make_tracker()))

    assert tokens(registry) == expected_tokens({"alice": (5, 1)})
    assert switches(registry) == {}
    assert handoffs(registry) == {}


def test_command_to_an_agent_internal_node_is_no_handoff(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """A hand-built agent routing to its own ``tools`` node with ``Command(goto="tools")`` is
    not handing off to another agent: no handoff series, and never one labelled ``tools``."""
    run(command_routed_agent(), HypertoolCallbackHandler(make_tracker()))

    assert tokens(registry) == expected_tokens({"handmade": (11, 3)})
    assert tool_calls(registry) == {("search", "handmade", "ok"): 1}
    assert stages(registry) == {("handmade", "handmade", "handmade"): 3}
    assert switches(registry) == {}
    assert handoffs(registry) == {}


# -- 5. explicit tags, metadata and configured rules win --------------------------------------

def test_explicit_persona_tag_on_invoke_wins_over_agent_names(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``persona:lead`` on the invoke is inherited by every run: all the work is lead's and
    nobody switches, although the graph names three agents."""
    run(supervisor_team(name=TEAM), HypertoolCallbackHandler(make_tracker()),
        tags=["persona:lead"])

    assert tokens(registry) == expected_tokens({"lead": (740, 20)})
    assert llm_requests(registry) == {(MODEL, "lead", "ok"): 7}
    assert tool_calls(registry) == {
        ("transfer_to_researcher", "lead", "ok"): 1, ("search", "lead", "ok"): 1,
        ("transfer_to_writer", "lead", "ok"): 1, ("write_draft", "lead", "ok"): 1,
    }
    assert switches(registry) == {}
    assert stages(registry) == {(TEAM, "supervisor", "lead"): 3,
                                (TEAM, "researcher", "lead"): 1, (TEAM, "writer", "lead"): 1}


def test_explicit_persona_tag_leaves_no_agent_name_in_handoffs(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """With every run explicitly ``lead``, the transfer tools hand work from lead to lead: no
    handoff series may name ``researcher`` or ``writer``, which are personas of nothing."""
    run(supervisor_team(name=TEAM), HypertoolCallbackHandler(make_tracker()),
        tags=["persona:lead"])

    assert handoffs(registry) == {}


def test_explicit_metadata_on_a_nested_agent_node_wins_over_its_name(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``add_node("inner", agent, metadata={"hypertool_persona": "scout"})``: the inner
    agent's work is scout's; the lead is still inferred."""
    run(nested_agent_team(inner_metadata={"hypertool_persona": "scout"}),
        HypertoolCallbackHandler(make_tracker()))

    assert switches(registry) == {("lead", "scout", "lead"): 1, ("scout", "lead", "lead"): 1}
    assert tokens(registry) == expected_tokens({"lead": (15, 7), "scout": (11, 3)})
    assert tool_calls(registry) == {("search", "scout", "ok"): 1}


def test_configured_persona_rule_renames_an_agent(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``personas={"analyst": {"names": ["researcher"]}}``: everything the researcher does is
    the analyst's; the other agents are still inferred from their names; stages stay the
    supervisor graph's node names."""
    run(supervisor_team(name=TEAM),
        HypertoolCallbackHandler(make_tracker(personas={"analyst": {"names": ["researcher"]}})))

    assert switches(registry) == {
        ("supervisor", "analyst", TEAM): 1, ("analyst", "supervisor", TEAM): 1,
        ("supervisor", "writer", TEAM): 1, ("writer", "supervisor", TEAM): 1,
    }
    assert tokens(registry) == expected_tokens(
        {"supervisor": (600, 6), "analyst": (50, 5), "writer": (90, 9)})
    assert tool_calls(registry) == {
        ("transfer_to_researcher", "supervisor", "ok"): 1, ("search", "analyst", "ok"): 1,
        ("transfer_to_writer", "supervisor", "ok"): 1, ("write_draft", "writer", "ok"): 1,
    }
    assert stages(registry) == {(TEAM, "supervisor", "supervisor"): 3,
                                (TEAM, "researcher", "analyst"): 1,
                                (TEAM, "writer", "writer"): 1}


def test_configured_persona_rule_applies_to_handoff_targets(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``transfer_to_researcher`` hands off to the agent whose persona is ``analyst``: the
    handoff series agrees with the switch series (supervisor -> analyst)."""
    run(supervisor_team(name=TEAM),
        HypertoolCallbackHandler(make_tracker(personas={"analyst": {"names": ["researcher"]}})))

    assert handoffs(registry) == {("supervisor", "analyst", TEAM): 1,
                                  ("supervisor", "writer", TEAM): 1}


# -- 6. no generic names anywhere -------------------------------------------------------------

GENERIC = frozenset({"LangGraph", "agent", "model", "tools", "call_model", "__start__"})
PERSONA_LABELS = ("persona", "stage")
FROM_TO_LABELS = ("from_persona", "to_persona")


def _swarm_twice(handler: HypertoolCallbackHandler) -> None:
    app = swarm_team()
    for _ in range(2):
        run(app, handler, configurable={"thread_id": "t1"})


SCENARIOS: dict[str, Callable[[HypertoolCallbackHandler], Any]] = {
    "supervisor-create_agent": lambda h: run(supervisor_team("create_agent"), h),
    "supervisor-create_react_agent": lambda h: run(supervisor_team("create_react_agent"), h),
    "swarm": _swarm_twice,
    "nested": lambda h: run(nested_agent_team(), h),
    "agent-as-tool": lambda h: run(agent_as_tool_team(), h),
    "unnamed-subgraphs": lambda h: run(coder_tester_flow(), h),
    "solo-create_agent": lambda h: run(solo_agent("create_agent"), h),
    "solo-create_react_agent": lambda h: run(solo_agent("create_react_agent"), h),
    "command-handoff": lambda h: run(command_handoff_team(), h),
    "command-routing-node": lambda h: run(triage_desk(), h),
    "command-internal-node": lambda h: run(command_routed_agent(), h),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_generic_name_is_ever_a_persona_or_stage_label(
    scenario: str, make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    SCENARIOS[scenario](HypertoolCallbackHandler(make_tracker()))

    bad: list[tuple[str, str, str]] = []
    checked = 0
    for family in registry.collect():
        for sample in family.samples:
            if not sample.value or sample.name.endswith("_created"):
                continue
            for label, value in sample.labels.items():
                if label in PERSONA_LABELS:
                    checked += 1
                    if value in GENERIC:
                        bad.append((sample.name, label, value))
                elif label in FROM_TO_LABELS:
                    checked += 1
                    if value in GENERIC or value == "unknown":
                        bad.append((sample.name, label, value))
    assert checked > 0
    assert bad == []


# -- 7. concurrency ---------------------------------------------------------------------------

PARALLEL = 4


class RootOrder(BaseCallbackHandler):
    """Starts and ends of root runs, in order: shows the executions really overlapped."""

    run_inline = True

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any,
                       parent_run_id: Any = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            self.events.append("start")

    def on_chain_end(self, outputs: Any, *, run_id: Any, parent_run_id: Any = None,
                     **kwargs: Any) -> None:
        if parent_run_id is None:
            self.events.append("end")

    @property
    def most_in_flight(self) -> int:
        live = most = 0
        for event in self.events:
            live += 1 if event == "start" else -1
            most = max(most, live)
        return most


@pytest.mark.parametrize("kind", AGENT_KINDS)
async def test_parallel_supervisor_runs_add_up_without_cross_talk(
    kind: AgentKind, make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    order = RootOrder()
    apps = [supervisor_team(kind, name=TEAM) for _ in range(PARALLEL)]

    await asyncio.gather(*(app.ainvoke(INPUT, config={"callbacks": [order, handler]})
                           for app in apps))

    assert order.most_in_flight == PARALLEL  # really concurrent

    assert switches(registry) == times(SUPERVISOR_SWITCHES, PARALLEL)
    assert handoffs(registry) == times(SUPERVISOR_HANDOFFS, PARALLEL)
    assert tokens(registry) == times(expected_tokens(SUPERVISOR_TOKENS), PARALLEL)
    assert tool_calls(registry) == times(SUPERVISOR_TOOLS, PARALLEL)
    assert llm_requests(registry) == times(SUPERVISOR_LLM, PARALLEL)
    assert stages(registry) == times(SUPERVISOR_STAGES, PARALLEL)
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


async def test_parallel_swarm_threads_keep_their_own_acting_persona(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """Each task drives its own thread twice; threads interleave on the event loop. A thread
    that picked up another thread's acting persona would add bob->alice or alice->alice
    series, or lose alice->bob ones."""
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    order = RootOrder()

    async def conversation(n: int) -> None:
        app = swarm_team("create_agent")
        config: RunnableConfig = {"callbacks": [order, handler],
                                  "configurable": {"thread_id": f"t{n}"}}
        for _ in range(2):
            await app.ainvoke(INPUT, config=config)

    await asyncio.gather(*(conversation(n) for n in range(PARALLEL)))

    assert len(order.events) == 4 * PARALLEL
    assert order.most_in_flight >= 2  # threads really interleaved

    assert switches(registry) == {("alice", "bob", PAIR): 2 * PARALLEL,
                                  ("bob", "alice", PAIR): PARALLEL}
    assert handoffs(registry) == {("alice", "bob", PAIR): 2 * PARALLEL,
                                  ("bob", "alice", PAIR): PARALLEL}
    assert tokens(registry) == times(
        expected_tokens(SWARM_TOKENS_FIRST, SWARM_TOKENS_SECOND), PARALLEL)
    assert tracker.live_executions == PARALLEL
    assert tracker.live_runs == 0


# -- resolution is done once per run ----------------------------------------------------------

class CountingResolver(Resolver):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.calls: Counter[str] = Counter()

    def resolve(self, run: Run, parent: Run | None) -> None:
        self.calls[str(UUID(int=run.run_id))] += 1  # the tracker keys a UUID by its int
        super().resolve(run, parent)


class StartRecorder(BaseCallbackHandler):
    """The run ids of every start event LangChain emits."""

    run_inline = True

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any,
                       **kwargs: Any) -> None:
        self.started.append(str(run_id))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any,
                            **kwargs: Any) -> None:
        self.started.append(str(run_id))

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: Any,
                      **kwargs: Any) -> None:
        self.started.append(str(run_id))


def test_persona_and_stage_are_resolved_once_per_run(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """Every run is resolved at most once, at its start: ends, tokens, errors and the
    Command/ParentCommand bubbling never re-resolve ancestry or namespaces. (Runs that
    inherit everything and that no sink needs are folded into their parent, unresolved.)"""
    tracker = make_tracker()
    resolver = CountingResolver(tracker.config)
    tracker.resolver = resolver
    recorder = StartRecorder()

    supervisor_team(name=TEAM).invoke(
        INPUT, config={"callbacks": [recorder, HypertoolCallbackHandler(tracker)]})

    assert len(recorder.started) == len(set(recorder.started)) > 40
    assert set(resolver.calls) <= set(recorder.started)
    assert len(resolver.calls) > 20
    assert set(resolver.calls.values()) == {1}
    # Same metrics as without the counting subclass: the resolver was really the one used.
    assert switches(registry) == SUPERVISOR_SWITCHES
