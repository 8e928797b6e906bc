"""Workloads and handler configurations the benchmark measures (see ``bench.py``).

A *workload* is something to invoke once per sample; a *configuration* says which callbacks
observe it. Every configuration is built fresh by :func:`make_case` (in the timing process, or
in a forked child under cachegrind), so no configuration sees another one's state.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from prometheus_client import CollectorRegistry

_USAGE = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}


def _model() -> FakeMessagesListChatModel:
    return FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=_USAGE)])


# -- workloads ------------------------------------------------------------------------------

Workload = tuple[Any, Any, dict[str, Any]]  # runnable, its input, the invoke config


def chain_workload() -> Workload:
    """prompt | fake chat model | parser: 4 runs per invoke (the sequence and its 3 steps).
    Every configuration passes the same persona tag (only the callbacks differ)."""
    prompt = ChatPromptTemplate.from_messages([("system", "You review code."), ("user", "{q}")])
    return prompt | _model() | StrOutputParser(), {"q": "hi"}, {"tags": ["persona:reviewer"]}


class _State(TypedDict):
    text: str


@tool
def run_tests(code: str) -> str:
    """Run the test suite on the code."""
    return "2 passed"


def graph_workload() -> Workload:
    """A 5-node LangGraph pipeline (plan, implement, test, review, release): 5 LLM calls and
    one tool call per invoke."""
    from langgraph.graph import END, START, StateGraph

    model = _model()

    def node(name: str, with_tool: bool = False) -> Callable[[_State], _State]:
        def step(state: _State) -> _State:
            reply = model.invoke([SystemMessage(f"You are the {name} step."),
                                  HumanMessage(state["text"])])
            text = str(reply.content)
            if with_tool:
                text = run_tests.invoke({"code": text})
            return {"text": text}

        return step

    graph = StateGraph(_State)
    names = ["plan", "implement", "test", "review", "release"]
    personas = ["planner", "engineer", "tester", "reviewer", "releaser"]
    for name, persona in zip(names, personas, strict=True):
        # One persona per node (as a configured app would have): five switches per invoke.
        graph.add_node(name, node(name, with_tool=name == "test"),
                       metadata={"hypertool_persona": persona})
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph.compile(name="delivery"), {"text": "build a thing"}, {}


WORKLOADS: dict[str, Callable[[], Workload]] = {
    "chain": chain_workload,
    "graph": graph_workload,
}
WORKLOAD_TITLES = {
    "chain": "prompt | fake chat | parser (4 runs per invoke)",
    "graph": "5-node LangGraph workflow (5 LLM calls + 1 tool per invoke)",
}


# -- configurations -------------------------------------------------------------------------

@dataclass
class Case:
    """One configuration on one workload: ``invoke()`` once per sample; ``enter``/``exit``
    around a batch of samples (instrumentors patch LangChain only while entered)."""

    invoke: Callable[[], Any]
    enter: Callable[[], None] = lambda: None
    exit: Callable[[], None] = lambda: None
    # Finish background work (flush exporters) so its cost is counted with the run's.
    finish: Callable[[], None] = lambda: None
    # Called between timing rounds: drop what in-memory exporters kept.
    reset: Callable[[], None] = lambda: None
    keep: list[Any] = field(default_factory=list)


class NoOp(BaseCallbackHandler):
    """LangChain's own callback dispatch with a handler that does nothing: the floor."""


