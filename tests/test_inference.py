"""Persona, stage and workflow inference: precedence, rules, label bounding, hostile input.

Unit tests drive :class:`Tracker` with neutral events; the rest use real langchain-core and
LangGraph runs with fake models and read the resolved values back from the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict
from uuid import uuid4

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.labels import MAX_LABEL_LENGTH, OTHER
from hypertool_callbacks.context.runs import UNKNOWN, Run, Source
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from tests.fakes import ToolCallingFake, reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
TOKENS = "hypertool_persona_tokens_used_total"
FAKE_MODEL = "fake-messages-list-chat-model"  # its _llm_type


def start(tracker: Tracker, run_id: str, parent: str | None = None, *, name: str = "step",
          kind: RunKind = RunKind.CHAIN, tags: Sequence[Any] = (),
          metadata: Mapping[str, Any] | None = None, system_prompt: str | None = None) -> Run:
    tracker.start(RunStart(run_id, parent, kind, name, tuple(tags), dict(metadata or {}),
                           system_prompt=system_prompt))
    run = tracker.get_run(run_id)
    assert run is not None
    return run


def node(tracker: Tracker, run_id: str, parent: str, name: str, step: int = 1,
         metadata: Mapping[str, Any] | None = None, tags: Sequence[str] = ()) -> Run:
    """A LangGraph node run as LangGraph reports it."""
    meta = {"langgraph_node": name, "langgraph_step": step,
            "langgraph_checkpoint_ns": f"{name}:{uuid4()}", **(metadata or {})}
    return start(tracker, run_id, parent, name=name, tags=[f"graph:step:{step}", *tags],
                 metadata=meta)


RULES = Config.model_validate({"personas": {
    "coder": {"names": ["write_*"]},
    "reviewer": {"regex": ["rev(iew)?er$"]},
    "tester": {"nodes": ["test*"]},
    "planner": {"prompt_keywords": ["Roadmap"]},
    "operator": {"tools": ["deploy_*"]},
}})


# -- persona precedence ----------------------------------------------------------------------


def test_metadata_beats_tag(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    run = start(tracker, "r", metadata={"hypertool_persona": "alice"}, tags=["persona:bob"])
    assert (run.persona, run.persona_source) == ("alice", Source.EXPLICIT)


def test_innermost_tag_wins(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    # LangChain appends a child's own tags after the inherited ones.
    run = start(tracker, "r", tags=["persona:outer", "other-tag", "persona:inner"])
    assert run.persona == "inner"


def test_tag_beats_rule(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(RULES)
    run = start(tracker, "r", name="write_code", tags=["persona:bob"])
    assert (run.persona, run.persona_source) == ("bob", Source.EXPLICIT)


def test_rule_beats_structure(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(RULES)
    run = start(tracker, "r", name="write_code", metadata={"lc_agent_name": "researcher"})
    assert (run.agent, run.persona, run.persona_source) == ("researcher", "coder", Source.RULE)


def test_structure_beats_inheritance(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "root", tags=["persona:boss"])
    run = start(tracker, "child", "root", metadata={"lc_agent_name": "researcher"})
    assert (run.persona, run.persona_source) == ("researcher", Source.STRUCTURE)


def test_inherits_from_parent(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "root", tags=["persona:boss"])
    start(tracker, "mid", "root")
    run = start(tracker, "leaf", "mid", kind=RunKind.LLM)
    assert (run.persona, run.persona_source) == ("boss", Source.INHERITED)


def test_unknown_when_nothing_says(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(RULES)
    start(tracker, "root", name="main")
    run = start(tracker, "leaf", "root", name="helper")
    assert (run.persona, run.persona_source) == (UNKNOWN, Source.NONE)


def test_child_explicit_overrides_parent_explicit(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "root", tags=["persona:boss"])
    run = start(tracker, "child", "root", metadata={"hypertool_persona": "worker"})
    assert (run.persona, run.persona_source) == ("worker", Source.EXPLICIT)


def test_agent_of_a_named_subgraph_is_the_structural_persona(make_tracker: MakeTracker) -> None:
    """``create_react_agent(name="researcher")``: a graph whose nodes are agent-internal."""
    tracker = make_tracker()
    graph = start(tracker, "graph", name="researcher")
    run = node(tracker, "n1", "graph", "agent")
    # Learned when the first node starts: the graph run is the agent, its nodes inherit it.
    assert (graph.persona, graph.persona_source) == ("researcher", Source.STRUCTURE)
    assert (run.persona, run.persona_source) == ("researcher", Source.INHERITED)


def test_workflow_graph_nodes_are_not_personas(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "graph", name="pipeline")
    run = node(tracker, "n1", "graph", "implement")
    assert run.persona == UNKNOWN
    assert (run.stage, run.stage_source) == ("implement", Source.STRUCTURE)


# -- stage precedence -----------------------------------------------------------------------

STAGE_RULES = Config.model_validate({"stages": {"qa": {"nodes": ["test*"], "names": ["check"]}}})


def test_stage_explicit_metadata_beats_tag_beats_rule(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(STAGE_RULES)
    start(tracker, "graph", name="pipeline")
    run = node(tracker, "a", "graph", "test_unit", metadata={"hypertool_stage": "m"},
               tags=["stage:t"])
    assert (run.stage, run.stage_source) == ("m", Source.EXPLICIT)
    run = node(tracker, "b", "graph", "test_unit", tags=["stage:t"])
    assert (run.stage, run.stage_source) == ("t", Source.EXPLICIT)
    run = node(tracker, "c", "graph", "test_unit")
    assert (run.stage, run.stage_source) == ("qa", Source.RULE)


def test_stage_rule_by_name_outside_a_graph(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(STAGE_RULES)
    start(tracker, "root", name="main")
    run = start(tracker, "c", "root", name="check")
    assert (run.stage, run.stage_source) == ("qa", Source.RULE)


def test_stage_structure_then_inherited_then_unknown(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    root = start(tracker, "graph", name="pipeline")
    assert root.stage == UNKNOWN
    impl = node(tracker, "n", "graph", "implement")
    assert (impl.stage, impl.stage_source, impl.stage_run) == (
        "implement", Source.STRUCTURE, impl)
    inner = start(tracker, "inner", "n", kind=RunKind.LLM)
    assert (inner.stage, inner.stage_source, inner.stage_run) == (
        "implement", Source.INHERITED, impl)


def test_nodes_of_nested_graphs_are_not_stages(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "graph", name="pipeline")
    node(tracker, "n", "graph", "research")
    start(tracker, "sub", "n", name="researcher")  # a subgraph running inside the node
    inner = start(tracker, "inner", "sub", name="agent", tags=["graph:step:1"],
                  metadata={"langgraph_node": "agent",
                            "langgraph_checkpoint_ns": "research:1|agent:2"})
    assert inner.stage == "research"
    assert inner.persona == "researcher"


def test_generic_node_name_gives_the_agent_as_stage(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "graph", name="researcher")
    run = node(tracker, "n", "graph", "tools")
    assert run.stage == "researcher"


# -- workflow precedence --------------------------------------------------------------------


def test_workflow_explicit_beats_root_name(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    assert start(tracker, "a", name="pipeline").workflow == "pipeline"
    assert start(tracker, "b", name="pipeline", tags=["workflow:release"]).workflow == "release"
    run = start(tracker, "c", name="pipeline", tags=["workflow:t"],
                metadata={"hypertool_workflow": "m"})
    assert run.workflow == "m"


def test_workflow_is_inherited(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "root", name="pipeline")
    start(tracker, "mid", "root", name="plan")
    assert start(tracker, "leaf", "mid", kind=RunKind.LLM, name="gpt").workflow == "pipeline"


# -- rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "write_code"}, "coder"),  # glob on the run name
        ({"name": "writer"}, UNKNOWN),  # globs match the whole name
        ({"name": "senior_reviewer"}, "reviewer"),  # regex searches anywhere
        ({"name": "reviewer_bot"}, UNKNOWN),  # ...but honours its own anchors
        ({"name": "rever"}, "reviewer"),
        ({"name": "x", "metadata": {"lc_agent_name": "write_docs"}}, "coder"),  # agent name
        ({"name": "x", "kind": RunKind.LLM, "system_prompt": "You own the ROADMAP."}, "planner"),
        ({"name": "x", "kind": RunKind.LLM, "system_prompt": "You write code."}, UNKNOWN),
        ({"name": "deploy_prod", "kind": RunKind.TOOL}, "operator"),  # tool it calls
        ({"name": "deploy_prod"}, UNKNOWN),  # a chain of that name is not a tool call
    ],
)
def test_persona_rules(make_tracker: MakeTracker, kwargs: dict[str, Any], expected: str) -> None:
    tracker = make_tracker(RULES)
    run = start(tracker, "r", **kwargs)
    assert run.persona == expected
    assert run.persona_source == (Source.NONE if expected == UNKNOWN else Source.RULE)


def test_persona_rule_by_langgraph_node(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(RULES)
    start(tracker, "graph", name="pipeline")
    run = node(tracker, "n", "graph", "test_suite")
    assert (run.persona, run.persona_source) == ("tester", Source.RULE)
    # Everything inside the node inherits it.
    leaf = start(tracker, "leaf", "n", kind=RunKind.LLM, metadata={"langgraph_node": "test_suite"})
    assert leaf.persona == "tester"


def test_first_configured_rule_wins(make_tracker: MakeTracker) -> None:
    config = Config.model_validate({"personas": {"first": {"names": ["a*"]},
                                                 "second": {"names": ["ab*"]}}})
    tracker = make_tracker(config)
    assert start(tracker, "r", name="abc").persona == "first"


def test_regex_with_inline_flags_matches(make_tracker: MakeTracker) -> None:
    """A regex valid on its own (config validation accepts it) must work in the tracker."""
    config = Config.model_validate({"personas": {"reviewer": {"names": ["review"],
                                                              "regex": ["(?i)^review"]}}})
    tracker = make_tracker(config)
    assert start(tracker, "r", name="REVIEWER").persona == "reviewer"


def test_regexes_with_the_same_group_name(make_tracker: MakeTracker) -> None:
    config = Config.model_validate({"personas": {"qa": {"regex": ["(?P<kind>test)er",
                                                                  "(?P<kind>check)er"]}}})
    tracker = make_tracker(config)
    assert start(tracker, "r", name="checker").persona == "qa"


def test_system_prompt_rule_in_a_real_chain(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(RULES)
    model = ToolCallingFake(responses=[reply("ok", tokens=(21, 4))])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You maintain the product roadmap."), ("user", "{q}")])
    (prompt | model).invoke({"q": "next?"},
                            config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert sample(TOKENS, persona="planner", model=FAKE_MODEL, token_type="input") == 21
    assert sample(TOKENS, persona="planner", model=FAKE_MODEL, token_type="output") == 4
    assert sample(TOKENS, persona=UNKNOWN, model=FAKE_MODEL, token_type="input") == 0
    assert tracker.live_runs == 0


def test_tool_rule_in_a_real_chain(make_tracker: MakeTracker, sample: Sample) -> None:
    @tool
    def deploy_prod(version: str) -> str:
        """Deploy a version."""
        return f"deployed {version}"

    tracker = make_tracker(RULES)
    deploy_prod.invoke({"version": "1.2"},
                       config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert sample("hypertool_tool_calls_total", tool="deploy_prod", persona="operator",
                  status="ok") == 1


class _State(TypedDict, total=False):
    log: list[str]


def _graph_with_nodes(model: ToolCallingFake) -> Any:
    def plan(state: _State) -> _State:
        return {"log": ["plan"]}

    def implement(state: _State, config: RunnableConfig) -> _State:
        model.invoke("write it", config)
        return {"log": ["implement"]}

    graph = StateGraph(_State)
    graph.add_node("plan", plan, metadata={"hypertool_persona": "architect"})
    graph.add_node("implement", implement)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "implement")
    graph.add_edge("implement", END)
    return graph.compile(name="pipeline")


def test_langgraph_node_rule_and_structure(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(Config.model_validate({"personas": {"coder": {"nodes": ["impl*"]}}}))
    app = _graph_with_nodes(ToolCallingFake(responses=[reply("done", tokens=(30, 7))]))
    app.invoke({"log": []}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert sample(TOKENS, persona="coder", model=FAKE_MODEL, token_type="input") == 30
    assert sample("hypertool_persona_switches_total", from_persona="architect",
                  to_persona="coder", workflow="pipeline") == 1
    assert sample("hypertool_workflow_stage_duration_seconds_count", workflow="pipeline",
                  stage="implement", persona="coder") == 1
    assert sample("hypertool_workflow_stage_duration_seconds_count", workflow="pipeline",
                  stage="plan", persona="architect") == 1
    assert sample("hypertool_workflow_duration_seconds_count", workflow="pipeline",
                  status="ok") == 1


# -- label bounding -------------------------------------------------------------------------


def test_dynamic_personas_beyond_the_cap_become_other(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(Config.model_validate({"label_cap": 2,
                                                  "personas": {"fixed": {}}}))
    assert [start(tracker, f"r{i}", tags=[f"persona:{p}"]).persona
            for i, p in enumerate(["a", "b", "c", "a", "fixed", "d"])] == [
        "a", "b", OTHER, "a", "fixed", OTHER]


def test_configured_personas_never_overflow(make_tracker: MakeTracker) -> None:
    names = [f"p{i}" for i in range(5)]
    tracker = make_tracker(Config.model_validate({"label_cap": 1,
                                                  "personas": {n: {} for n in names}}))
    start(tracker, "x", tags=["persona:dynamic"])
    start(tracker, "y", tags=["persona:dynamic2"])
    assert [start(tracker, n, tags=[f"persona:{n}"]).persona for n in names] == names
    assert tracker.get_run("y") is not None
    assert tracker.get_run("y").persona == OTHER  # type: ignore[union-attr]


def test_stages_and_workflows_are_bounded_too(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(label_cap=2)
    workflows = [start(tracker, f"w{i}", name=f"wf{i}").workflow for i in range(3)]
    stages = [start(tracker, f"s{i}", "w0", tags=[f"stage:st{i}"]).stage for i in range(3)]
    assert workflows == ["wf0", "wf1", OTHER]
    assert stages == ["st0", "st1", OTHER]


def test_cap_is_per_label_and_counts_distinct_values(make_tracker: MakeTracker,
                                                     sample: Sample) -> None:
    tracker = make_tracker(label_cap=2)
    handler = HypertoolCallbackHandler(tracker)
    model = ToolCallingFake(responses=[reply("x", tokens=(1, 1))])
    for persona in ["a", "b", "c", "d", "a"]:
        model.invoke("hi", config={"callbacks": [handler], "tags": [f"persona:{persona}"]})
    assert sample(TOKENS, persona="a", model=FAKE_MODEL, token_type="input") == 2
    assert sample(TOKENS, persona="b", model=FAKE_MODEL, token_type="input") == 1
    assert sample(TOKENS, persona=OTHER, model=FAKE_MODEL, token_type="input") == 2
    assert sample(TOKENS, persona="c", model=FAKE_MODEL, token_type="input") == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("レビュアー", "レビュアー"),  # printable unicode is kept
        ("  spaced  ", "spaced"),
        ("evil\nname\x00", "evil_name_"),
        ("tab\there", "tab_here"),
        ("\u202eright-to-left", "_right-to-left"),
        ("x" * 10_000, "x" * MAX_LABEL_LENGTH),
        ("é" * 10_000, "é" * MAX_LABEL_LENGTH),
    ],
)
def test_hostile_names_become_bounded_label_values(make_tracker: MakeTracker, raw: str,
                                                   expected: str) -> None:
    tracker = make_tracker()
    by_tag = start(tracker, "t", tags=[f"persona:{raw}"])
    by_meta = start(tracker, "m", metadata={"hypertool_persona": raw, "hypertool_stage": raw})
    by_name = start(tracker, "n", name=raw)
    assert by_tag.persona == expected
    assert (by_meta.persona, by_meta.stage) == (expected, expected)
    assert by_name.workflow == expected


def test_blank_explicit_values_are_ignored(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    start(tracker, "root", tags=["persona:boss"])
    run = start(tracker, "child", "root", tags=["persona:", "persona:   "],
                metadata={"hypertool_persona": "  "})
    assert (run.persona, run.persona_source) == ("boss", Source.INHERITED)


def test_hostile_names_reach_the_registry_bounded(make_tracker: MakeTracker,
                                                  sample: Sample) -> None:
    tracker = make_tracker()
    model = ToolCallingFake(responses=[reply("x", tokens=(3, 2))])
    long = "ü" * 10_000
    model.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                               "tags": [f"persona:{long}\n"]})
    assert sample(TOKENS, persona="ü" * MAX_LABEL_LENGTH, model=FAKE_MODEL,
                  token_type="input") == 3


# -- malformed input never raises -----------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "metadata"),
    [
        (None, None),
        ([1, None, b"persona:bytes", ("persona", "x"), "persona:ok"], {}),
        ("persona:a-string-not-a-list", "metadata-not-a-dict"),
        ([], ["not", "a", "dict"]),
        (42, 3.5),
        ([], {"hypertool_persona": 123, "hypertool_stage": ["x"], "hypertool_workflow": None,
              "langgraph_node": {"x": 1}, "lc_agent_name": object(), "thread_id": [1],
              "hypertool_gate": 0.5}),
    ],
)
def test_malformed_tags_and_metadata_never_raise(make_tracker: MakeTracker, tags: Any,
                                                 metadata: Any, sample: Sample) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    root, child = uuid4(), uuid4()
    handler.on_chain_start(None, {}, run_id=root, parent_run_id=None, tags=tags,
                           metadata=metadata)
    handler.on_chat_model_start(None, [[]], run_id=child, parent_run_id=root, tags=tags,
                                metadata=metadata)
    handler.on_llm_end(None, run_id=child)
    handler.on_chain_end({}, run_id=root)
    expected = "ok" if isinstance(tags, list) and "persona:ok" in tags else UNKNOWN
    assert sample("hypertool_llm_requests_total", model=UNKNOWN, persona=expected,
                  status="ok") == 1
    assert sample("hypertool_internal_errors_total", component="langchain.on_chain_start") == 0
    assert tracker.live_runs == 0


def test_tracker_tolerates_non_string_tags(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    run = start(tracker, "r", tags=[None, 7, "persona:ok", ["persona:no"]])
    assert run.persona == "ok"
    tracker.end(RunEnd("r"))
    assert tracker.live_runs == 0


def test_runnable_lambda_names_and_tags_through_langchain(make_tracker: MakeTracker,
                                                          sample: Sample) -> None:
    """Tags given via ``with_config`` apply to that runnable and everything under it."""
    tracker = make_tracker()
    model = ToolCallingFake(responses=[reply("x", tokens=(5, 1))])
    chain = RunnableLambda(lambda q: q).with_config(tags=["persona:prep"]) | model.with_config(
        tags=["persona:writer"])
    chain.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                               "tags": ["workflow:docs"]})
    assert sample(TOKENS, persona="writer", model=FAKE_MODEL, token_type="input") == 5
    assert sample("hypertool_persona_switches_total", from_persona="prep",
                  to_persona="writer", workflow="docs") == 1
