"""End to end with real langchain-core and LangGraph (fake models): exact metric values.

Durations are exact because the tracker runs on a :class:`ManualClock` that the nodes advance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.context.tracker import Tracker
from tests.fakes import StreamingFake, ToolCallingFake, reply, usage

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
MODEL = "fake-messages-list-chat-model"
TOKENS = "hypertool_persona_tokens_used_total"
SWITCHES = "hypertool_persona_switches_total"
STAGE = "hypertool_workflow_stage_duration_seconds"
PERSONA_SECONDS = "hypertool_persona_duration_seconds"


def token_series(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    """Every token sample: (persona, model, token_type) -> value."""
    return {
        (s.labels["persona"], s.labels["model"], s.labels["token_type"]): s.value
        for metric in registry.collect() if metric.name == TOKENS.removesuffix("_total")
        for s in metric.samples if s.name == TOKENS
    }


# -- a plain chain ---------------------------------------------------------------------------


def test_prompt_model_parser_chain(make_tracker: MakeTracker, sample: Sample,
                                   registry: CollectorRegistry, clock: ManualClock) -> None:
    tracker = make_tracker(clock=clock)
    model = ToolCallingFake(responses=[reply("Paris", tokens=(25, 2))])

    def slow(text: str) -> str:
        clock.advance(0.5)
        return text

    slow_parser = StrOutputParser() | RunnableLambda(slow)
    chain = (ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("user", "{q}")])
             | model | slow_parser)
    answer = chain.invoke({"q": "Capital of France?"},
                          config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                  "tags": ["persona:geographer"],
                                  "metadata": {"hypertool_workflow": "quiz"}})
    assert answer == "Paris"
    assert token_series(registry) == {("geographer", MODEL, "input"): 25,
                                      ("geographer", MODEL, "output"): 2}
    assert sample("hypertool_llm_requests_total", model=MODEL, persona="geographer",
                  status="ok") == 1
    assert sample("hypertool_llm_request_duration_seconds_sum", model=MODEL,
                  persona="geographer", status="ok") == 0.0
    assert sample("hypertool_workflow_duration_seconds_count", workflow="quiz", status="ok") == 1
    assert sample("hypertool_workflow_duration_seconds_sum", workflow="quiz", status="ok") == 0.5
    assert sample(PERSONA_SECONDS + "_sum", persona="geographer", workflow="quiz") == 0.5
    assert sample("hypertool_llm_usage_missing_total", model=MODEL, persona="geographer") == 0
    assert sample("hypertool_internal_errors_total", component="langchain.on_chain_start") == 0
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


def test_token_details_are_counted_apart(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    message = AIMessage("x", usage_metadata=usage(
        100, 40, input_token_details={"cache_read": 60, "cache_creation": 10},
        output_token_details={"reasoning": 25}))
    ToolCallingFake(responses=[message]).invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    detail = "hypertool_persona_token_details_total"
    assert sample(detail, persona="p", model=MODEL, detail="cache_read") == 60
    assert sample(detail, persona="p", model=MODEL, detail="cache_creation") == 10
    assert sample(detail, persona="p", model=MODEL, detail="reasoning") == 25
    assert sample(TOKENS, persona="p", model=MODEL, token_type="input") == 100
    assert sample(TOKENS, persona="p", model=MODEL, token_type="output") == 40


# -- a LangGraph pipeline ----------------------------------------------------------------------


class State(TypedDict, total=False):
    approved: bool
    attempts: int
    log: list[str]


@tool
def write_code(path: str) -> str:
    """Write code to a file."""
    return f"wrote {path}"


@tool
def run_tests(suite: str) -> str:
    """Run a test suite."""
    return f"{suite}: ok"


def build_pipeline(clock: ManualClock) -> Any:
    """plan -> implement -> test -> review (gate; fails once) -> release.

    Each node moves the clock by a fixed amount, so every duration is exact.
    """
    planner = ToolCallingFake(responses=[reply("1. code 2. test", tokens=(100, 20))])
    coder = ToolCallingFake(responses=[reply("", tokens=(200, 50),
                                             calls=[("write_code", {"path": "api.py"})])])
    reviewer = ToolCallingFake(responses=[reply("FAIL: no docs", tokens=(300, 5)),
                                          reply("PASS", tokens=(300, 5))])
    releaser = ToolCallingFake(responses=[reply("v1.0", tokens=(80, 30))])

    def plan(state: State, config: RunnableConfig) -> State:
        planner.invoke("plan the work", config)
        clock.advance(1.0)
        return {"attempts": 0}

    def implement(state: State, config: RunnableConfig) -> State:
        answer = coder.invoke("implement", config)
        assert isinstance(answer, AIMessage)
        for call in answer.tool_calls:
            write_code.invoke(call["args"], config)
        clock.advance(2.0)
        return {"attempts": state.get("attempts", 0) + 1}

    def test(state: State, config: RunnableConfig) -> State:
        run_tests.invoke({"suite": "unit"}, config)
        clock.advance(3.0)
        return {"log": ["tested"]}

    def review(state: State, config: RunnableConfig) -> State:
        verdict = reviewer.invoke("review", config)
        clock.advance(0.5)
        return {"approved": verdict.content == "PASS"}

    def release(state: State, config: RunnableConfig) -> State:
        releaser.invoke("release notes", config)
        clock.advance(0.25)
        return {"log": ["released"]}

    graph = StateGraph(State)
    graph.add_node("plan", plan, metadata={"hypertool_persona": "planner"})
    graph.add_node("implement", implement, metadata={"hypertool_persona": "coder"})
    graph.add_node("test", test, metadata={"hypertool_persona": "tester"})
    graph.add_node("review", review, metadata={"hypertool_persona": "reviewer",
                                               "hypertool_gate": "review"})
    graph.add_node("release", release, metadata={"hypertool_persona": "operator"})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "implement")
    graph.add_edge("implement", "test")
    graph.add_edge("test", "review")
    graph.add_conditional_edges("review", lambda s: "release" if s["approved"] else "implement",
                                ["implement", "release"])
    graph.add_edge("release", END)
    return graph.compile(name="delivery")


def test_langgraph_pipeline_exact_metrics(make_tracker: MakeTracker, sample: Sample,
                                          registry: CollectorRegistry,
                                          clock: ManualClock) -> None:
    tracker = make_tracker(clock=clock)
    result = build_pipeline(clock).invoke(
        {}, config={"callbacks": [HypertoolCallbackHandler(tracker)]})
    assert result["attempts"] == 2
    wf = {"workflow": "delivery"}

    # plan, implement, test, review(fail), implement, test, review(pass), release
    switches = {("planner", "coder"): 1, ("coder", "tester"): 2, ("tester", "reviewer"): 2,
                ("reviewer", "coder"): 1, ("reviewer", "operator"): 1}
    found = {
        (s.labels["from_persona"], s.labels["to_persona"]): s.value
        for metric in registry.collect() if metric.name == "hypertool_persona_switches"
        for s in metric.samples if s.name == SWITCHES and s.labels["workflow"] == "delivery"
    }
    assert found == switches

    assert token_series(registry) == {
        ("planner", MODEL, "input"): 100, ("planner", MODEL, "output"): 20,
        ("coder", MODEL, "input"): 400, ("coder", MODEL, "output"): 100,
        ("reviewer", MODEL, "input"): 600, ("reviewer", MODEL, "output"): 10,
        ("operator", MODEL, "input"): 80, ("operator", MODEL, "output"): 30,
    }
    for persona, calls in [("planner", 1), ("coder", 2), ("reviewer", 2), ("operator", 1)]:
        assert sample("hypertool_llm_requests_total", model=MODEL, persona=persona,
                      status="ok") == calls
    assert sample("hypertool_tool_calls_total", tool="write_code", persona="coder",
                  status="ok") == 2
    assert sample("hypertool_tool_calls_total", tool="run_tests", persona="tester",
                  status="ok") == 2

    gate = {"stage": "review", "gate": "review", **wf}
    assert sample("hypertool_workflow_quality_gate_total", result="fail", **gate) == 1
    assert sample("hypertool_workflow_quality_gate_total", result="pass", **gate) == 1

    stages = {"plan": ("planner", 1, 1.0), "implement": ("coder", 2, 4.0),
              "test": ("tester", 2, 6.0), "review": ("reviewer", 2, 1.0),
              "release": ("operator", 1, 0.25)}
    for stage, (persona, count, seconds) in stages.items():
        labels = {"stage": stage, "persona": persona, **wf}
        assert sample(STAGE + "_count", **labels) == count, stage
        assert sample(STAGE + "_sum", **labels) == seconds, stage

    personas = {"planner": (1, 1.0), "coder": (2, 4.0), "tester": (2, 6.0),
                "reviewer": (2, 1.0), "operator": (1, 0.25)}
    for persona, (count, seconds) in personas.items():
        assert sample(PERSONA_SECONDS + "_count", persona=persona, **wf) == count, persona
        assert sample(PERSONA_SECONDS + "_sum", persona=persona, **wf) == seconds, persona

    assert sample("hypertool_workflow_duration_seconds_count", status="ok", **wf) == 1
    assert sample("hypertool_workflow_duration_seconds_sum", status="ok", **wf) == 12.25
    assert tracker.live_runs == 0
    assert tracker.live_executions == 0


def test_pipeline_twice_doubles_every_count(make_tracker: MakeTracker, sample: Sample,
                                            clock: ManualClock) -> None:
    tracker = make_tracker(clock=clock)
    handler = HypertoolCallbackHandler(tracker)
    for _ in range(2):
        build_pipeline(clock).invoke({}, config={"callbacks": [handler]})
    wf = {"workflow": "delivery"}
    # No switch across executions: each starts with nobody acting.
    assert sample(SWITCHES, from_persona="operator", to_persona="planner", **wf) == 0
    assert sample(SWITCHES, from_persona="coder", to_persona="tester", **wf) == 4
    assert sample(TOKENS, persona="reviewer", model=MODEL, token_type="input") == 1200
    assert sample("hypertool_workflow_quality_gate_total", result="pass", stage="review",
                  gate="review", **wf) == 2
    assert sample("hypertool_workflow_duration_seconds_sum", status="ok", **wf) == 24.5


# -- streaming ------------------------------------------------------------------------------


class SlowStreamingFake(StreamingFake):
    """Takes ``delay`` seconds (of the injected clock) before its first chunk."""

    clock: Any = None
    delay: float = 0.25

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.clock.advance(self.delay)
        yield from super()._stream(messages, stop, run_manager, **kwargs)


def test_streaming_counts_usage_of_the_merged_chunk(make_tracker: MakeTracker, sample: Sample,
                                                    registry: CollectorRegistry,
                                                    clock: ManualClock) -> None:
    tracker = make_tracker(clock=clock)
    model = SlowStreamingFake(responses=[reply("one two three", tokens=(40, 3))], clock=clock)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model | StrOutputParser()
    chunks = list(chain.stream({"q": "count"}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:counter"]}))
    assert "".join(chunks) == "one two three"
    assert token_series(registry) == {("counter", MODEL, "input"): 40,
                                      ("counter", MODEL, "output"): 3}
    ttft = "hypertool_llm_time_to_first_token_seconds"
    assert sample(ttft + "_count", model=MODEL, persona="counter") == 1
    assert sample(ttft + "_sum", model=MODEL, persona="counter") == 0.25
    assert sample("hypertool_llm_request_duration_seconds_sum", model=MODEL, persona="counter",
                  status="ok") == 0.25
    assert sample("hypertool_llm_usage_missing_total", model=MODEL, persona="counter") == 0
    assert tracker.live_runs == 0


def test_streaming_inside_a_graph(make_tracker: MakeTracker, sample: Sample,
                                  registry: CollectorRegistry) -> None:
    """``stream_mode="messages"`` makes the node's ``invoke`` stream: usage counted once."""
    tracker = make_tracker()
    model = StreamingFake(responses=[reply("a b c d", tokens=(12, 4))])

    def write(state: State, config: RunnableConfig) -> State:
        model.invoke("go", config)
        return {"log": ["written"]}

    graph = StateGraph(State)
    graph.add_node("write", write, metadata={"hypertool_persona": "writer"})
    graph.add_edge(START, "write")
    graph.add_edge("write", END)
    app = graph.compile(name="docs")
    events = list(app.stream({}, config={"callbacks": [HypertoolCallbackHandler(tracker)]},
                             stream_mode="messages"))
    assert len(events) >= 4
    assert token_series(registry) == {("writer", MODEL, "input"): 12,
                                      ("writer", MODEL, "output"): 4}
    assert sample("hypertool_llm_time_to_first_token_seconds_count", model=MODEL,
                  persona="writer") == 1
    assert tracker.live_runs == 0


