"""LlamaIndex workloads and a recording tracker for equivalence tests: every call the adapter
makes to the tracker, in order and normalised (span ids carry random uuids), plus the
Prometheus samples the workload left behind."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.tools import FunctionTool, QueryEngineTool
from llama_index.core.workflow import Context, StartEvent, StopEvent, Workflow, step
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunStart
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.llama_support import ScriptedAgentLLM, UsageLLM

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
USER = [ChatMessage(role="user", content="hi")]


class Normaliser:
    """Stable names for what differs from run to run: uuids by first appearance, objects by
    identity (kept alive, so an id is never reused)."""

    def __init__(self) -> None:
        self._uuids: dict[str, str] = {}
        self._objects: dict[int, tuple[Any, str]] = {}

    def _uuid(self, match: re.Match[str]) -> str:
        return self._uuids.setdefault(match.group(0), f"<{len(self._uuids)}>")

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return _UUID.sub(self._uuid, value)
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, BaseException):
            return ("error", type(value).__name__, str(value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return (type(value).__name__, {f.name: self(getattr(value, f.name))
                                           for f in dataclasses.fields(value)})
        kept = self._objects.setdefault(id(value), (value, f"{type(value).__name__}"
                                                           f"#{len(self._objects)}"))
        return kept[1]


class RecordingTracker(Tracker):
    """A real tracker that logs, normalised, every call an adapter makes to it."""

    def __init__(self, config: Config, sinks: list[Sink]) -> None:
        super().__init__(config, sinks)
        self.log: list[Any] = []
        self.norm = Normaliser()

    def _note(self, *entry: Any) -> None:
        self.log.append(self.norm(entry))

    # Every start and end passes here (start() and end() hand their event's fields on),
    # noted as the event object, whichever entry the adapter used.
    def start_run(self, *fields: Any, **named: Any) -> None:
        self._note("start", RunStart(*fields, **named))
        super().start_run(*fields, **named)

    def end_run(self, *fields: Any, **named: Any) -> None:
        self._note("end", RunEnd(*fields, **named))
        super().end_run(*fields, **named)

    def fold(self, run_id: Any, parent_id: Any, tags: Any, metadata: Any) -> bool:
        folded = super().fold(run_id, parent_id, tags, metadata)
        self._note("fold", run_id, parent_id, tags, metadata, folded)
        return folded

    def unfold(self, run_id: Any) -> bool:
        unfolded = super().unfold(run_id)
        self._note("unfold", run_id, unfolded)
        return unfolded

    def first_token(self, run_id: Any) -> None:
        self._note("first_token", run_id)
        super().first_token(run_id)

    def get_run(self, run_id: Any) -> Any:
        self._note("get_run", run_id)
        return super().get_run(run_id)


class NeedsRuns(Sink):
    """A sink that needs every run (nothing is folded)."""

    name = "needs-runs"

    def needs_run(self, parent: Any) -> bool:
        return True


def _tools() -> list[FunctionTool]:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def explode() -> str:
        """Always fails."""
        raise RuntimeError("tool failed")

    return [FunctionTool.from_defaults(add), FunctionTool.from_defaults(explode)]


def _engine(llm: Any = None) -> Any:
    # One document: mock embeddings tie, and ties come back in a random order.
    index = VectorStoreIndex.from_documents([Document(text="Paris is in France.")],
                                            embed_model=MockEmbedding(embed_dim=8))
    return index, index.as_query_engine(llm=llm or UsageLLM(tokens=(40, 4)))


def query() -> None:
    _, engine = _engine()
    engine.query("Where is Paris?")
    engine.query("Where is Rome?")


def mock_llm_query_and_retrieve() -> None:
    index, engine = _engine(MockLLM(max_tokens=8))
    engine.query("Where is Paris?")
    index.as_retriever().retrieve("Rome")  # not inside a query: no stage


def concurrent_queries() -> None:
    _, engine = _engine()

    async def run() -> None:
        await asyncio.gather(*(engine.aquery(f"q{i}") for i in range(3)))

    asyncio.run(run())


def llm_calls() -> None:
    llm = UsageLLM(tokens=(7, 3))
    llm.chat(USER)
    asyncio.run(llm.achat(USER))
    llm.complete("x")
    MockLLM().chat(USER)
    MockLLM().complete("x")
    UsageLLM(raw_override={"usage": "odd"}).chat(USER)
    UsageLLM(tokens=(6, 2)).chat([ChatMessage(role="system", content="You are a HARSH critic."),
                                  ChatMessage(role="user", content="review this")])


def streaming() -> None:
    llm = UsageLLM(text="one two three", tokens=(5, 3))
    list(llm.stream_chat(USER))
    list(llm.stream_complete("x"))

    async def consume() -> None:
        stream = await llm.astream_chat(USER)
        async for _ in stream:
            pass

    asyncio.run(consume())
    stream = llm.stream_chat(USER)
    next(stream)
    stream.close()


def lone_agent() -> None:
    llm = ScriptedAgentLLM(script=[("add", {"a": 2, "b": 3}), ("explode", {}), "five"],
                           tokens=(11, 2))
    agent = FunctionAgent(name="calculator", description="adds", llm=llm, tools=_tools())

    async def run() -> None:
        await agent.run(user_msg="2+3?")

    asyncio.run(run())


def streaming_agent() -> None:
    llm = ScriptedAgentLLM(script=[("add", {"a": 2, "b": 3}), "five"], tokens=(11, 2))
    agent = FunctionAgent(name="streamer", description="adds", llm=llm, tools=_tools()[:1],
                          streaming=True)

    async def run() -> None:
        await agent.run(user_msg="2+3?")

    asyncio.run(run())


def team_workflow(writer_hands_to: tuple[str, ...] = ("reviewer",)
                  ) -> tuple[AgentWorkflow, list[ScriptedAgentLLM]]:
    """researcher -> writer -> reviewer; the writer tries each of ``writer_hands_to`` in
    turn (an unknown agent is refused). The workflow and the agents' LLMs."""
    tools = _tools()
    researcher = ScriptedAgentLLM(script=[("add", {"a": 1, "b": 2}),
                                          ("handoff", {"to_agent": "writer", "reason": "r"})],
                                  tokens=(10, 1), model_name="m-research")
    writer = ScriptedAgentLLM(script=[("explode", {}), *(
        ("handoff", {"to_agent": target, "reason": "w"}) for target in writer_hands_to)],
                              tokens=(20, 2), model_name="m-write")
    reviewer = ScriptedAgentLLM(script=["approved"], tokens=(30, 3), model_name="m-review")
    workflow = AgentWorkflow(agents=[
        FunctionAgent(name="researcher", description="finds", llm=researcher, tools=[tools[0]]),
        FunctionAgent(name="writer", description="writes", llm=writer, tools=[tools[1]]),
        FunctionAgent(name="reviewer", description="reviews", llm=reviewer),
    ], root_agent="researcher")
    return workflow, [researcher, writer, reviewer]


