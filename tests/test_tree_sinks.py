"""Sinks that decline a run tree (``Sink.takes_tree``) hear nothing of it; the others hear
everything, and a sink added while a tree runs hears the rest of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.context.records import PersonaStint, PersonaSwitch
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunKind, RunStart
from hypertool_callbacks.sinks import otel_env
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply

MODEL = "fake-messages-list-chat-model"  # the model label
LLM_RUN = "FakeMessagesListChatModel"  # the run name


class Spy(Sink):
    """Hears every note; declines the trees whose root is named in ``declines``."""

    name = "spy"

    def __init__(self, declines: tuple[str, ...] = (), fails: bool = False) -> None:
        self.declines = declines
        self.fails = fails
        self.heard: list[tuple[str, str, str]] = []  # (method, run or persona, tree)

    def takes_tree(self, root: Run) -> bool:
        if self.fails:
            raise RuntimeError("broken check")
        return root.name not in self.declines

    def on_run_start(self, run: Run) -> None:
        self.heard.append(("start", run.name, run.root.name))

    def on_run_end(self, run: Run) -> None:
        self.heard.append(("end", run.name, run.root.name))

    def on_switch(self, switch: PersonaSwitch) -> None:
        self.heard.append(("switch", switch.to_persona, switch.workflow))

    def on_stint(self, stint: PersonaStint) -> None:
        self.heard.append(("stint", stint.persona, stint.workflow))


def _app(name: str, on_model_reply: Callable[[Any], Any] = lambda text: text) -> Any:
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hi", tokens=(7, 2))])
    chain = prompt | model | StrOutputParser() | RunnableLambda(on_model_reply).with_config(
        run_name="after")
    return chain.with_config(run_name=name)


def _llm_requests(registry: CollectorRegistry, workflow: str) -> float | None:
    return registry.get_sample_value("hypertool_llm_requests_total", {
        "model": MODEL, "persona": workflow, "status": "ok"})


def test_a_sink_that_declines_a_tree_hears_none_of_its_notes(
    make_tracker: Callable[..., Tracker], registry: CollectorRegistry
) -> None:
    spy, other = Spy(declines=("quiet",)), Spy()
    tracker = make_tracker(sinks=[spy, other, PrometheusSink(registry)])
    config = {"callbacks": [HypertoolCallbackHandler(tracker)]}

    for name in ("quiet", "loud"):
        _app(name).invoke({"q": "x"}, config={**config, "tags": [f"persona:{name}"]})

    def tree(name: str) -> list[tuple[str, str, str]]:
        inner = ["ChatPromptTemplate", LLM_RUN, "StrOutputParser", "after"]
        return [("start", name, name),
                *[(event, run, name) for run in inner for event in ("start", "end")],
                ("end", name, name), ("stint", name, name)]

    # The sink that takes every tree hears both in full; the one that declines "quiet"
    # hears "loud" alone; the metrics count both.
    assert other.heard == tree("quiet") + tree("loud")
    assert spy.heard == tree("loud")
    assert _llm_requests(registry, "quiet") == 1.0
    assert _llm_requests(registry, "loud") == 1.0
    assert tracker.live_runs == 0


def test_a_failing_tree_check_is_counted_and_the_sink_takes_the_tree(
    make_tracker: Callable[..., Tracker], registry: CollectorRegistry
) -> None:
    spy = Spy(fails=True)
    tracker = make_tracker(sinks=[spy, PrometheusSink(registry)])

    out = _app("quiet").invoke({"q": "x"}, config={"callbacks": [HypertoolCallbackHandler(
        tracker)]})

    assert out == "hi"
    assert ("end", "quiet", "quiet") in spy.heard and ("end", LLM_RUN, "quiet") in spy.heard
    assert registry.get_sample_value("hypertool_internal_errors_total",
                                     {"component": "sink:spy"}) == 1.0


def test_strict_mode_raises_a_failing_tree_check(make_tracker: Callable[..., Tracker]) -> None:
    tracker = make_tracker(sinks=[Spy(fails=True)], strict=True)
    with pytest.raises(RuntimeError, match="broken check"):
        _app("quiet").invoke({"q": "x"}, config={"callbacks": [
            HypertoolCallbackHandler(tracker)]})


def test_a_sink_added_while_a_declined_tree_runs_hears_the_rest_of_it(
    make_tracker: Callable[..., Tracker],
) -> None:
    spy, late = Spy(declines=("quiet",)), Spy()
    tracker = make_tracker(sinks=[spy])

    def attach(text: str) -> str:
        tracker.add_sink(late)
        return text

    _app("quiet", attach).invoke({"q": "x"}, config={"callbacks": [
        HypertoolCallbackHandler(tracker)]})

    assert ("end", "quiet", "quiet") in late.heard
    # "after" started before the sink came, when no sink of this tree needed it (the one
    # there declined the tree): folded into the root, so nobody hears its end.
    assert ("end", "after", "quiet") not in late.heard
    assert ("start", LLM_RUN, "quiet") not in late.heard  # it ran before the sink came
    assert spy.heard == []


def test_otel_without_recording_provider_hears_no_run_and_runs_keep_the_apps_trace(
    make_tracker: Callable[..., Tracker], registry: CollectorRegistry
) -> None:
    class IdleOtel(OtelSink):
        ended: list[str] = []

        def on_run_end(self, run: Run) -> None:
            self.ended.append(run.name)
            super().on_run_end(run)

    otel = IdleOtel(trace.NoOpTracerProvider())
    spy = Spy()
    traces: dict[tuple[str, str], str | None] = {}

    class Traces(Sink):
        def on_run_end(self, run: Run) -> None:
            traces[run.root.name, run.name] = run.trace_id

    tracker = make_tracker(sinks=[otel, spy, Traces(), PrometheusSink(registry)])
    app_trace = 0x0AF7651916CD43DD8448EB211C80319C
    parent = NonRecordingSpan(SpanContext(app_trace, 0x00F067AA0BA902B7, is_remote=True,
                                          trace_flags=TraceFlags(1)))
    with trace.use_span(parent):
        _app("quiet").invoke({"q": "x"}, config={"callbacks": [
            HypertoolCallbackHandler(tracker)]})
    _app("untraced").invoke({"q": "x"}, config={"callbacks": [
        HypertoolCallbackHandler(tracker)]})

    assert otel.ended == []  # no span, no call
    assert ("end", "quiet", "quiet") in spy.heard
    expected = format(app_trace, "032x")
    assert {traces["quiet", name] for name in ("quiet", LLM_RUN, "after")} == {expected}
    assert {trace_id for (tree, _), trace_id in traces.items() if tree == "untraced"} == {None}


def test_runs_evicted_while_a_declined_tree_runs_still_reach_the_sink(
    make_tracker: Callable[..., Tracker], clock: ManualClock
) -> None:
    spy = Spy(declines=("quiet",))
    tracker = make_tracker(sinks=[spy], clock=clock, run_ttl_seconds=60)
    tracker.start(RunStart("never-ends", None, RunKind.CHAIN, "loud"))
    clock.advance(61)

    tracker.start(RunStart("quiet-root", None, RunKind.CHAIN, "quiet"))  # sweeps "loud"
    clock.advance(61)
    tracker.start(RunStart("quiet-child", "quiet-root", RunKind.LLM, "llm"))  # and "quiet"

    assert spy.heard == [("start", "loud", "loud"), ("end", "loud", "loud"),
                         ("end", "quiet", "quiet")]


@pytest.mark.parametrize("direct", [True, False], ids=["context-var", "public-api"])
def test_propagated_trace_id_reads_the_current_span(
        direct: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The context variable read directly (the default runtime context) and the public
    # functions (any other) answer the same.
    assert otel_env._CONTEXT_VAR is not None  # this environment reads it directly
    if not direct:
        monkeypatch.setattr(otel_env, "_CONTEXT_VAR", None)
    assert otel_env.propagated_trace_id() is None
    valid = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=True))
    with trace.use_span(valid):
        assert otel_env.propagated_trace_id() == format(0xABC, "032x")
    with trace.use_span(trace.INVALID_SPAN):
        assert otel_env.propagated_trace_id() is None
