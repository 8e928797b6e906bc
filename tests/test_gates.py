"""Quality gates: the verdict rule of ``context/gates.py``, and gates in real LangGraph runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command
from pydantic import BaseModel

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.gates import FAIL, PASS, UNRECOGNISED, Verdicts, verdict
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from tests.fakes import ToolCallingFake, reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
GATES = "hypertool_workflow_quality_gate_total"


@dataclass
class Report:
    passed: bool
    notes: str = ""


class Review(BaseModel):
    verdict: str
    comments: list[str] = []


class Opaque:
    """An object with none of the recognised fields."""


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


# (output, expected) with no error; documented in context/gates.py, rule by rule.
VERDICTS: list[tuple[Any, str]] = [
    # falsy -> fail
    (None, FAIL), ("", FAIL), ("   \n", FAIL), ([], FAIL), ((), FAIL), ({}, FAIL),
    (False, FAIL), (0, FAIL), (0.0, FAIL),
    # truthy scalars -> pass
    (True, PASS), (1, PASS), (0.5, PASS), (-1, PASS),
    # a string: its opening words decide, any case, leading punctuation skipped
    ("FAIL", FAIL), ("failed: 3 tests", FAIL), ("Failure in step 2", FAIL),
    ("failing", FAIL), ("Rejected.", FAIL), ("reject", FAIL), ("false", FAIL),
    ("  **Blocked** by CI", FAIL), ("Denied", FAIL), ("invalid input", FAIL),
    ("FAIL: no tests", FAIL), ("Not approved", FAIL), ("fails", FAIL),
    ("REVISE: rename the handler", FAIL), ("Revision needed", FAIL),
    ("Changes requested: add tests", FAIL), ("CHANGES_REQUESTED", FAIL),
    ("request changes", FAIL), ("Needs work.", FAIL), ("needs-work", FAIL),
    ("REJECT", FAIL), ("Verdict: REVISE", FAIL), ("**Decision:** needs changes", FAIL),
    ("PASS", PASS), ("passed", PASS), ("LGTM", PASS), ("No issues found", PASS),
    ("Approved, no failures", PASS), ("ship it", PASS), ("Verdict: PASS", PASS),
    ("APPROVE", PASS), ("Looks good to me", PASS), ("OK", PASS),
    # ...matching neither is unrecognised, never guessed
    ("no", UNRECOGNISED), ("ERROR: boom", UNRECOGNISED), ("block", UNRECOGNISED),
    ("NOK", UNRECOGNISED), ("passport checked", UNRECOGNISED),  # whole words only
    ("3 tests failed", UNRECOGNISED),  # the verdict must open the text
    ("The change is mostly fine", UNRECOGNISED),
    # a mapping: boolean keys first, in order passed/pass/ok/approved/success/valid
    ({"passed": False}, FAIL), ({"passed": True}, PASS), ({"pass": False}, FAIL),
    ({"ok": False, "x": 1}, FAIL), ({"approved": False, "attempts": 2}, FAIL),
    ({"success": True, "errors": []}, PASS), ({"valid": False, "a": 1}, FAIL),
    ({"passed": True, "verdict": "FAIL"}, PASS),  # boolean key wins over verdict key
    ({"ok": True, "passed": False}, FAIL),  # earlier boolean key in the list wins
    # ...then verdict keys verdict/result/status/decision/outcome (a str or bool value)
    ({"verdict": "FAIL", "notes": "x"}, FAIL), ({"result": "pass", "n": 1}, PASS),
    ({"status": "rejected", "by": "bob"}, FAIL), ({"decision": False, "a": 1}, FAIL),
    ({"outcome": "approved", "a": 1}, PASS), ({"verdict": "", "a": 1}, FAIL),
    ({"status": 0, "a": 1}, UNRECOGNISED),  # not str/bool: ignored; no verdict left
    ({"review": "rejected", "notes": "x"}, FAIL), ({"grade": "failed", "a": 1}, FAIL),
    ({"evaluation": "invalid", "a": 1}, FAIL), ({"review": "fine", "a": 1}, PASS),
    ({"verdict": "LGTM", "passed": "no"}, PASS),  # a non-bool boolean key is skipped
    # ...then a one-entry mapping is its value
    ({"review": "FAIL: no tests"}, FAIL), ({"review": "fine"}, PASS), ({"x": None}, FAIL),
    ({"a": "FAIL", "b": "FAIL"}, UNRECOGNISED),  # several entries, none a verdict
    ({"verdict": "changes_requested", "n": 2}, FAIL), ({"status": "needs work"}, FAIL),
    # a LangGraph messages update: one entry -> list -> last element -> message content
    ({"messages": [AIMessage("PASS"), AIMessage("Rejected")]}, FAIL),
    ({"messages": [AIMessage("FAIL"), AIMessage("LGTM")]}, PASS),
    # lists/tuples: the last element
    (["FAIL", "PASS"], PASS), (("PASS", "rejected"), FAIL),
    # message-like objects: their content
    (AIMessage("Rejected: missing tests"), FAIL), (HumanMessage("ship it"), PASS),
    (AIMessage(""), FAIL), (AIMessage([{"type": "text", "text": "REVISE"}]), FAIL),
    (AIMessage([{"type": "text", "text": "LGTM"}]), PASS),
    # objects: the same fields as mappings
    (Report(passed=False), FAIL), (Report(passed=True, notes="fail"), PASS),
    (Review(verdict="FAIL"), FAIL), (Review(verdict="pass"), PASS), (Opaque(), UNRECOGNISED),
    (Review(verdict="REVISE: split the module"), FAIL),
    # a LangGraph Command: its update; routing only passes
    (Command(update={"approved": False}), FAIL), (Command(update={"approved": True}), PASS),
    (Command(goto="next"), PASS),
    # depth: looked at up to 4 levels deep, then unrecognised
    (nested(4, "FAIL"), FAIL), (nested(5, "FAIL"), UNRECOGNISED),
]


@pytest.mark.parametrize(("output", "expected"), VERDICTS, ids=[repr(o)[:40] for o, _ in VERDICTS])
def test_verdict_rule(output: Any, expected: str) -> None:
    assert verdict(None, output) == expected


@pytest.mark.parametrize("output", ["PASS", {"passed": True}, True, None])
def test_an_error_always_fails(output: Any) -> None:
    assert verdict(ValueError("boom"), output) == FAIL


def test_an_output_whose_attributes_raise_is_unrecognised() -> None:
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

    assert verdict(None, Hostile()) == UNRECOGNISED


def test_configured_words_replace_the_defaults() -> None:
    rule = Verdicts(pass_words=["green light", "ship"], fail_words=["red", "hold"])
    assert rule(None, "Green light from QA") == PASS
    assert rule(None, "ship_it") == PASS
    assert rule(None, "RED: flaky test") == FAIL
    assert rule(None, "hold-off") == FAIL
    assert rule(None, "PASS") == UNRECOGNISED  # not a configured word any more
    assert rule(None, "FAIL") == UNRECOGNISED
    assert rule(None, {"passed": False}) == FAIL  # structured verdicts need no words


def test_the_longest_matching_phrase_wins() -> None:
    rule = Verdicts(pass_words=["not bad"], fail_words=["not"])
    assert rule(None, "Not bad at all") == PASS
    assert rule(None, "Not good") == FAIL


@pytest.mark.parametrize(("key", "value"), [("gate_pass_words", [""]),
                                            ("gate_fail_words", ["x" * 65]),
                                            ("gate_fail_words", "revise")])
def test_bad_verdict_words_fail_at_load_time(key: str, value: Any) -> None:
    from hypertool_callbacks.config import load_config
    from hypertool_callbacks.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        load_config(environ={}, cwd="/", **{key: value})


# -- gates through the tracker ---------------------------------------------------------------

UNRECOGNISED_GATES = "hypertool_workflow_quality_gate_unrecognised_total"


def test_configured_words_and_unrecognised_verdicts_through_the_tracker(
        make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(gate_fail_words=["hold"], gate_pass_words=["go"])
    outputs = {"a": "HOLD: flaky", "b": "go", "c": "REVISE: naming", "d": "maybe later"}
    for run_id, output in outputs.items():
        tracker.start(RunStart(run_id, None, RunKind.CHAIN, "check", ("gate:qa",)))
        tracker.end(RunEnd(run_id, outputs=output))
    labels = {"workflow": "check", "stage": "unknown", "gate": "qa"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 1
    # "REVISE" is not a configured word here: like "maybe later", neither pass nor fail.
    assert sample(UNRECOGNISED_GATES, **labels) == 2
    assert sample(GATES, result="unrecognised", **labels) == 0


def test_gate_tag_counts_once_per_gate_run(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    tracker.start(RunStart("root", None, RunKind.CHAIN, "pipeline"))
    tracker.start(RunStart("g", "root", RunKind.CHAIN, "check", tags=("gate:lint",)))
    # Children inherit the gate tag: they must not count as gates of their own.
    tracker.start(RunStart("c1", "g", RunKind.CHAIN, "inner", tags=("gate:lint",)))
    tracker.start(RunStart("c2", "c1", RunKind.TOOL, "ruff", tags=("gate:lint",)))
    tracker.end(RunEnd("c2", outputs="FAIL"))
    tracker.end(RunEnd("c1", outputs="FAIL"))
    tracker.end(RunEnd("g", outputs={"passed": True}))
    tracker.end(RunEnd("root", outputs={}))
    assert sample(GATES, workflow="pipeline", stage="unknown", gate="lint", result="pass") == 1
    assert sample(GATES, workflow="pipeline", stage="unknown", gate="lint", result="fail") == 0


def test_a_different_gate_nested_in_a_gate_counts_separately(make_tracker: MakeTracker,
                                                            sample: Sample) -> None:
    tracker = make_tracker()
    tracker.start(RunStart("g", None, RunKind.CHAIN, "wf", tags=("gate:outer",)))
    tracker.start(RunStart("i", "g", RunKind.CHAIN, "x", tags=("gate:outer", "gate:inner")))
    tracker.end(RunEnd("i", outputs="FAIL"))
    tracker.end(RunEnd("g", outputs="yes"))
    assert sample(GATES, workflow="wf", stage="unknown", gate="inner", result="fail") == 1
    assert sample(GATES, workflow="wf", stage="unknown", gate="outer", result="pass") == 1


# -- gates in LangGraph ---------------------------------------------------------------------


class _State(TypedDict, total=False):
    approved: bool
    attempts: int
    log: list[str]


def _pipeline(review_model: ToolCallingFake, review_metadata: dict[str, Any] | None) -> Any:
    """plan -> implement -> test -> review -(rejected)-> implement ... -(approved)-> release."""

    def plan(state: _State) -> _State:
        return {"attempts": 0}

    def implement(state: _State) -> _State:
        return {"attempts": state.get("attempts", 0) + 1}

    def test(state: _State) -> _State:
        return {"log": ["tests ran"]}

    def review(state: _State, config: RunnableConfig) -> _State:
        answer = review_model.invoke("review the change", config)
        return {"approved": answer.content == "PASS"}

    def release(state: _State) -> _State:
        return {"log": ["released"]}

    graph = StateGraph(_State)
    graph.add_node("plan", plan, metadata={"hypertool_persona": "planner"})
    graph.add_node("implement", implement, metadata={"hypertool_persona": "coder"})
    graph.add_node("test", test, metadata={"hypertool_persona": "tester"})
    graph.add_node("review", review,
                   metadata={"hypertool_persona": "reviewer", **(review_metadata or {})})
    graph.add_node("release", release, metadata={"hypertool_persona": "operator"})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "implement")
    graph.add_edge("implement", "test")
    graph.add_edge("test", "review")
    graph.add_conditional_edges("review", lambda s: "release" if s["approved"] else "implement")
    graph.add_edge("release", END)
    return graph.compile(name="pipeline")


def _review_model() -> ToolCallingFake:
    return ToolCallingFake(responses=[reply("FAIL: no tests"), reply("PASS")])


def test_gate_by_node_metadata_fails_then_passes(make_tracker: MakeTracker,
                                                 sample: Sample) -> None:
    tracker = make_tracker()
    app = _pipeline(_review_model(), {"hypertool_gate": "review"})
    result = app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert result["attempts"] == 2
    labels = {"workflow": "pipeline", "stage": "review", "gate": "review"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 1
    # The review node's LLM call and its conditional edge are children, not gates.
    assert sample("hypertool_llm_requests_total", model="fake-messages-list-chat-model",
                  persona="reviewer", status="ok") == 2
    assert tracker.live_runs == 0


def test_gate_by_configured_node_name(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(Config.model_validate({"gates": {"code-review": {"nodes": ["rev*"]}}}))
    app = _pipeline(_review_model(), None)
    app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    labels = {"workflow": "pipeline", "stage": "review", "gate": "code-review"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 1


def test_gate_by_configured_run_name(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(Config.model_validate({"gates": {"lint": {"names": ["lint_*"]}}}))
    def lint_code(code: str) -> dict[str, bool]:
        return {"passed": "TODO" not in code}

    lint = RunnableLambda(lint_code)
    chain = RunnableLambda(lambda x: x, name="prepare") | lint
    handler = HypertoolCallbackHandler(tracker)
    chain.invoke("print(1)", config={"callbacks": [handler], "tags": ["workflow:ci"]})
    chain.invoke("TODO", config={"callbacks": [handler], "tags": ["workflow:ci"]})
    chain.invoke("ok", config={"callbacks": [handler], "tags": ["workflow:ci"]})
    assert sample(GATES, workflow="ci", stage="unknown", gate="lint", result="pass") == 2
    assert sample(GATES, workflow="ci", stage="unknown", gate="lint", result="fail") == 1


def test_gate_that_raises_fails_and_the_error_reaches_the_app(make_tracker: MakeTracker,
                                                              sample: Sample) -> None:
    tracker = make_tracker()

    def broken(state: _State) -> _State:
        raise RuntimeError("reviewer crashed")

    graph = StateGraph(_State)
    graph.add_node("review", broken, metadata={"hypertool_gate": "review"})
    graph.add_edge(START, "review")
    graph.add_edge("review", END)
    app = graph.compile(name="pipeline")
    with pytest.raises(RuntimeError, match="reviewer crashed"):
        app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    labels = {"workflow": "pipeline", "stage": "review", "gate": "review"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 0
    assert sample("hypertool_workflow_duration_seconds_count", workflow="pipeline",
                  status="error") == 1
    assert tracker.live_runs == 0


def test_a_revise_verdict_in_a_langgraph_review_loop_is_a_fail(make_tracker: MakeTracker,
                                                               sample: Sample) -> None:
    """The review node's reply is its verdict: ``REVISE: ...`` sends the work back and is a
    fail; ``LGTM`` passes; a rambling reply is counted as unrecognised, not as a pass."""
    model = ToolCallingFake(responses=[reply("REVISE: add tests"), reply("Hmm, let me think"),
                                       reply("LGTM")])

    def implement(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("code")]}

    def review(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return END if state["messages"][-1].content == "LGTM" else "implement"

    graph = StateGraph(MessagesState)
    graph.add_node("implement", implement)
    graph.add_node("review", review, metadata={"hypertool_gate": "code-review"})
    graph.add_edge(START, "implement")
    graph.add_edge("implement", "review")
    graph.add_conditional_edges("review", route, ["implement", END])
    app = graph.compile(name="delivery")
    app.invoke({"messages": [("user", "go")]},
               config={"callbacks": [HypertoolCallbackHandler(make_tracker())]})

    labels = {"workflow": "delivery", "stage": "review", "gate": "code-review"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 1
    assert sample(UNRECOGNISED_GATES, **labels) == 1


# -- gates in nodes LangGraph retries (RetryPolicy) --------------------------------------------

RETRIED_GATES = "hypertool_workflow_quality_gate_retried_total"


class Flaky(Exception):
    pass


def _retried_review(attempts: list[Any], *, gate_inside: bool = False) -> Any:
    """Graph ``ci``: one node ``review`` with ``RetryPolicy(max_attempts=3)`` on ``Flaky``.
    Each attempt pops the next item of ``attempts``: an exception class is raised, anything
    else is the review's output. With ``gate_inside`` the gate is a tagged runnable called in
    the node (it returns the item), and the node raises *after* it."""
    from langgraph.types import RetryPolicy

    def check(item: Any) -> Any:
        if isinstance(item, type):
            raise item("flaky")
        return item

    gate = RunnableLambda(check, name="check").with_config(tags=["gate:review"])

    def review(state: _State, config: RunnableConfig) -> _State:
        item = attempts.pop(0)
        if gate_inside:
            verdict_text, fails_after = item
            gate.invoke(verdict_text, config)
            if fails_after:
                raise Flaky("after the gate")
            return {"log": [verdict_text]}
        return {"log": [check(item)]}

    graph = StateGraph(_State)
    graph.add_node("review", review,
                   metadata=None if gate_inside else {"hypertool_gate": "review"},
                   retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.001,
                                            jitter=False, retry_on=Flaky))
    graph.add_edge(START, "review")
    graph.add_edge("review", END)
    return graph.compile(name="ci")


RETRY_LABELS = {"workflow": "ci", "stage": "review", "gate": "review"}


def test_a_gate_node_retried_counts_its_final_result_once(make_tracker: MakeTracker,
                                                          sample: Sample) -> None:
    tracker = make_tracker()
    app = _retried_review([Flaky, Flaky, "PASS"])
    app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})

    assert sample(GATES, result="pass", **RETRY_LABELS) == 1
    assert sample(GATES, result="fail", **RETRY_LABELS) == 0
    assert sample(RETRIED_GATES, **RETRY_LABELS) == 2
    assert tracker.live_runs == 0


def test_a_gate_node_failing_every_attempt_is_one_fail(make_tracker: MakeTracker,
                                                       sample: Sample) -> None:
    app = _retried_review([Flaky, Flaky, Flaky])
    with pytest.raises(Flaky):
        app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(make_tracker())]})

    assert sample(GATES, result="fail", **RETRY_LABELS) == 1
    assert sample(GATES, result="pass", **RETRY_LABELS) == 0
    assert sample(RETRIED_GATES, **RETRY_LABELS) == 2


def test_a_gate_inside_a_retried_node_counts_the_last_attempts_verdict(
        make_tracker: MakeTracker, sample: Sample) -> None:
    """Attempt 1: the gate says FAIL, then the node raises; attempt 2: PASS and the node
    completes. One pass, one retried attempt, no fail."""
    app = _retried_review([("FAIL: flaky", True), ("PASS", False)], gate_inside=True)
    app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(make_tracker())]})

    labels = {"workflow": "ci", "stage": "review", "gate": "review"}
    assert sample(GATES, result="pass", **labels) == 1
    assert sample(GATES, result="fail", **labels) == 0
    assert sample(RETRIED_GATES, **labels) == 1


def test_the_gates_of_a_review_loop_are_not_retries(make_tracker: MakeTracker,
                                                    sample: Sample) -> None:
    """Two visits of the review node (a loop, not a retry) are two tasks: two verdicts."""
    app = _pipeline(_review_model(), {"hypertool_gate": "review"})
    app.invoke({}, config={"callbacks": [HypertoolCallbackHandler(make_tracker())]})
    labels = {"workflow": "pipeline", "stage": "review", "gate": "review"}
    assert sample(GATES, result="fail", **labels) == 1
    assert sample(GATES, result="pass", **labels) == 1
    assert sample(RETRIED_GATES, **labels) == 0