class NoOpChat(NoOp):
    """The floor without LangChain's fallback for a handler that lacks
    ``on_chat_model_start``: BaseCallbackHandler's raises NotImplementedError, and LangChain
    then renders every message to text (``get_buffer_string``) and dispatches
    ``on_llm_start`` instead. Every real handler (ours included) implements it."""

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _memory_provider() -> tuple[Any, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


_PEER_PROVIDERS: dict[str, tuple[Any, Any]] = {}
_NO_LANGFUSE = {"LANGFUSE_PUBLIC_KEY": None, "LANGFUSE_SECRET_KEY": None}


def _adapter_only() -> Any:
    """A tracker whose entries do nothing: what the LangChain adapter costs alone."""
    from hypertool_callbacks.config import Config
    from hypertool_callbacks.context.tracker import Tracker

    class AdapterOnly(Tracker):
        def fold(self, *fields: Any) -> bool:
            return False

        def unfold(self, run_id: Any) -> bool:
            return False

        def start_run(self, *fields: Any, **more: Any) -> None:
            return None

        def end_run(self, *fields: Any, **more: Any) -> None:
            return None

        def first_token(self, run_id: Any) -> None:
            return None

        def get_run(self, run_id: Any) -> None:
            return None

    return AdapterOnly(Config(), [])


def _ours(runnable: Any, inputs: Any, base: dict[str, Any], sinks: Callable[[], list[Any]],
          reset: Callable[[], None] = lambda: None,
          finish: Callable[[], None] = lambda: None, tracker: Any = None) -> Case:
    from hypertool_callbacks import HypertoolCallbackHandler
    from hypertool_callbacks.config import Config
    from hypertool_callbacks.context.tracker import Tracker

    if tracker is None:
        tracker = Tracker(Config(), sinks())
    config = {**base, "callbacks": [HypertoolCallbackHandler(tracker)]}
    return Case(lambda: runnable.invoke(inputs, config=config), reset=reset, finish=finish,
                keep=[tracker])


def make_case(config: str, workload: str, langfuse_url: str | None) -> Case:
    """Build configuration ``config`` on a fresh ``workload``."""
    runnable, inputs, base = WORKLOADS[workload]()

    if config == "none":
        return Case(lambda: runnable.invoke(inputs, config=base))
    if config == "noop":
        handlers = {**base, "callbacks": [NoOp()]}
        return Case(lambda: runnable.invoke(inputs, config=handlers))
    if config == "noop-chat":
        chat_handlers = {**base, "callbacks": [NoOpChat()]}
        return Case(lambda: runnable.invoke(inputs, config=chat_handlers))
    if config == "ours-adapter":
        return _ours(runnable, inputs, base, list, tracker=_adapter_only())
    if config == "ours-tracker":
        return _ours(runnable, inputs, base, list)

    from hypertool_callbacks.sinks.prometheus import PrometheusSink

    if config == "ours-prometheus":
        return _ours(runnable, inputs, base, lambda: [PrometheusSink(CollectorRegistry())])
    if config == "ours-default":
        # As installed with every extra: OTel importable, no tracer provider set by the app,
        # no Langfuse keys. The sinks the process-wide tracker would get.
        from hypertool_callbacks.config import Config
        from hypertool_callbacks.wiring import default_sinks

        with _env(**_NO_LANGFUSE):
            return _ours(runnable, inputs, base,
                         lambda: default_sinks(Config(), CollectorRegistry()))
    if config == "ours-otel":
        from hypertool_callbacks.sinks.otel import OtelSink

        provider, exporter = _memory_provider()
        return _ours(runnable, inputs, base,
                     lambda: [OtelSink(provider), PrometheusSink(CollectorRegistry())],
                     reset=exporter.clear)
    if config == "ours-all":
        from hypertool_callbacks.sinks.langfuse import LangfuseSink
        from hypertool_callbacks.sinks.otel import OtelSink

        assert langfuse_url, "ours-all needs a Langfuse receiver"
        provider, exporter = _memory_provider()
        registry = CollectorRegistry()
        key = f"pk-ours-{uuid.uuid4().hex[:8]}"  # one client per key: a fresh one per case
        with _env(LANGFUSE_PUBLIC_KEY=key, LANGFUSE_SECRET_KEY="sk-bench",
                  LANGFUSE_BASE_URL=langfuse_url, LANGFUSE_HOST=None):
            langfuse = LangfuseSink(registry=registry)
        return _ours(runnable, inputs, base,
                     lambda: [OtelSink(provider), langfuse, PrometheusSink(registry)],
                     reset=exporter.clear, finish=lambda: langfuse.flush(30.0))
    if config == "peer-langfuse":
        from langfuse import Langfuse
        from langfuse.langchain import CallbackHandler
        from opentelemetry.sdk.trace import TracerProvider

        assert langfuse_url, "peer-langfuse needs a Langfuse receiver"
        # Its own provider: the SDK would otherwise register a global one, which would turn
        # the other configurations' no-provider OTel sink into a recording one.
        key = f"pk-peer-{uuid.uuid4().hex[:8]}"  # one client per key: a fresh one per case
        client = Langfuse(public_key=key, secret_key="sk-bench",
                          base_url=langfuse_url, tracer_provider=TracerProvider())
        handlers = {**base, "callbacks": [CallbackHandler(public_key=key)]}
        return Case(lambda: runnable.invoke(inputs, config=handlers), finish=client.flush,
                    keep=[client])
    if config in ("peer-openinference", "peer-openllmetry"):
        # One provider per instrumentor and process: OpenLLMetry keeps the provider of its
        # first instrument() for its callback handler, so a second one would see no spans.
        if config not in _PEER_PROVIDERS:
            _PEER_PROVIDERS[config] = _memory_provider()
        provider, exporter = _PEER_PROVIDERS[config]
        instrumentor: Any
        if config == "peer-openinference":
            from openinference.instrumentation.langchain import LangChainInstrumentor

            instrumentor = LangChainInstrumentor()
        else:
            from opentelemetry.instrumentation.langchain import LangchainInstrumentor

            instrumentor = LangchainInstrumentor()
        return Case(lambda: runnable.invoke(inputs, config=base),
                    enter=lambda: instrumentor.instrument(tracer_provider=provider),
                    exit=instrumentor.uninstrument, reset=exporter.clear)
    raise KeyError(config)


CONFIGS: dict[str, str] = {
    "none": "no callbacks",
    "noop": "no-op `BaseCallbackHandler` (the floor)",
    "ours-prometheus": "hypertool, Prometheus sink only",
    "ours-default": "hypertool as installed (OTel, no provider, no Langfuse keys)",
    "ours-otel": "hypertool, Prometheus + OTel recording (in-memory exporter)",
    "ours-all": "hypertool, all three sinks (Langfuse to a local receiver)",
    "peer-langfuse": "Langfuse `langfuse.langchain.CallbackHandler`",
    "peer-openinference": "OpenInference LangChain instrumentor (in-memory exporter)",
    "peer-openllmetry": "OpenLLMetry LangChain instrumentor (in-memory exporter)",
    # Where the instructions go (not in the default run). "noop-chat" is the floor without
    # LangChain's chat-to-text fallback (see NoOpChat); "ours-adapter" minus "noop-chat" is
    # the adapter, "ours-tracker" minus "ours-adapter" the tracker, "ours-prometheus" minus
    # "ours-tracker" the Prometheus sink.
    "noop-chat": "no-op handler with `on_chat_model_start` (no chat-to-text fallback)",
    "ours-adapter": "hypertool's adapter alone (tracker entries are no-ops)",
    "ours-tracker": "hypertool's adapter and tracker, no sink",
}
PARTS = ["noop-chat", "ours-adapter", "ours-tracker"]
DEFAULT_CONFIGS = [name for name in CONFIGS if name not in PARTS]
NEEDS_RECEIVER = {"ours-all", "peer-langfuse"}
PEERS = [name for name in CONFIGS if name.startswith("peer-")]