def test_invoke_is_not_a_stream(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker()
    ToolCallingFake(responses=[reply("x")]).invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    assert sample("hypertool_llm_time_to_first_token_seconds_count", model=MODEL,
                  persona="p") == 0


# -- usage sources ----------------------------------------------------------------------------


class ProviderModel(BaseChatModel):
    """Reports usage the way provider integrations do: only in ``llm_output``."""

    model_name: str = "gpt-test"

    @property
    def _llm_type(self) -> str:
        return "provider"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage("hello"))],
            llm_output={"token_usage": {"prompt_tokens": 11, "completion_tokens": 7,
                                        "total_tokens": 18,
                                        "prompt_tokens_details": {"cached_tokens": 4},
                                        "completion_tokens_details": {"reasoning_tokens": 2}},
                        "model_name": "gpt-test-2026-01"})


def test_llm_output_token_usage_fallback(make_tracker: MakeTracker, sample: Sample,
                                         registry: CollectorRegistry) -> None:
    tracker = make_tracker()
    ProviderModel().invoke("q", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                        "tags": ["persona:p"]})
    assert token_series(registry) == {("p", "gpt-test", "input"): 11,
                                      ("p", "gpt-test", "output"): 7}
    detail = "hypertool_persona_token_details_total"
    assert sample(detail, persona="p", model="gpt-test", detail="cache_read") == 4
    assert sample(detail, persona="p", model="gpt-test", detail="reasoning") == 2
    assert sample("hypertool_llm_usage_missing_total", model="gpt-test", persona="p") == 0


