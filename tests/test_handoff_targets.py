"""Issue 14 item 15: ``Command(goto=[a, b])`` hands off to each target, not only the first."""

from __future__ import annotations

import pytest
from langgraph.types import Command, Send
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.adapters.langchain_results import handoff_targets
from tests.agents import fan_out_desk, fan_out_team
from tests.test_multiagent import MakeTracker, expected_tokens, handoffs, run, switches, tokens


@pytest.mark.parametrize(("output", "targets"), [
    (Command(goto="bob"), ("bob",)),
    (Command(goto=["bob", "carol"]), ("bob", "carol")),
    (Command(goto=[Send("bob", {}), Send("carol", {})]), ("bob", "carol")),
    (Command(goto=["bob", Send("bob", {}), "__end__"]), ("bob",)),  # once each, no END
    (Command(goto=()), ()), (Command(update={"x": 1}), ()), ("bob", ()),
])
def test_every_command_target_is_read(output: object, targets: tuple[str, ...]) -> None:
    assert handoff_targets(None, output) == targets


def test_transfer_tool_names_its_one_target() -> None:
    assert handoff_targets("transfer_to_bob", None) == ("bob",)
    assert handoff_targets("search", Command(goto="bob")) == ()


def test_a_named_agent_handing_off_to_two_agents_counts_both(
    make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    run(fan_out_team(), HypertoolCallbackHandler(make_tracker()))

    assert handoffs(registry) == {("alice", "bob", "team"): 1, ("alice", "carol", "team"): 1}
    assert tokens(registry) == expected_tokens(
        {"alice": (5, 1), "bob": (6, 2), "carol": (7, 3)})


@pytest.mark.parametrize("send", [False, True], ids=["names", "sends"])
def test_a_plain_node_fanning_out_hands_off_as_the_persona_that_worked_in_it(
    send: bool, make_tracker: MakeTracker, registry: CollectorRegistry,
) -> None:
    """``planner`` is a plain node (its LLM call is persona ``planner`` by its node name): its
    ``Command`` to two nodes is two handoffs, from the planner."""
    run(fan_out_desk(send=send), HypertoolCallbackHandler(make_tracker()))

    assert handoffs(registry) == {("planner", "coder", "desk"): 1,
                                  ("planner", "reviewer", "desk"): 1}
    assert tokens(registry) == expected_tokens(
        {"planner": (10, 1), "coder": (20, 2), "reviewer": (30, 3)})
    # The two branches run one after the other on this executor: each start is a switch.
    assert switches(registry) == {("planner", "coder", "desk"): 1,
                                  ("coder", "reviewer", "desk"): 1}
