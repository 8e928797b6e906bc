"""Issue 14 item 7: zero-config personas on a plain StateGraph whose nodes are roles.

Real LangGraph, fake models, no hypertool configuration unless a test says so. When nothing
stronger names a run (tag/metadata, rule, named agent, subgraph), the LangGraph node it runs in
is its persona; tools run by a ``ToolNode`` belong to the persona whose LLM asked for them.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from tests.agents import ROLES_TOKENS, role_graph
from tests.test_multiagent import (
    MODEL,
    MakeTracker,
    clock_hook,
    expected_tokens,
    handoffs,
    llm_requests,
    persona_seconds,
    run,
    stages,
    switches,
    times,
    tokens,
    tool_calls,
)

ROLES = "roles"
HINT_LOGGER = "hypertool_callbacks.context.persona_hint"


def test_node_names_are_personas_and_tools_belong_to_the_llm_that_asked(
    make_tracker: MakeTracker, registry: CollectorRegistry, clock: ManualClock,
) -> None:
    tracker = make_tracker(clock=clock)
    run(role_graph(on_tool=clock_hook(clock)), HypertoolCallbackHandler(tracker))

    assert tokens(registry) == expected_tokens(ROLES_TOKENS)
    assert llm_requests(registry) == {(MODEL, "planner", "ok"): 1, (MODEL, "coder", "ok"): 2,
                                      (MODEL, "reviewer", "ok"): 1}
    # The ToolNode is called ``tools`` (generic): the coder's model asked for the search.
    assert tool_calls(registry) == {("search", "coder", "ok"): 1}
    assert switches(registry) == {("planner", "coder", ROLES): 1,
                                  ("coder", "reviewer", ROLES): 1}
    assert handoffs(registry) == {}
    assert stages(registry) == {(ROLES, "planner", "planner"): 1, (ROLES, "coder", "coder"): 2,
                                (ROLES, "reviewer", "reviewer"): 1}
    # The coder acts from its first call until the reviewer's: the 2 s search included.
    assert persona_seconds(registry, "_sum") == {("coder", ROLES): 2.0}
    assert tracker.live_runs == 0


def test_tools_in_a_named_tool_node_still_belong_to_the_llm_that_asked(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """A ToolNode called ``toolbox`` is a real node name, but the coder asked for the tool."""
    run(role_graph(tools_node="toolbox"), HypertoolCallbackHandler(make_tracker()))

    assert tool_calls(registry) == {("search", "coder", "ok"): 1}
    assert switches(registry) == {("planner", "coder", ROLES): 1,
                                  ("coder", "reviewer", ROLES): 1}


def test_node_rules_rename_the_roles_and_reach_the_tool_node(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """Rules beat node names; the ToolNode's tools follow the renamed coder."""
    personas = {"architect": {"nodes": ["planner"]}, "developer": {"nodes": ["coder"]}}
    run(role_graph(), HypertoolCallbackHandler(make_tracker(personas=personas)))

    assert tool_calls(registry) == {("search", "developer", "ok"): 1}
    assert llm_requests(registry) == {(MODEL, "architect", "ok"): 1,
                                      (MODEL, "developer", "ok"): 2,
                                      (MODEL, "reviewer", "ok"): 1}
    assert switches(registry) == {("architect", "developer", ROLES): 1,
                                  ("developer", "reviewer", ROLES): 1}