def team() -> None:
    workflow, _ = team_workflow(("nobody", "reviewer"))

    async def run() -> None:
        for _ in range(2):
            await workflow.run(user_msg="go")

    asyncio.run(run())


def react_handoff_workflow() -> AgentWorkflow:
    """A ReAct scout hands off to a function-calling scribe, which answers "written"."""
    scout = ReActAgent(name="scout", description="scouts", llm=ScriptedAgentLLM(script=[
        'Thought: over to the scribe.\nAction: handoff\n'
        'Action Input: {"to_agent": "scribe", "reason": "found it"}'], tokens=(8, 1)))
    scribe = FunctionAgent(name="scribe", description="writes",
                           llm=ScriptedAgentLLM(script=["written"], tokens=(5, 2)))
    return AgentWorkflow(agents=[scout, scribe], root_agent="scout")


def react_handoff() -> None:
    workflow = react_handoff_workflow()

    async def run() -> None:
        await workflow.run(user_msg="go")

    asyncio.run(run())


class Pipeline(Workflow):
    @step
    async def plan(self, ev: StartEvent) -> StopEvent:
        llm = UsageLLM(tokens=(3, 1))
        return StopEvent(result=str(await llm.acomplete("plan it")))


class Outer(Workflow):
    @step
    async def delegate(self, ctx: Context, ev: StartEvent) -> StopEvent:
        inner = await Pipeline(timeout=10).run()
        return StopEvent(result=str(inner))


