"""Langfuse sink: the real langfuse SDK exporting to a local OTLP receiver on 127.0.0.1.

What Langfuse receives is read back from the decoded protobuf: observation types, usage,
metadata, user/session/tags on every observation, parentage, timestamps and trace ids.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.clock import ManualClock
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import StreamingFake, ToolCallingFake, reply, usage
from tests.langfuse_support import SECRET
from tests.otlp_receiver import OTLPReceiver

LF_PATH = "/api/public/otel/v1/traces"


# -- reading back what Langfuse received ------------------------------------------------------

def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class Obs:
    name: str
    scope: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    end: int
    attrs: dict[str, Any]

    @property
    def type(self) -> Any:
        return self.attrs.get("langfuse.observation.type")

    def meta(self, key: str) -> Any:
        raw = self.attrs.get(f"langfuse.observation.metadata.{key}")
        return None if raw is None else json.loads(raw)

    def json(self, key: str) -> Any:
        raw = self.attrs.get(f"langfuse.observation.{key}")
        return None if raw is None else json.loads(raw)


def observations(receiver: OTLPReceiver, path: str = LF_PATH) -> list[Obs]:
    found = []
    for received in receiver.received:
        if received.path != path:
            continue
        for resource_spans in received.request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(Obs(
                        span.name, scope_spans.scope.name, span.trace_id.hex(),
                        span.span_id.hex(), span.parent_span_id.hex(),
                        span.start_time_unix_nano, span.end_time_unix_nano,
                        {kv.key: _value(kv.value) for kv in span.attributes}))
    return sorted(found, key=lambda o: o.start)


class Recorder(Sink):
    """Keeps every ended run (placed after the Langfuse sink, so trace ids are set)."""

    name = "recorder"

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def on_run_end(self, run: Run) -> None:
        self.runs.append(run)

    def of_kind(self, kind: RunKind) -> list[Run]:
        return [run for run in self.runs if run.kind is kind]


# -- fixtures -----------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("reset_langfuse")

MakeSink = Callable[..., lf.LangfuseSink]


@pytest.fixture
def make_sink(public_key: str, registry: CollectorRegistry) -> Iterator[MakeSink]:
    sinks: list[lf.LangfuseSink] = []

    def make(**kwargs: Any) -> lf.LangfuseSink:
        sink = lf.LangfuseSink(registry=registry, **kwargs)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.shutdown(5.0)


@dataclass
class Setup:
    sink: lf.LangfuseSink
    recorder: Recorder
    handler: HypertoolCallbackHandler
    receiver: OTLPReceiver
    registry: CollectorRegistry

    def collect(self) -> list[Obs]:
        assert self.sink.flush(10.0)
        # The sink never failed (the tracker counts what a sink raises).
        assert self.registry.get_sample_value(
            "hypertool_internal_errors_total", {"component": "sink:langfuse"}) is None
        return observations(self.receiver)


@pytest.fixture
def setup(make_sink: MakeSink, receiver: OTLPReceiver, registry: CollectorRegistry,
          request: pytest.FixtureRequest) -> Setup:
    options = getattr(request, "param", {})
    sink, recorder = make_sink(**options.get("sink", {})), Recorder()
    config = Config.model_validate(options.get("config", {}))
    tracker = Tracker(config, [sink, recorder, PrometheusSink(registry)])
    return Setup(sink, recorder, HypertoolCallbackHandler(tracker), receiver, registry)


def single(items: list[Obs], **where: Any) -> Obs:
    found = [o for o in items if all(getattr(o, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, [(o.name, o.type) for o in items])
    return found[0]


# -- one chain ------------------------------------------------------------------------------

def test_chain_generation_with_usage_metadata_and_trace_attributes(setup: Setup,
                                                                   public_key: str) -> None:
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model.bind(stop=["END"])
    chain.invoke({"q": "hi"}, config={
        "callbacks": [setup.handler], "tags": ["persona:reviewer", "stage:review"],
        "metadata": {"langfuse_user_id": "user-1", "langfuse_session_id": "sess-1"},
        "run_name": "review_flow"})
    got = setup.collect()

    headers = setup.receiver.received[0].headers
    token = base64.b64encode(f"{public_key}:{SECRET}".encode()).decode()
    assert headers["authorization"] == f"Basic {token}"
    assert headers["content-encoding"] == "gzip"
    assert [(o.name, o.type) for o in got] == [
        ("review_flow", "chain"), ("ChatPromptTemplate", "chain"),
        ("FakeMessagesListChatModel", "generation")]
    assert {o.scope for o in got} == {"langfuse-sdk"}

    root, prompt, gen = got
    assert gen.attrs["langfuse.observation.model.name"] == "fake-messages-list-chat-model"
    assert gen.json("usage_details") == {"input": 12, "output": 3, "total": 15}
    assert gen.json("model.parameters") == {"stop": ["END"]}
    assert gen.json("output")["content"] == "hello"
    assert gen.json("input")[0]["content"] == "hi"
    for obs in got:  # every observation, not only the root
        assert obs.attrs["user.id"] == "user-1"
        assert obs.attrs["session.id"] == "sess-1"
        assert obs.attrs["langfuse.trace.tags"] == ["workflow:review_flow", "persona:reviewer"]
        assert obs.attrs["langfuse.trace.name"] == "review_flow"
        assert (obs.meta("persona"), obs.meta("stage"), obs.meta("workflow")) == (
            "reviewer", "review", "review_flow")

    # One trace, the run's trace id; parentage mirrors the run tree; root marked as such.
    runs = {run.name: run for run in setup.recorder.runs}
    assert {o.trace_id for o in got} == {runs["review_flow"].trace_id}
    assert all(run.trace_id == runs["review_flow"].trace_id for run in runs.values())
    assert prompt.parent_id == root.span_id and gen.parent_id == root.span_id
    assert root.parent_id not in {o.span_id for o in got}
    assert [o.attrs.get("langfuse.internal.as_root") for o in got] == [True, None, None]
    # Timestamps are the runs' own.
    for obs in got:
        assert (obs.start, obs.end) == (runs[obs.name].start_ns, runs[obs.name].end_ns)


def test_cache_and_reasoning_tokens_are_split_out(setup: Setup) -> None:
    meta = usage(100, 30, input_token_details={"cache_read": 60, "cache_creation": 10},
                 output_token_details={"reasoning": 20})
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=meta)])
    model.invoke("q", config={"callbacks": [setup.handler]})
    gen = single(setup.collect(), type="generation")
    assert gen.json("usage_details") == {
        "input": 30, "output": 10, "total": 130, "input_cache_read": 60,
        "input_cache_creation": 10, "output_reasoning": 20}


def test_stream_sets_completion_start_time(setup: Setup) -> None:
    model = StreamingFake(responses=[reply("one two three", tokens=(7, 3))])
    assert "".join(str(c.content) for c in model.stream(
        "q", config={"callbacks": [setup.handler]})) == "one two three"
    gen = single(setup.collect(), type="generation")
    (run,) = setup.recorder.of_kind(RunKind.LLM)
    assert run.first_token_ns is not None
    seconds, rest = divmod(run.first_token_ns, 10**9)
    expected = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)
    assert datetime.fromisoformat(gen.json("completion_start_time")) == expected
    assert gen.json("usage_details") == {"input": 7, "output": 3, "total": 10}


# -- LangGraph ------------------------------------------------------------------------------

@tool
def search(query: str) -> str:
    """Search the web."""
    return f"found {query}"


def team() -> Any:
    """planner (a react agent that searches once) -> coder (a react agent), checkpointed."""
    planner = create_react_agent(ToolCallingFake(responses=[
        reply(calls=[("search", {"query": "specs"})], tokens=(20, 2)),
        reply("plan ready", tokens=(30, 3))]), [search], name="planner")
    coder = create_react_agent(ToolCallingFake(responses=[reply("code ready", tokens=(40, 4))]),
                               [search], name="coder")
    graph = StateGraph(MessagesState)
    graph.add_node("planner", planner)
    graph.add_node("coder", coder)
    graph.add_edge(START, "planner")
    graph.add_edge("planner", "coder")
    graph.add_edge("coder", END)
    return graph.compile(name="team", checkpointer=InMemorySaver())


def test_two_agent_graph_types_personas_and_session(setup: Setup) -> None:
    team().invoke({"messages": [("user", "build it")]}, config={
        "callbacks": [setup.handler], "configurable": {"thread_id": "thread-7"}})
    got = setup.collect()

    root = single(got, name="team")
    assert root.type == "chain" and root.attrs["langfuse.internal.as_root"] is True
    by_id = {o.span_id: o for o in got}
    agents = {o.name: o for o in got if o.type == "agent"}
    assert set(agents) == {"planner", "coder"}
    for name, agent in agents.items():  # team -> node (chain) -> the agent's graph
        node = by_id[agent.parent_id]
        assert (node.name, node.type, node.parent_id) == (name, "chain", root.span_id)
        assert agent.meta("agent") == name

    gens = [o for o in got if o.type == "generation"]
    assert [(g.meta("persona"), g.json("usage_details")["total"]) for g in gens] == [
        ("planner", 22), ("planner", 33), ("coder", 44)]
    tool_obs = single(got, type="tool")
    assert (tool_obs.name, tool_obs.meta("persona")) == ("search", "planner")
    assert tool_obs.json("output")["content"] == "found specs"

    for obs in got:
        assert obs.attrs["session.id"] == "thread-7"  # LangGraph thread as session
        assert obs.trace_id == root.trace_id
        assert obs is root or obs.parent_id in by_id  # nothing orphaned
        if obs.meta("persona") in ("planner", "coder"):
            assert f"persona:{obs.meta('persona')}" in obs.attrs["langfuse.trace.tags"]
        # Each generation sits inside its own agent's observation.
        if obs.type == "generation":
            ancestor = obs
            while ancestor.type != "agent":
                ancestor = by_id[ancestor.parent_id]
            assert ancestor.name == obs.meta("persona")
    assert "workflow:team" in root.attrs["langfuse.trace.tags"]


async def test_concurrent_ainvoke_keeps_user_and_session_on_every_observation(
        setup: Setup) -> None:
    def chain(i: int) -> Any:
        model = FakeMessagesListChatModel(responses=[reply(f"answer {i}", tokens=(i, 1))])
        return RunnableLambda(lambda q: q, name="prep") | model

    async def run(i: int) -> Any:
        return await chain(i).ainvoke(f"q{i}", config={
            "callbacks": [setup.handler], "run_name": f"job{i}",
            "metadata": {"langfuse_user_id": f"user-{i}", "langfuse_session_id": f"s-{i}"}})

    results = await asyncio.gather(*(run(i) for i in range(1, 6)))
    assert [r.content for r in results] == [f"answer {i}" for i in range(1, 6)]
    got = setup.collect()
    assert len(got) == 15
    roots = [o for o in got if o.attrs.get("langfuse.internal.as_root")]
    assert len({o.trace_id for o in roots}) == 5
    for root in roots:
        i = int(root.name.removeprefix("job"))
        members = [o for o in got if o.trace_id == root.trace_id]
        assert len(members) == 3
        assert {(o.attrs.get("user.id"), o.attrs.get("session.id")) for o in members} == {
            (f"user-{i}", f"s-{i}")}
        gen = single(members, type="generation")
        assert gen.json("usage_details")["input"] == i


@pytest.mark.parametrize("setup", [{"sink": {"persona_as_user": True}}], indirect=True)
def test_persona_as_user(setup: Setup) -> None:
    team().invoke({"messages": [("user", "go")]}, config={
        "callbacks": [setup.handler], "configurable": {"thread_id": "t"},
        "metadata": {"langfuse_user_id": "alice"}})
    got = setup.collect()
    for obs in got:
        persona = obs.meta("persona")
        assert obs.attrs["user.id"] == (persona if persona != "unknown" else "alice")
    assert {o.attrs["user.id"] for o in got} == {"alice", "planner", "coder"}


# -- errors, content, masking -----------------------------------------------------------------

def test_tool_error_marks_observation_error(setup: Setup) -> None:
    @tool
    def explode(x: str) -> str:
        """Always fails."""
        raise RuntimeError("boom")

    flow = RunnableLambda(lambda x: explode.invoke(x), name="flow")
    with pytest.raises(RuntimeError, match="boom"):
        flow.invoke("x", config={"callbacks": [setup.handler]})
    got = setup.collect()
    assert [(o.name, o.attrs.get("langfuse.observation.level")) for o in got] == [
        ("flow", "ERROR"), ("explode", "ERROR")]
    assert got[1].type == "tool"
    assert got[1].attrs["langfuse.observation.status_message"] == "RuntimeError: boom"


def _mask(value: Any) -> Any:
    return "[masked]"


def _broken_mask(value: Any) -> Any:
    raise ValueError("mask bug")


@pytest.mark.parametrize(("setup", "expected"), [
    ({"sink": {"mask": _mask}}, "[masked]"),
    ({"sink": {"mask": _broken_mask}}, None),
    ({"sink": {"capture_content": False}}, None),
], indirect=["setup"])
def test_content_masking_and_capture_off(setup: Setup, expected: str | None) -> None:
    model = FakeMessagesListChatModel(responses=[reply("secret answer")])
    assert model.invoke("secret question", config={"callbacks": [setup.handler]}).content == (
        "secret answer")
    gen = single(setup.collect(), type="generation")
    assert gen.attrs.get("langfuse.observation.input") == expected
    assert gen.attrs.get("langfuse.observation.output") == expected
    assert gen.json("usage_details") == {"input": 10, "output": 5, "total": 15}


# -- trace ids ----------------------------------------------------------------------------------

class FixedTraceId(Sink):
    """Stands in for the OTel sink: sets ``run.trace_id`` before the Langfuse sink runs."""

    name = "fixed"
    TRACE_ID = "0af7651916cd43dd8448eb211c80319c"

    def on_run_start(self, run: Run) -> None:
        run.trace_id = self.TRACE_ID


def test_trace_id_from_earlier_sink_is_the_langfuse_trace_id(
        make_sink: MakeSink, receiver: OTLPReceiver, make_tracker: Callable[..., Tracker]
) -> None:
    sink = make_sink()
    handler = HypertoolCallbackHandler(make_tracker(sinks=[FixedTraceId(), sink]))
    model = FakeMessagesListChatModel(responses=[reply("x")])
    (RunnableLambda(lambda q: q, name="prep") | model).invoke("q", config={"callbacks": [handler]})
    assert sink.flush(10.0)
    got = observations(receiver)
    assert len(got) == 3 and {o.trace_id for o in got} == {FixedTraceId.TRACE_ID}


def test_generated_trace_id_reaches_prometheus_exemplars(setup: Setup,
                                                         registry: CollectorRegistry) -> None:
    model = FakeMessagesListChatModel(responses=[reply("x")])
    model.invoke("q", config={"callbacks": [setup.handler]})
    gen = single(setup.collect(), type="generation")
    exemplars = [s.exemplar.labels["trace_id"] for metric in registry.collect()
                 if metric.name == "hypertool_llm_requests" for s in metric.samples
                 if s.exemplar is not None]
    assert exemplars == [gen.trace_id]


def test_gate_result_and_evicted_runs(make_sink: MakeSink, receiver: OTLPReceiver,
                                      make_tracker: Callable[..., Tracker],
                                      clock: ManualClock) -> None:
    sink = make_sink()
    tracker = make_tracker(sinks=[sink], clock=clock, run_ttl_seconds=60)
    tracker.start(RunStart("root", None, RunKind.CHAIN, "flow", ("workflow:ship",)))
    tracker.start(RunStart("gate", "root", RunKind.CHAIN, "check", ("gate:tests_pass",)))
    clock.advance(2)
    tracker.end(RunEnd("gate", outputs={"passed": False}))
    tracker.start(RunStart("stuck", "root", RunKind.TOOL, "deploy"))
    clock.advance(61)
    assert tracker.evict_now() == 2  # the root and the tool never ended
    assert sink.flush(10.0)
    got = {o.name: o for o in observations(receiver)}
    assert set(got) == {"flow", "check", "deploy"}
    check = got["check"]
    assert (check.meta("gate"), check.meta("gate_result"), check.meta("workflow")) == (
        "tests_pass", "fail", "ship")
    assert check.end - check.start == 2_000_000_000  # the tracker's clock, not the sink's
    for name in ("flow", "deploy"):
        assert got[name].attrs["langfuse.observation.level"] == "WARNING"
        assert got[name].meta("status") == "evicted"
    assert got["deploy"].type == "tool" and got["deploy"].parent_id == got["flow"].span_id
