"""Nothing we do may hurt the app: concurrency, odd event orders, errors, broken sinks, leaks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart, Usage
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import ToolCallingFake, reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
MODEL = "fake-messages-list-chat-model"
DROPPED = "hypertool_events_dropped_total"
INTERNAL = "hypertool_internal_errors_total"


def series(registry: CollectorRegistry, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Every sample of a counter, keyed by the given labels' values."""
    return {
        tuple(s.labels[label] for label in labels): s.value
        for metric in registry.collect() for s in metric.samples if s.name == name
    }


def two_persona_chain(prep: str, agent: str, tokens: int) -> Any:
    """A chain whose first step acts as ``prep`` and whose model call acts as ``agent``."""

    async def aprep(text: str) -> str:
        await asyncio.sleep(0)  # let the other executions interleave
        return text

    model = ToolCallingFake(responses=[reply(agent, tokens=(tokens, 1))])
    first = RunnableLambda(lambda text: text, afunc=aprep).with_config(tags=[f"persona:{prep}"])
    return first | model.with_config(tags=[f"persona:{agent}"])


# -- concurrency ----------------------------------------------------------------------------


async def test_parallel_ainvoke_has_no_cross_talk(make_tracker: MakeTracker,
                                                  registry: CollectorRegistry) -> None:
    tracker = make_tracker(label_cap=200)
    handler = HypertoolCallbackHandler(tracker)
    n = 50
    chains = [two_persona_chain(f"prep{i}", f"agent{i}", i + 1) for i in range(n)]
    results = await asyncio.gather(*(
        chain.ainvoke("go", config={"callbacks": [handler], "tags": ["workflow:fanout"]})
        for chain in chains))
    assert [r.content for r in results] == [f"agent{i}" for i in range(n)]
    switches = series(registry, "hypertool_persona_switches_total",
                      "from_persona", "to_persona", "workflow")
    assert switches == {(f"prep{i}", f"agent{i}", "fanout"): 1.0 for i in range(n)}
    tokens = series(registry, "hypertool_persona_tokens_used_total", "persona", "token_type")
    assert tokens == {**{(f"agent{i}", "input"): float(i + 1) for i in range(n)},
                      **{(f"agent{i}", "output"): 1.0 for i in range(n)}}
    stints = series(registry, "hypertool_persona_duration_seconds_count", "persona")
    assert stints == {**{(f"prep{i}",): 1.0 for i in range(n)},
                      **{(f"agent{i}",): 1.0 for i in range(n)}}
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


def test_threads_have_no_cross_talk(make_tracker: MakeTracker,
                                    registry: CollectorRegistry) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    workers, per_worker, pairs = 8, 50, 8

    def job(i: int) -> str:
        k = i % pairs
        chain = two_persona_chain(f"prep{k}", f"agent{k}", k + 1)
        return str(chain.invoke("go", config={"callbacks": [handler],
                                              "tags": ["workflow:threads"]}).content)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(job, range(workers * per_worker)))
    assert results == [f"agent{i % pairs}" for i in range(workers * per_worker)]
    runs_per_pair = workers * per_worker // pairs
    switches = series(registry, "hypertool_persona_switches_total",
                      "from_persona", "to_persona", "workflow")
    assert switches == {(f"prep{k}", f"agent{k}", "threads"): float(runs_per_pair)
                        for k in range(pairs)}
    tokens = series(registry, "hypertool_persona_tokens_used_total", "persona", "token_type")
    assert tokens == {**{(f"agent{k}", "input"): float((k + 1) * runs_per_pair)
                         for k in range(pairs)},
                      **{(f"agent{k}", "output"): float(runs_per_pair) for k in range(pairs)}}
    requests = series(registry, "hypertool_llm_requests_total", "persona", "status")
    assert requests == {(f"agent{k}", "ok"): float(runs_per_pair) for k in range(pairs)}
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


