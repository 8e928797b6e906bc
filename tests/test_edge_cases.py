"""Edge cases of the core found in review: interrupts, UUID thread ids, innermost tags,
broken config files, structured verdicts, handled tool errors, nested LLM calls, busy metrics
ports, re-instrumenting. Each asserts the documented behaviour."""

from __future__ import annotations

import atexit
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

import hypertool_callbacks
from hypertool_callbacks import _autoload, wiring
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import load_config
from hypertool_callbacks.context import gates
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.runtime import set_tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import StreamingFake, ToolCallingFake, reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
MODEL = "fake-messages-list-chat-model"
GATE = "hypertool_workflow_quality_gate_total"
TOKENS = "hypertool_persona_tokens_used_total"
SWITCHES = "hypertool_persona_switches_total"


# -- 1. a gate paused by interrupt() is not a verdict -------------------------------------


class _Review(TypedDict, total=False):
    draft: str
    approved: bool


def test_gate_paused_by_interrupt_is_counted_once_after_resume(make_tracker: MakeTracker,
                                                               sample: Sample) -> None:
    """A human-approval gate (``interrupt()`` + ``Command(resume=...)``) must be counted once,
    with the verdict given on resume; the pause itself is LangGraph control flow, not a pass."""

    def write(state: _Review) -> _Review:
        return {"draft": "v1"}

    def human_review(state: _Review) -> _Review:
        answer = interrupt("approve the draft?")
        return {"approved": answer == "yes"}

    graph = StateGraph(_Review)
    graph.add_node("write", write)
    graph.add_node("human_review", human_review, metadata={"hypertool_gate": "human"})
    graph.add_edge(START, "write")
    graph.add_edge("write", "human_review")
    graph.add_edge("human_review", END)
    app = graph.compile(checkpointer=InMemorySaver(), name="flow")
    config: Any = {"configurable": {"thread_id": "t1"},
                   "callbacks": [HypertoolCallbackHandler(make_tracker())]}
    paused = app.invoke({"draft": ""}, config)
    assert "__interrupt__" in paused
    assert app.invoke(Command(resume="no"), config)["approved"] is False
    labels = {"workflow": "flow", "stage": "human_review", "gate": "human"}
    assert sample(GATE, result="fail", **labels) == 1
    assert sample(GATE, result="pass", **labels) == 0


# -- 2. a UUID thread_id is still a thread --------------------------------------------------


class _Counter(TypedDict, total=False):
    n: int


def test_uuid_thread_id_keeps_switches_across_invocations(make_tracker: MakeTracker,
                                                          sample: Sample) -> None:
    """``configurable.thread_id`` is very often a ``uuid.UUID``; LangGraph copies it into the
    metadata as is. Switches must continue across invocations of that thread, as with a str."""
    model = ToolCallingFake(responses=[reply("a"), reply("b")])

    def work(state: _Counter) -> _Counter:
        model.invoke("hi")
        return {"n": 1}

    graph = StateGraph(_Counter)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_edge("work", END)
    app = graph.compile(checkpointer=InMemorySaver(), name="chat")
    base: Any = {"configurable": {"thread_id": uuid.uuid4()},
                 "callbacks": [HypertoolCallbackHandler(make_tracker())]}
    app.invoke({"n": 0}, {**base, "tags": ["persona:alpha"]})
    app.invoke({"n": 0}, {**base, "tags": ["persona:beta"]})
    assert sample(SWITCHES, from_persona="alpha", to_persona="beta", workflow="chat") == 1


# -- 3. explicit persona: the innermost wins ------------------------------------------------