def test_missing_usage_is_counted_not_guessed(make_tracker: MakeTracker, sample: Sample,
                                              registry: CollectorRegistry) -> None:
    tracker = make_tracker()
    FakeListChatModel(responses=["no usage here"]).invoke(
        "q", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    assert sample("hypertool_llm_usage_missing_total", model="fake-list-chat-model",
                  persona="p") == 1
    assert token_series(registry) == {}
    assert sample("hypertool_llm_requests_total", model="fake-list-chat-model", persona="p",
                  status="ok") == 1


def test_estimated_usage_is_labelled_estimated(make_tracker: MakeTracker,
                                               registry: CollectorRegistry) -> None:
    tracker = make_tracker(estimate_missing_usage=True)
    # ~4 characters a token: an 80-character prompt and a 40-character completion.
    FakeListChatModel(responses=["a" * 40]).invoke(
        "q" * 80, config={"callbacks": [HypertoolCallbackHandler(tracker)],
                          "tags": ["persona:p"]})
    assert token_series(registry) == {("p", "fake-list-chat-model", "input_estimated"): 20,
                                      ("p", "fake-list-chat-model", "output_estimated"): 10}


def test_reported_usage_is_never_replaced_by_an_estimate(make_tracker: MakeTracker,
                                                         registry: CollectorRegistry) -> None:
    tracker = make_tracker(estimate_missing_usage=True)
    ToolCallingFake(responses=[reply("x" * 400, tokens=(3, 1))]).invoke(
        "q" * 400, config={"callbacks": [HypertoolCallbackHandler(tracker)],
                           "tags": ["persona:p"]})
    assert token_series(registry) == {("p", MODEL, "input"): 3, ("p", MODEL, "output"): 1}