def test_explicit_tag_beats_node_names(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    run(role_graph(), HypertoolCallbackHandler(make_tracker()), tags=["persona:solo"])

    assert llm_requests(registry) == {(MODEL, "solo", "ok"): 4}
    assert tool_calls(registry) == {("search", "solo", "ok"): 1}
    assert switches(registry) == {}


def test_node_personas_can_be_switched_off(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    run(role_graph(), HypertoolCallbackHandler(make_tracker(node_personas=False)))

    assert llm_requests(registry) == {(MODEL, "unknown", "ok"): 4}
    assert tool_calls(registry) == {("search", "unknown", "ok"): 1}
    assert switches(registry) == {}


def test_node_personas_off_keeps_rules_and_the_tool_follows_its_llm(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    tracker = make_tracker(node_personas=False, personas={"developer": {"nodes": ["coder"]}})
    run(role_graph(), HypertoolCallbackHandler(tracker))

    assert llm_requests(registry) == {(MODEL, "unknown", "ok"): 2,
                                      (MODEL, "developer", "ok"): 2}
    assert tool_calls(registry) == {("search", "developer", "ok"): 1}


# -- the hint when most calls are unknown -----------------------------------------------------

def _hints(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == HINT_LOGGER and "persona" in r.getMessage()
            and "unknown" in r.getMessage()]


def test_one_hint_when_most_calls_are_unknown(
    make_tracker: MakeTracker, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HINT_LOGGER)
    tracker = make_tracker(node_personas=False)
    handler = HypertoolCallbackHandler(tracker)
    for _ in range(6):  # 30 LLM and tool calls, all unknown
        run(role_graph(), handler)
    tracker.shutdown()

    assert llm_requests(registry) == {(MODEL, "unknown", "ok"): 24}
    hints = _hints(caplog)
    assert len(hints) == 1
    for way in ("persona:", "hypertool_persona", "[personas.", "name=", "node_personas"):
        assert way in hints[0]


def test_a_short_script_of_unknown_calls_gets_the_hint_at_shutdown(
    make_tracker: MakeTracker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HINT_LOGGER)
    tracker = make_tracker(node_personas=False)
    run(role_graph(), HypertoolCallbackHandler(tracker))
    assert _hints(caplog) == []
    tracker.shutdown()
    assert len(_hints(caplog)) == 1


def test_no_hint_when_personas_are_known(
    make_tracker: MakeTracker, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=HINT_LOGGER)
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    for _ in range(6):
        run(role_graph(), handler)
    tracker.shutdown()

    assert tokens(registry) == times(expected_tokens(ROLES_TOKENS), 6)
    assert _hints(caplog) == []


def test_tools_follow_a_prompt_rule_that_renamed_their_agents_llm(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``create_agent(name="bot", system_prompt="You are a senior code reviewer")`` with a
    prompt-keyword rule: the rule names the LLM calls (only they carry the prompt); the tool
    the reviewer's model asked for is the reviewer's too, not the agent name's."""
    from langchain.agents import create_agent

    from tests.agents import work_tools
    from tests.fakes import ToolCallingFake, reply

    model = ToolCallingFake(responses=[reply(calls=[("search", {"query": "x"})], tokens=(5, 1)),
                                       reply("done", tokens=(6, 2))])
    bot = create_agent(model, [work_tools()["search"]], name="bot",
                       system_prompt="You are a senior code reviewer.")
    personas = {"reviewer": {"prompt_keywords": ["senior code reviewer"]}}
    run(bot, HypertoolCallbackHandler(make_tracker(personas=personas)))

    assert llm_requests(registry) == {(MODEL, "reviewer", "ok"): 2}
    assert tool_calls(registry) == {("search", "reviewer", "ok"): 1}


def test_the_delivery_demo_keeps_its_five_personas_with_node_personas_on(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """The software-delivery demo's nodes are stages (plan, implement, test, review, release)
    and its personas come from rules and a named agent: every call is named by those, so no
    node name becomes a persona and nothing is left ``unknown``."""
    from hypertool_callbacks.demo import pipeline

    tracker = make_tracker(pipeline.CONFIG)
    pipeline.run_once(pipeline.build(), [HypertoolCallbackHandler(tracker)])

    personas = {key[1] for key in llm_requests(registry)} | {
        key[1] for key in tool_calls(registry)}
    assert personas == {"planner", "backend-engineer", "qa-engineer", "reviewer",
                        "release-manager"}
    assert {p for key in switches(registry) for p in key[:2]} <= personas


# -- the same rules on neutral events (any adapter) -------------------------------------------

def _node_meta(name: str) -> dict[str, object]:
    return {"langgraph_node": name, "langgraph_checkpoint_ns": f"{name}:1"}


def test_sources_of_node_and_caller_personas_on_neutral_events(make_tracker: MakeTracker) -> None:
    from hypertool_callbacks.context.runs import UNKNOWN, Source
    from hypertool_callbacks.events import RunEnd, RunKind, RunStart

    tracker = make_tracker()
    tracker.start(RunStart("g", None, RunKind.CHAIN, "flow"))
    tracker.start(RunStart("n", "g", RunKind.CHAIN, "coder", ("graph:step:1",),
                           _node_meta("coder")))
    tracker.start(RunStart("seq", "n", RunKind.CHAIN, "RunnableSequence", (),
                           _node_meta("coder")))
    tracker.start(RunStart("llm", "seq", RunKind.LLM, "chat", (), _node_meta("coder")))
    node, seq, llm = (tracker.get_run(i) for i in ("n", "seq", "llm"))
    assert node is not None and seq is not None and llm is not None
    # Chains in the node stay unknown: only the call doing the work takes the node's name.
    assert (node.persona, seq.persona) == (UNKNOWN, UNKNOWN)
    assert (llm.persona, llm.persona_source) == ("coder", Source.NODE)
    tracker.end(RunEnd("llm", tool_call_ids=("call-1", "call-2")))
    for run_id in ("seq", "n"):
        tracker.end(RunEnd(run_id))
    # The ToolNode (generic name) runs both calls; an unknown id gets nothing from the asker.
    tracker.start(RunStart("t", "g", RunKind.CHAIN, "tools", ("graph:step:2",),
                           _node_meta("tools")))
    tracker.start(RunStart("tool1", "t", RunKind.TOOL, "search", (), _node_meta("tools"),
                           tool_call_id="call-1"))
    tracker.start(RunStart("tool2", "t", RunKind.TOOL, "search", (), _node_meta("tools"),
                           tool_call_id="call-9"))
    tool1, tool2 = tracker.get_run("tool1"), tracker.get_run("tool2")
    assert tool1 is not None and tool2 is not None
    assert (tool1.persona, tool1.persona_source) == ("coder", Source.CALLER)
    assert (tool2.persona, tool2.persona_source) == (UNKNOWN, Source.NONE)
    for run_id in ("tool1", "tool2", "t", "g"):
        tracker.end(RunEnd(run_id))
    assert tracker.live_runs == 0 and tracker.live_executions == 0