def test_concurrent_runs_of_one_thread_id_do_not_lose_state(make_tracker: MakeTracker,
                                                            sample: Sample) -> None:
    """Neutral events from many threads, interleaved per execution: counts stay exact."""
    tracker = make_tracker()

    def job(i: int) -> None:
        root = f"root-{i}"
        tracker.start(RunStart(root, None, RunKind.CHAIN, "wf", ("persona:a",)))
        llm = f"llm-{i}"
        tracker.start(RunStart(llm, root, RunKind.LLM, "m", ("persona:b",), model="m"))
        tracker.end(RunEnd(llm, usage=Usage(2, 1, 3)))
        tracker.end(RunEnd(root))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(job, range(400)))
    assert sample("hypertool_persona_switches_total", from_persona="a", to_persona="b",
                  workflow="wf") == 400
    assert sample("hypertool_persona_tokens_used_total", persona="b", model="m",
                  token_type="input") == 800
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


# -- odd event orders -----------------------------------------------------------------------


def test_end_before_start_is_dropped(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    tracker.end(RunEnd("late", outputs="x"))
    assert sample(DROPPED, reason="unknown_run") == 1
    tracker.start(RunStart("late", None, RunKind.CHAIN, "wf"))
    assert tracker.live_runs == 1
    tracker.end(RunEnd("late"))
    assert tracker.live_runs == 0
    assert sample("hypertool_workflow_duration_seconds_count", workflow="wf", status="ok") == 1


def test_duplicate_start_is_dropped(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    tracker.start(RunStart("a", None, RunKind.CHAIN, "wf", ("persona:first",)))
    tracker.start(RunStart("a", None, RunKind.CHAIN, "wf", ("persona:second",)))
    assert sample(DROPPED, reason="duplicate_run") == 1
    assert tracker.live_runs == 1
    run = tracker.get_run("a")
    assert run is not None and run.persona == "first"
    tracker.end(RunEnd("a"))
    tracker.end(RunEnd("a"))
    assert sample(DROPPED, reason="unknown_run") == 1
    assert tracker.live_runs == 0


def test_unknown_parent_is_counted_and_tracked_as_a_root(make_tracker: MakeTracker,
                                                         sample: Sample) -> None:
    tracker = make_tracker()
    tracker.start(RunStart("child", "never-seen", RunKind.LLM, "m", ("persona:p",), model="m"))
    assert sample(DROPPED, reason="unknown_parent") == 1
    run = tracker.get_run("child")
    assert run is not None and run.parent is None
    tracker.end(RunEnd("child", usage=Usage(4, 1, 5)))
    assert sample("hypertool_persona_tokens_used_total", persona="p", model="m",
                  token_type="input") == 4
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


def test_handler_events_for_unknown_runs_never_raise(make_tracker: MakeTracker,
                                                     sample: Sample) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    handler.on_chain_end({"x": 1}, run_id=uuid4())
    handler.on_chain_error(ValueError("x"), run_id=uuid4())
    handler.on_llm_end(None, run_id=uuid4())
    handler.on_llm_error(ValueError("x"), run_id=uuid4())
    handler.on_tool_end("out", run_id=uuid4())
    handler.on_tool_error(ValueError("x"), run_id=uuid4())
    handler.on_retriever_end([], run_id=uuid4())
    handler.on_llm_new_token("t", run_id=uuid4())
    assert sample(DROPPED, reason="unknown_run") == 7
    assert series_total(tracker, INTERNAL) == 0
    assert tracker.live_runs == 0


def series_total(tracker: Tracker, name: str) -> float:
    sink = next(s for s in tracker.sinks if isinstance(s, PrometheusSink))
    return sum(s.value for metric in sink.registry.collect() for s in metric.samples
               if s.name == name)


def test_child_ending_after_its_parent(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    tracker.start(RunStart("root", None, RunKind.CHAIN, "wf", ("persona:p",)))
    tracker.start(RunStart("llm", "root", RunKind.LLM, "m", model="m"))
    tracker.end(RunEnd("root"))
    tracker.end(RunEnd("llm", usage=Usage(3, 2, 5)))
    assert sample("hypertool_persona_tokens_used_total", persona="p", model="m",
                  token_type="output") == 2
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


# -- errors in the application ---------------------------------------------------------------


class Boom(Exception):
    pass


class FailingModel(FakeListChatModel):
    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        raise Boom("provider down")


def test_errors_in_the_chain_propagate_unchanged(make_tracker: MakeTracker,
                                                 sample: Sample) -> None:
    tracker = make_tracker()
    original = Boom("provider down")

    def explode(_: Any) -> Any:
        raise original

    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | RunnableLambda(explode)
    with pytest.raises(Boom) as info:
        chain.invoke({"q": "x"}, config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                         "tags": ["workflow:wf"]})
    assert info.value is original
    assert sample("hypertool_workflow_duration_seconds_count", workflow="wf",
                  status="error") == 1
    assert sample("hypertool_workflow_duration_seconds_count", workflow="wf", status="ok") == 0
    assert tracker.live_runs == 0


def test_llm_and_tool_errors_are_recorded(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    config: Any = {"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]}
    with pytest.raises(Boom, match="provider down"):
        FailingModel(responses=["x"]).invoke("q", config=config)

    @tool
    def flaky(x: int) -> int:
        """Always fails."""
        raise Boom("tool down")

    with pytest.raises(Boom, match="tool down"):
        flaky.invoke({"x": 1}, config=config)
    assert sample("hypertool_llm_requests_total", model="fake-list-chat-model", persona="p",
                  status="error") == 1
    # An errored call reports no usage, and that is not "missing usage".
    assert sample("hypertool_llm_usage_missing_total", model="fake-list-chat-model",
                  persona="p") == 0
    assert sample("hypertool_tool_calls_total", tool="flaky", persona="p", status="error") == 1
    assert tracker.live_runs == 0


async def test_async_errors_propagate_unchanged(make_tracker: MakeTracker,
                                                sample: Sample) -> None:
    tracker = make_tracker()
    with pytest.raises(Boom, match="provider down"):
        await FailingModel(responses=["x"]).ainvoke(
            "q", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                         "tags": ["persona:p"]})
    assert sample("hypertool_llm_requests_total", model="fake-list-chat-model", persona="p",
                  status="error") == 1
    assert tracker.live_runs == 0


# -- our own failures -------------------------------------------------------------------------


class BrokenSink(Sink):
    name = "broken"

    def __init__(self, methods: set[str] | None = None) -> None:
        self.methods = methods

    def __getattribute__(self, item: str) -> Any:
        methods = object.__getattribute__(self, "methods")
        if item.startswith("on_") and (methods is None or item in methods):
            def fail(*args: Any) -> None:
                raise RuntimeError(f"sink down in {item}")
            return fail
        return object.__getattribute__(self, item)


def test_a_broken_sink_never_reaches_the_app(make_tracker: MakeTracker, sample: Sample,
                                             registry: CollectorRegistry) -> None:
    tracker = make_tracker(sinks=[BrokenSink({"on_run_end"}), PrometheusSink(registry)])
    answer = ToolCallingFake(responses=[reply("fine", tokens=(5, 1))]).invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    assert answer.content == "fine"
    assert sample(INTERNAL, component="sink:broken") == 1  # one run ended
    # The other sink still got everything.
    assert sample("hypertool_persona_tokens_used_total", persona="p", model=MODEL,
                  token_type="input") == 5
    assert tracker.live_runs == 0


def test_a_sink_failing_everywhere_is_counted_per_failed_call(
        make_tracker: MakeTracker, sample: Sample, registry: CollectorRegistry) -> None:
    tracker = make_tracker(sinks=[BrokenSink(), PrometheusSink(registry)])
    ToolCallingFake(responses=[reply("fine")]).invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    # on_run_start, on_run_end, and on_stint (the persona's time at the end of the execution);
    # its own on_internal_error failing too is not counted again (no recursion).
    assert sample(INTERNAL, component="sink:broken") == 3


def test_strict_mode_lets_sink_errors_through(make_tracker: MakeTracker,
                                              registry: CollectorRegistry) -> None:
    config = Config(strict=True)
    tracker = make_tracker(config, sinks=[BrokenSink({"on_run_end"}), PrometheusSink(registry)])
    with pytest.raises(RuntimeError, match="sink down in on_run_end"):
        ToolCallingFake(responses=[reply("x")]).invoke(
            "q", config={"callbacks": [HypertoolCallbackHandler(tracker)]})


def test_raise_error_is_false_by_default(make_tracker: MakeTracker) -> None:
    assert HypertoolCallbackHandler(make_tracker()).raise_error is False
    assert HypertoolCallbackHandler(make_tracker(strict=True)).raise_error is True
    assert HypertoolCallbackHandler(
        make_tracker(on_budget_exceeded="raise")).raise_error is True


class HostileResult:
    """An LLM result whose every attribute access fails."""

    def __getattr__(self, item: str) -> Any:
        raise RuntimeError("hostile")


def test_adapter_failure_is_counted_and_still_ends_the_run(make_tracker: MakeTracker,
                                                           sample: Sample) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    run_id = uuid4()
    handler.on_chat_model_start(None, [[]], run_id=run_id, tags=["persona:p"])
    handler.on_llm_end(HostileResult(), run_id=run_id)  # must not raise
    assert sample(INTERNAL, component="langchain.on_llm_end") == 1
    assert tracker.live_runs == 0


def test_hostile_messages_do_not_break_the_start(make_tracker: MakeTracker,
                                                 sample: Sample) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    run_id = uuid4()
    handler.on_chat_model_start(None, 12345, run_id=run_id, tags=["persona:p"])
    handler.on_llm_end(None, run_id=run_id)
    assert sample("hypertool_llm_requests_total", model="unknown", persona="p",
                  status="ok") == 1
    assert tracker.live_runs == 0


# -- state is freed ---------------------------------------------------------------------------


def test_state_is_freed_when_runs_end(make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | ToolCallingFake(
        responses=[reply("x")])
    for i in range(20):
        chain.invoke({"q": "x"}, config={"callbacks": [handler], "tags": [f"persona:p{i % 3}"]})
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        self.ended: list[Run] = []

    def on_run_end(self, run: Run) -> None:
        self.ended.append(run)


def test_runs_that_never_end_are_evicted_after_the_ttl(make_tracker: MakeTracker,
                                                       sample: Sample, registry: CollectorRegistry,
                                                       clock: ManualClock) -> None:
    recorder = Recorder()
    tracker = make_tracker(Config(run_ttl_seconds=60), clock=clock,
                           sinks=[recorder, PrometheusSink(registry)])
    tracker.start(RunStart("root", None, RunKind.CHAIN, "wf", ("persona:p",)))
    tracker.start(RunStart("llm", "root", RunKind.LLM, "m", model="m"))
    clock.advance(59)
    assert tracker.evict_now() == 0
    assert tracker.live_runs == 2
    clock.advance(2)
    assert tracker.evict_now() == 2
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0
    assert [run.run_id for run in recorder.ended] == ["root", "llm"]
    assert sample(DROPPED, reason="evicted") == 2
    assert sample("hypertool_llm_requests_total", model="m", persona="p", status="evicted") == 1
    assert sample("hypertool_workflow_duration_seconds_count", workflow="wf",
                  status="evicted") == 1
    assert sample("hypertool_workflow_duration_seconds_sum", workflow="wf",
                  status="evicted") == 61
    # An evicted run never counts as missing usage, and a late end is just dropped.
    assert sample("hypertool_llm_usage_missing_total", model="m", persona="p") == 0
    tracker.end(RunEnd("llm", usage=Usage(1, 1, 2)))
    assert sample(DROPPED, reason="unknown_run") == 1


def test_live_runs_are_bounded_by_max_runs(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(max_runs=10)
    for i in range(15):
        tracker.start(RunStart(f"r{i}", None, RunKind.CHAIN, "wf"))
    assert tracker.live_runs == 10
    assert sample(DROPPED, reason="evicted") == 5
    assert tracker.get_run("r4") is None
    assert tracker.get_run("r5") is not None
    assert tracker.live_executions == 0  # no persona acted: nothing to remember


def test_thread_executions_are_bounded(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(max_executions=10)
    for i in range(25):
        tracker.start(RunStart(f"r{i}", None, RunKind.CHAIN, "wf", ("persona:p",),
                               {"thread_id": f"t{i}"}))
        tracker.end(RunEnd(f"r{i}"))
    assert tracker.live_runs == 0
    assert tracker.live_executions == 10


def test_eviction_also_happens_without_evict_now(make_tracker: MakeTracker,
                                                 clock: ManualClock) -> None:
    tracker = make_tracker(Config(run_ttl_seconds=10), clock=clock)
    tracker.start(RunStart("stuck", None, RunKind.CHAIN, "wf"))
    clock.advance(11)
    for i in range(300):  # eviction sweeps run every few hundred starts
        tracker.start(RunStart(f"r{i}", None, RunKind.CHAIN, "wf"))
        tracker.end(RunEnd(f"r{i}"))
    assert tracker.get_run("stuck") is None
    assert tracker.live_runs == 0