def test_inner_persona_tag_wins_over_outer_persona_metadata(make_tracker: MakeTracker,
                                                            sample: Sample) -> None:
    """README: explicit metadata ``hypertool_persona`` or tag ``persona:<name>`` -- the
    innermost wins. Metadata given at the top is inherited by every child run, so it must not
    beat a tag set on an inner runnable."""
    critic = ToolCallingFake(responses=[reply("ok", tokens=(10, 1))]).with_config(
        tags=["persona:critic"])
    chain = RunnableLambda(lambda text: text) | critic
    chain.invoke("draft", config={"callbacks": [HypertoolCallbackHandler(make_tracker())],
                                  "metadata": {"hypertool_persona": "writer"}})
    assert sample(TOKENS, persona="critic", model=MODEL, token_type="input") == 10
    assert sample(TOKENS, persona="writer", model=MODEL, token_type="input") == 0


# -- 4/5. configuration problems never escape as anything but a named ConfigError ----------


def test_non_utf8_config_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hypertool.toml"
    path.write_bytes("label_cap = 5  # caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"hypertool\.toml"):
        load_config(path, environ={})


def test_failure_to_build_the_tracker_never_breaks_the_chain(tmp_path: Path,
                                                             no_global_tracker: None) -> None:
    """The process-wide tracker is built lazily inside LangChain's callback; any failure there
    (here: the working directory was deleted, so ``Path.cwd()`` raises) must not reach the
    app, which gets its result as if hypertool were not there."""
    original = os.getcwd()
    gone = tmp_path / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    result: object
    try:
        result = RunnableLambda(lambda x: x + 1).invoke(
            1, config={"callbacks": [HypertoolCallbackHandler()]})
    except Exception as exc:  # the defect: reported below, after the cwd is restored
        result = exc
    finally:
        os.chdir(original)
    assert result == 2


# -- 6. gate verdict table ------------------------------------------------------------------


class _StructuredReview(BaseModel):
    approved: bool
    comments: str


@pytest.mark.parametrize("output", [
    # README: "else a verdict/result/status/decision/outcome/review/grade/evaluation value
    # decides" -- the usual LangGraph state update after `with_structured_output(Review)`.
    {"review": _StructuredReview(approved=False, comments="tests missing"), "attempts": 2},
    {"review": {"approved": False}, "messages": ["x"]},
])
def test_verdict_key_holding_a_structured_review_decides(output: Any) -> None:
    assert gates.verdict(None, output) == gates.FAIL


# -- 7. a tool that raised ToolException (handled) is an error -----------------------------


def test_tool_exception_handled_by_the_tool_counts_as_error(make_tracker: MakeTracker,
                                                            sample: Sample) -> None:
    """``handle_tool_error=True`` turns the raised ToolException into a ToolMessage with
    ``status="error"`` (on_tool_end, not on_tool_error); it is still a failed tool call, as
    the same failure caught by ``ToolNode(handle_tool_errors=True)`` already counts."""

    @tool
    def deploy(target: str) -> str:
        """Deploy."""
        raise ToolException("cluster unreachable")

    deploy.handle_tool_error = True
    message = deploy.invoke(
        {"name": "deploy", "args": {"target": "prod"}, "id": "call_1", "type": "tool_call"},
        config={"callbacks": [HypertoolCallbackHandler(make_tracker())],
                "tags": ["persona:ops"]})
    assert message.status == "error"
    assert sample("hypertool_tool_calls_total", tool="deploy", persona="ops", status="error") == 1
    assert sample("hypertool_tool_calls_total", tool="deploy", persona="ops", status="ok") == 0


# -- 8. a chat model delegating to another is one LLM call's worth of tokens ---------------


class _Delegating(BaseChatModel):
    """A gateway/router model that delegates to an inner chat model, as a child run."""

    inner: Any

    @property
    def _llm_type(self) -> str:
        return "gateway"

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        manager = CallbackManager(
            handlers=run_manager.handlers, inheritable_handlers=run_manager.inheritable_handlers,
            parent_run_id=run_manager.run_id, tags=run_manager.inheritable_tags,
            inheritable_tags=run_manager.inheritable_tags,
            metadata=run_manager.inheritable_metadata,
            inheritable_metadata=run_manager.inheritable_metadata)
        message = self.inner.invoke(messages, config={"callbacks": manager})
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_nested_llm_runs_do_not_double_count_tokens(make_tracker: MakeTracker,
                                                    registry: CollectorRegistry) -> None:
    gateway = _Delegating(inner=ToolCallingFake(responses=[reply("x", tokens=(10, 2))]))
    gateway.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(make_tracker())],
                                 "tags": ["persona:p"]})
    total = sum(s.value for metric in registry.collect() for s in metric.samples
                if s.name == TOKENS and s.labels["persona"] == "p")
    assert total == 12  # one call: 10 in + 2 out, not once per nesting level


