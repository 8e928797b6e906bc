"""Token budgets per persona: scopes, the exported gauges, and record/warn/raise enforcement."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import TokenBudgetExceeded
from hypertool_callbacks.events import RunEnd, RunKind, RunStart, Usage
from tests.fakes import ToolCallingFake, reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
LIMIT = "hypertool_persona_token_budget_limit"
REMAINING = "hypertool_persona_token_budget_remaining"
EXCEEDED = "hypertool_persona_token_budget_exceeded_total"
MODEL = "fake-messages-list-chat-model"
TRACKER_LOG = "hypertool_callbacks.context.tracker"


@pytest.fixture
def sample(registry: CollectorRegistry) -> Sample:
    """``sample(name, **labels)``: the one series whose labels include ``labels`` (budget
    series also carry ``scope``, which each test's config fixes), 0.0 when there is none."""

    def value(name: str, **labels: str) -> float:
        found = [s.value for metric in registry.collect() for s in metric.samples
                 if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
        return found[0] if found else 0.0

    return value


def budget(tokens: int, scope: str = "workflow", window: float | None = None,
           **keys: Any) -> Config:
    persona: dict[str, Any] = {"budget_tokens": tokens, "budget_scope": scope}
    if window is not None:
        persona["budget_window_seconds"] = window
    return Config.model_validate({"personas": {"coder": persona}, **keys})


class Driver:
    """Drives workflow executions through the tracker with neutral events."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.count = 0

    def _id(self) -> str:
        self.count += 1
        return f"run-{self.count}"

    def root(self, persona: str = "coder", **metadata: Any) -> str:
        run_id = self._id()
        self.tracker.start(RunStart(run_id, None, RunKind.CHAIN, "wf", (f"persona:{persona}",),
                                    metadata))
        return run_id

    def llm(self, parent: str, tokens: int) -> None:
        run_id = self._id()
        self.tracker.start(RunStart(run_id, parent, RunKind.LLM, "model", model="m"))
        self.tracker.end(RunEnd(run_id, usage=Usage(tokens // 2, tokens - tokens // 2, tokens)))

    def end(self, root: str) -> None:
        self.tracker.end(RunEnd(root))

    def execution(self, *calls: int, persona: str = "coder") -> None:
        root = self.root(persona)
        for tokens in calls:
            self.llm(root, tokens)
        self.end(root)


def test_limit_and_full_remaining_are_exported_at_start(make_tracker: MakeTracker,
                                                        sample: Sample) -> None:
    make_tracker(budget(100))
    assert sample(LIMIT, persona="coder", scope="workflow") == 100
    assert sample(REMAINING, persona="coder", scope="workflow") == 100
    make_tracker(budget(100, "process"))
    assert sample(LIMIT, persona="coder", scope="process") == 100


def test_personas_without_budget_export_nothing(make_tracker: MakeTracker,
                                                registry: CollectorRegistry) -> None:
    tracker = make_tracker(Config.model_validate({"personas": {"free": {}}}))
    Driver(tracker).execution(50, persona="free")
    exported = [s for metric in registry.collect() for s in metric.samples
                if s.name in (LIMIT, REMAINING)]
    assert exported == []


# -- workflow scope -------------------------------------------------------------------------


def test_workflow_scope_each_execution_starts_full(make_tracker: MakeTracker,
                                                   sample: Sample) -> None:
    tracker = make_tracker(budget(100))
    driver = Driver(tracker)
    driver.execution(30)
    assert sample(REMAINING, persona="coder") == 70
    driver.execution(20, 30)
    assert sample(REMAINING, persona="coder") == 50  # not 20: the second execution began full
    assert sample(EXCEEDED, persona="coder") == 0
    assert tracker.live_executions == 0


def test_workflow_scope_overrun_goes_negative_and_counts(make_tracker: MakeTracker,
                                                         sample: Sample) -> None:
    tracker = make_tracker(budget(100))
    driver = Driver(tracker)
    root = driver.root()
    driver.llm(root, 80)
    driver.llm(root, 70)  # started at 80 used: allowed; overruns to 150
    assert sample(REMAINING, persona="coder") == -50
    assert sample(EXCEEDED, persona="coder") == 0
    driver.llm(root, 10)  # started with the budget spent (record mode: still runs)
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == -60
    driver.end(root)
    driver.execution(5)
    assert sample(REMAINING, persona="coder") == 95
    assert sample(EXCEEDED, persona="coder") == 1


def test_exactly_spent_counts_as_exceeded(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(budget(100))
    driver = Driver(tracker)
    driver.execution(100, 1)
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == -1


def test_workflow_scope_with_a_thread_id_spans_invocations(make_tracker: MakeTracker,
                                                           sample: Sample) -> None:
    """A LangGraph thread is one execution: its budget does not refill between invocations."""
    tracker = make_tracker(budget(100))
    driver = Driver(tracker)
    for _ in range(2):
        root = driver.root(thread_id="t-1")
        driver.llm(root, 30)
        driver.end(root)
    assert sample(REMAINING, persona="coder") == 40
    root = driver.root(thread_id="t-2")
    driver.llm(root, 10)
    driver.end(root)
    assert sample(REMAINING, persona="coder") == 90


def test_other_personas_tokens_do_not_count(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(budget(100))
    driver = Driver(tracker)
    root = driver.root()
    driver.llm(root, 10)
    tracker.start(RunStart("x", root, RunKind.LLM, "model", ("persona:tester",)))
    tracker.end(RunEnd("x", usage=Usage(500, 500, 1000)))
    driver.end(root)
    assert sample(REMAINING, persona="coder") == 90


def test_total_falls_back_to_input_plus_output(make_tracker: MakeTracker,
                                               sample: Sample) -> None:
    tracker = make_tracker(budget(100))
    tracker.start(RunStart("r", None, RunKind.LLM, "model", ("persona:coder",)))
    tracker.end(RunEnd("r", usage=Usage(input_tokens=12, output_tokens=8)))
    assert sample(REMAINING, persona="coder") == 80


# -- process scope --------------------------------------------------------------------------


def test_process_scope_accumulates_across_executions(make_tracker: MakeTracker,
                                                     sample: Sample) -> None:
    tracker = make_tracker(budget(100, "process"))
    driver = Driver(tracker)
    driver.execution(60)
    assert sample(REMAINING, persona="coder") == 40
    driver.execution(60)  # started at 60 used: allowed
    assert sample(REMAINING, persona="coder") == -20
    assert sample(EXCEEDED, persona="coder") == 0
    driver.execution(1)
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == -21


def test_rolling_window(make_tracker: MakeTracker, sample: Sample, clock: ManualClock) -> None:
    tracker = make_tracker(budget(100, "process", window=60), clock=clock)
    driver = Driver(tracker)
    driver.execution(40)  # t=0
    assert sample(REMAINING, persona="coder") == 60
    clock.advance(30)
    driver.execution(40)  # t=30
    assert sample(REMAINING, persona="coder") == 20
    clock.advance(30)
    driver.execution(30)  # t=60: the call at t=0 is exactly at the window's edge, still in
    assert sample(REMAINING, persona="coder") == -10
    clock.advance(0.5)
    driver.execution(10)  # t=60.5: the t=0 call left the window: 40 + 30 + 10
    assert sample(REMAINING, persona="coder") == 20
    clock.advance(100)
    driver.execution(5)  # everything older than 60 s is gone
    assert sample(REMAINING, persona="coder") == 95


def test_rolling_window_exceeded_only_while_in_window(make_tracker: MakeTracker,
                                                      sample: Sample,
                                                      clock: ManualClock) -> None:
    tracker = make_tracker(budget(50, "process", window=10), clock=clock)
    driver = Driver(tracker)
    driver.execution(60)
    driver.execution(1)
    assert sample(EXCEEDED, persona="coder") == 1
    clock.advance(11)
    driver.execution(1)
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == 49


# -- enforcement ----------------------------------------------------------------------------


def test_record_mode_counts_without_logging(make_tracker: MakeTracker, sample: Sample,
                                            caplog: pytest.LogCaptureFixture) -> None:
    tracker = make_tracker(budget(10, "process"))
    with caplog.at_level(logging.WARNING, logger=TRACKER_LOG):
        Driver(tracker).execution(10, 10, 10)
    assert sample(EXCEEDED, persona="coder") == 2
    assert caplog.records == []


def test_warn_mode_logs_once_per_persona_and_counts_every_call(
        make_tracker: MakeTracker, sample: Sample, caplog: pytest.LogCaptureFixture) -> None:
    config = Config.model_validate({
        "personas": {"coder": {"budget_tokens": 10, "budget_scope": "process"},
                     "tester": {"budget_tokens": 5, "budget_scope": "process"}},
        "on_budget_exceeded": "warn"})
    tracker = make_tracker(config)
    driver = Driver(tracker)
    with caplog.at_level(logging.WARNING, logger=TRACKER_LOG):
        driver.execution(15, 1, 1, 1)
        driver.execution(7, 1, persona="tester")
    assert sample(EXCEEDED, persona="coder") == 3
    assert sample(EXCEEDED, persona="tester") == 1
    messages = [r.getMessage() for r in caplog.records if r.name == TRACKER_LOG]
    assert messages == [
        "token budget of persona 'coder' is spent (15 of 10 tokens)",
        "token budget of persona 'tester' is spent (7 of 5 tokens)",
    ]


def _chain(model: ToolCallingFake) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "You write code."), ("user", "{q}")])
    return prompt | model


def test_raise_mode_stops_the_call_before_the_model(make_tracker: MakeTracker,
                                                    sample: Sample) -> None:
    tracker = make_tracker(budget(10, "process", on_budget_exceeded="raise"))
    model = ToolCallingFake(responses=[reply("one", tokens=(10, 5)), reply("two")])
    chain = _chain(model)
    config: RunnableConfig = {"callbacks": [HypertoolCallbackHandler(tracker)],
                              "tags": ["persona:coder"]}
    assert chain.invoke({"q": "a"}, config=config).content == "one"
    assert model.i == 1
    with pytest.raises(TokenBudgetExceeded) as info:
        chain.invoke({"q": "b"}, config=config)
    assert (info.value.persona, info.value.limit, info.value.used) == ("coder", 10, 15)
    assert str(info.value) == "token budget of persona 'coder' is spent: 15 of 10 tokens used"
    assert model.i == 1  # the model was never called
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == -5
    assert sample("hypertool_persona_tokens_used_total", persona="coder", model=MODEL,
                  token_type="input") == 10
    # Refused, not failed: error-rate alerts stay about real failures.
    assert sample("hypertool_llm_requests_total", model=MODEL, persona="coder",
                  status="refused") == 1
    assert sample("hypertool_llm_requests_total", model=MODEL, persona="coder",
                  status="error") == 0
    assert sample("hypertool_events_dropped_total", reason="unknown_run") == 0


async def test_raise_mode_under_ainvoke(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(budget(10, "process", on_budget_exceeded="raise"))
    model = ToolCallingFake(responses=[reply("one", tokens=(10, 5)), reply("two")])
    chain = _chain(model)
    config: RunnableConfig = {"callbacks": [HypertoolCallbackHandler(tracker)],
                              "tags": ["persona:coder"]}
    await chain.ainvoke({"q": "a"}, config=config)
    with pytest.raises(TokenBudgetExceeded):
        await chain.ainvoke({"q": "b"}, config=config)
    assert model.i == 1
    assert tracker.live_runs == 0
    assert sample(EXCEEDED, persona="coder") == 1


class _State(TypedDict, total=False):
    out: list[str]


def test_raise_mode_in_a_graph_with_workflow_scope(make_tracker: MakeTracker,
                                                   sample: Sample) -> None:
    tracker = make_tracker(budget(10, on_budget_exceeded="raise"))
    model = ToolCallingFake(responses=[reply("a", tokens=(8, 4)), reply("b", tokens=(1, 1)),
                                       reply("c", tokens=(1, 1))])

    def implement(state: _State, config: RunnableConfig) -> _State:
        first = model.invoke("draft", config)
        second = model.invoke("refine", config)
        return {"out": [str(first.content), str(second.content)]}

    graph = StateGraph(_State)
    graph.add_node("implement", implement, metadata={"hypertool_persona": "coder"})
    graph.add_edge(START, "implement")
    graph.add_edge("implement", END)
    app = graph.compile(name="pipeline")
    config: RunnableConfig = {"callbacks": [HypertoolCallbackHandler(tracker)]}
    with pytest.raises(TokenBudgetExceeded):
        app.invoke({}, config=config)
    assert model.i == 1
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0
    # A new execution starts with the full budget again.
    model.i = 1
    assert app.invoke({}, config=config) == {"out": ["b", "c"]}
    assert sample(EXCEEDED, persona="coder") == 1
    assert sample(REMAINING, persona="coder") == 6


def test_raise_mode_does_not_raise_below_the_limit(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(budget(100, "process", on_budget_exceeded="raise"))
    # The fake wraps around after its last response: one spare keeps ``i`` a call count.
    model = ToolCallingFake(responses=[reply(str(n), tokens=(10, 5)) for n in range(7)])
    chain = _chain(model)
    config: RunnableConfig = {"callbacks": [HypertoolCallbackHandler(tracker)],
                              "tags": ["persona:coder"]}
    for _ in range(6):  # 6 x 15 = 90 < 100
        chain.invoke({"q": "a"}, config=config)
    assert model.i == 6


def test_raise_mode_tracker_raises_from_start(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(budget(10, "process", on_budget_exceeded="raise"))
    Driver(tracker).execution(10)
    tracker.start(RunStart("root", None, RunKind.CHAIN, "wf", ("persona:coder",)))
    with pytest.raises(TokenBudgetExceeded):
        tracker.start(RunStart("llm", "root", RunKind.LLM, "model"))
    assert tracker.get_run("llm") is None
    tracker.end(RunEnd("root"))
    assert tracker.live_runs == 0