def workflows() -> None:
    async def run() -> None:
        await Pipeline(timeout=10).run()
        await Outer(timeout=10).run()

    asyncio.run(run())


def tool_calls() -> None:
    adder, exploder = _tools()
    adder.call(a=1, b=2)
    asyncio.run(adder.acall(a=2, b=2))
    with contextlib.suppress(RuntimeError):
        exploder.call()


def query_in_tool() -> None:
    _, engine = _engine()
    lookup = QueryEngineTool.from_defaults(engine, name="lookup", description="looks up")
    llm = ScriptedAgentLLM(script=[("lookup", {"input": "Where is Paris?"}), "France"],
                           tokens=(11, 2))
    agent = FunctionAgent(name="geo", description="answers", llm=llm, tools=[lookup])

    async def run() -> None:
        await agent.run(user_msg="Where is Paris?")

    asyncio.run(run())


def odd_calls() -> None:
    span = next(h for h in get_dispatcher().span_handlers
                if isinstance(h, llamaindex.HypertoolSpanHandler))
    event = next(h for h in get_dispatcher().event_handlers
                 if isinstance(h, llamaindex.HypertoolEventHandler))
    bound = inspect.signature(lambda: None).bind()
    span.span_exit(id_="Nobody.call-1", bound_args=bound)
    span.span_drop(id_="Nobody.call-2", bound_args=bound, err=RuntimeError("x"))
    event.handle(LLMChatEndEvent(messages=[], response=None, span_id="Ghost.chat-3"))
    span.span_enter(id_="odd", bound_args=None, instance=None, parent_id="not-seen")
    span.span_exit(id_="odd", bound_args=None, result=None)
    span.span_enter(id_="MockLLM.chat-not-a-uuid-at-all-but-long-enough-xxxx",
                    bound_args=None, instance=MockLLM(), parent_id=None)
    span.span_exit(id_="MockLLM.chat-not-a-uuid-at-all-but-long-enough-xxxx",
                   bound_args=None, result=None)


WORKLOADS: dict[str, Callable[[], None]] = {
    f.__name__: f for f in (query, mock_llm_query_and_retrieve, concurrent_queries, llm_calls,
                            streaming, lone_agent, streaming_agent, team, react_handoff,
                            workflows, tool_calls, query_in_tool, odd_calls)}
RULES: dict[str, Any] = {
    "personas": {"librarian": {"names": ["VectorIndex*"]},
                 "critic": {"prompt_keywords": ["harsh critic"]},
                 "calculator": {"tools": ["add"]}},
    "stages": {"lookup": {"nodes": ["retrieve"]}},
}


def record(workload: Callable[[], None], rules: bool = False,
           needs_runs: bool = False) -> tuple[list[Any], list[Any]]:
    """The tracker calls and the Prometheus samples of one workload, run twice (the second
    run meets warm caches)."""
    registry = CollectorRegistry()
    sinks: list[Sink] = [PrometheusSink(registry)]
    if needs_runs:
        sinks.append(NeedsRuns())
    tracker = RecordingTracker(Config.model_validate(RULES if rules else {}), sinks)
    llamaindex.attach(tracker)
    try:
        for _ in range(2):
            workload()
    finally:
        llamaindex.detach()
    samples = sorted((s.name, sorted(s.labels.items()), s.value)
                     for metric in registry.collect() for s in metric.samples
                     if not s.name.endswith("_created") and "seconds" not in s.name)
    return tracker.log, samples