# -- 9. a busy metrics port does not cancel the rest of the activation ---------------------


def test_busy_metrics_port_still_flushes_on_exit(make_tracker: MakeTracker,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 no_global_tracker: None) -> None:
    """With the port taken (a second worker, a reloader child), the env hook is active anyway,
    so spans/traces are produced: the bounded flush at exit must still be registered."""
    flushed = _Flushed()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        tracker = make_tracker(sinks=[flushed], metrics_port=busy.getsockname()[1])
        set_tracker(tracker)
        registered: list[Any] = []
        monkeypatch.setattr(wiring, "_exit_hook", False)  # this process registered it already
        monkeypatch.setattr(atexit, "register", lambda func, *args: registered.append(func))
        assert _autoload._build() is tracker  # what activation runs at the framework's import
    for hook in registered:  # what the interpreter runs at exit
        hook()
    assert flushed.timeouts == [tracker.config.exit_flush_seconds]


class _Flushed(Sink):
    name = "flushed"

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def shutdown(self, timeout: float = 5.0) -> None:
        self.timeouts.append(timeout)


# -- 10. instrument(tracker) re-targets the global handler ---------------------------------


def test_instrument_with_a_new_tracker_sends_events_to_it(no_global_tracker: None) -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    t1 = Tracker(sinks=[PrometheusSink(first)])
    t2 = Tracker(sinks=[PrometheusSink(second)])
    labels = {"model": MODEL, "persona": "unknown", "status": "ok"}
    hypertool_callbacks.instrument(t1)
    ToolCallingFake(responses=[reply("x")]).invoke("hi")
    assert hypertool_callbacks.instrument(t2) is t2  # says the events now go to t2...
    ToolCallingFake(responses=[reply("x")]).invoke("hi")
    assert first.get_sample_value("hypertool_llm_requests_total", labels) == 1
    assert second.get_sample_value("hypertool_llm_requests_total", labels) == 1


def test_stream_closed_early_is_cancelled_not_an_error(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    """A consumer that stops reading a stream did not make the LLM call fail."""
    tracker = make_tracker()
    model = StreamingFake(responses=[reply("one two three four", tokens=(9, 4))])
    stream = model.stream("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                         "tags": ["persona:reader"]})
    next(stream)
    stream.close()  # GeneratorExit inside LangChain's stream
    labels = {"model": "fake-messages-list-chat-model", "persona": "reader"}
    assert sample("hypertool_llm_requests_total", status="cancelled", **labels) == 1
    assert sample("hypertool_llm_requests_total", status="error", **labels) == 0
    assert sample("hypertool_llm_usage_missing_total", **labels) == 0
    assert tracker.live_runs == 0


def test_a_failure_while_ending_a_run_still_ends_it_for_the_sinks(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    """Estimating usage reads the output: an output whose attributes raise must not leave the
    run open in the sinks, nor reach the app."""

    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise ValueError("no attributes here")

    from hypertool_callbacks.events import RunEnd, RunKind, RunStart

    tracker = make_tracker(estimate_missing_usage=True)
    tracker.start(RunStart("r", None, RunKind.LLM, "model", tags=("persona:p",)))
    tracker.end(RunEnd("r", outputs=Hostile()))
    assert tracker.live_runs == 0
    assert sample("hypertool_internal_errors_total", component="tracker.finish") == 1
    assert sample("hypertool_llm_requests_total", model="unknown", persona="p",
                  status="ok") == 1
