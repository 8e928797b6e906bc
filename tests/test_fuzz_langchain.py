"""Property-based: the LangChain adapter driven by random callback sequences.

Out of order, duplicate ends, unknown and None ids, errors (control flow and cancellations
included), odd metadata and tag types, unicode and huge strings, several threads at once. In
strict mode our own bugs raise instead of being swallowed, so any exception escaping here is a
bug of ours. After every run has ended, no run is left; label values stay within their caps.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from prometheus_client import CollectorRegistry

from hypertool_callbacks import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.labels import MAX_LABEL_LENGTH
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink

CAP = 3
IDS = [uuid.UUID(int=i + 1) for i in range(4)]
HUGE = "x" * 200_000


class ParentCommand(Exception):  # LangGraph's names: the adapter matches them by name
    pass


class GraphInterrupt(Exception):
    pass


class Command:
    def __init__(self, goto: Any) -> None:
        self.goto = goto
        self.update = None


text = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "\x00\n\t", "é🙂" * 40, HUGE]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text,
                   st.uuids())
odd = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3),
    st.tuples(inner), st.frozensets(st.integers(), max_size=2)), max_leaves=4)
tag = st.one_of(
    st.builds(lambda k, v: f"{k}:{v}", st.sampled_from(["persona", "stage", "workflow", "gate",
                                                        "graph:step", "seq:step"]), text),
    text, st.integers(), st.none())
META_KEYS = ["langgraph_node", "langgraph_checkpoint_ns", "lc_agent_name", "thread_id",
             "hypertool_persona", "hypertool_stage", "hypertool_workflow", "hypertool_gate",
             "ls_model_name", "ls_provider", "langfuse_user_id", "langfuse_session_id",
             "langfuse_tags", "langgraph_step"]
metadata = st.one_of(st.none(), odd, st.dictionaries(st.sampled_from(META_KEYS), odd,
                                                     max_size=6))
tags = st.one_of(st.none(), odd, st.lists(tag, max_size=5))
# Mostly ids of the small pool (so ends meet live runs), sometimes None or never-seen ones.
_pool = st.sampled_from(IDS)
run_id = st.one_of(_pool, _pool, _pool, st.none(), st.uuids())
parent = st.one_of(st.none(), _pool, _pool, st.uuids())
messages = st.one_of(
    st.just([[SystemMessage("You review code."), HumanMessage("hi")]]),
    st.builds(lambda t: [[SystemMessage(t)]], text), odd)


def _result(content: Any, usage: Any) -> Any:
    try:
        message = AIMessage(content=content if isinstance(content, str) else str(content),
                            usage_metadata=usage)
    except Exception:  # an invalid usage shape: LangChain's own validation refused it
        message = AIMessage(content="ok")
    return LLMResult(generations=[[ChatGeneration(message=message)]])


outputs = st.one_of(
    odd, st.dictionaries(st.sampled_from(["verdict", "passed", "messages", "output"]), odd,
                         min_size=1, max_size=3),
    st.builds(Command, st.one_of(text, st.lists(text, max_size=2), odd)),
    st.builds(_result, text, st.one_of(st.none(), st.fixed_dictionaries({
        "input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6),
        "total_tokens": st.integers(0, 2 * 10**6)}))),
)
errors = st.sampled_from([ValueError("boom"), ParentCommand(Command("review")),
                          GraphInterrupt(), GeneratorExit(), RuntimeError(HUGE)])

start_kind = st.sampled_from(["chain", "chat", "llm", "tool", "retriever"])
end_kind = st.sampled_from(["chain", "llm", "tool", "retriever"])
op = st.one_of(
    st.tuples(st.just("start"), start_kind, run_id, parent, tags, metadata,
              st.one_of(st.none(), text, odd), messages),
    st.tuples(st.just("end"), end_kind, run_id, outputs),
    st.tuples(st.just("error"), end_kind, run_id, errors),
    st.tuples(st.just("token"), run_id, text),
)


def _tracker() -> tuple[Tracker, CollectorRegistry]:
    registry = CollectorRegistry()
    config = Config.model_validate({
        "strict": True, "label_cap": CAP,
        "personas": {"reviewer": {"names": ["review*"], "budget_tokens": 50}},
        "gates": {"review": {"nodes": ["review"]}},
    })
    return Tracker(config, [PrometheusSink(registry)]), registry


def _apply(handler: HypertoolCallbackHandler, step: tuple[Any, ...]) -> None:
    action = step[0]
    if action == "start":
        _, kind, rid, pid, tag_list, meta, name, msgs = step
        common: dict[str, Any] = {"run_id": rid, "parent_run_id": pid, "tags": tag_list,
                                  "metadata": meta, "name": name}
        serialized = {"name": name, "id": ["x", name]} if isinstance(name, str) else name
        if kind == "chain":
            handler.on_chain_start(serialized, {"q": name}, **common)
        elif kind == "chat":
            handler.on_chat_model_start(serialized, msgs, invocation_params=meta, **common)
        elif kind == "llm":
            handler.on_llm_start(serialized, [name], **common)
        elif kind == "tool":
            handler.on_tool_start(serialized, str(name), tool_call_id=name, **common)
        else:
            handler.on_retriever_start(serialized, str(name), **common)
    elif action in ("end", "error"):
        _, kind, rid, value = step
        method = getattr(handler, f"on_{kind}_{action}")
        method(value, run_id=rid)
    else:
        handler.on_llm_new_token(step[2], run_id=step[1])


def _end_everything(handler: HypertoolCallbackHandler, tracker: Tracker,
                    started: list[Any]) -> None:
    for rid in reversed(started):  # innermost first, as LangChain ends them
        handler.on_chain_end(None, run_id=rid)
    assert tracker.live_runs == 0


def _check_labels(registry: CollectorRegistry) -> None:
    seen: dict[str, set[str]] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            for key, value in sample.labels.items():
                seen.setdefault(key, set()).add(value)
    caps = {"persona": CAP + 3, "from_persona": CAP + 3, "to_persona": CAP + 3,
            "stage": CAP + 2, "workflow": CAP + 2, "model": CAP + 2, "tool": 4 * CAP + 2,
            "gate": CAP + 2}  # + unknown/other (+ the configured persona/gate)
    for key, values in seen.items():
        assert len(values) <= caps.get(key, 50), (key, values)
        for value in values:
            assert len(value) <= MAX_LABEL_LENGTH and value.isprintable(), (key, value)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(op, min_size=4, max_size=40))
def test_random_callback_sequences_never_raise_and_leave_nothing(steps: list[Any]) -> None:
    tracker, registry = _tracker()
    handler = HypertoolCallbackHandler(tracker)
    for step in steps:
        _apply(handler, step)
    started = [s[2] for s in steps if s[0] == "start"]
    _end_everything(handler, tracker, started)
    _check_labels(registry)
    assert registry.get_sample_value("hypertool_internal_errors_total") is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(tags, metadata, st.one_of(st.none(), text)), min_size=1,
                max_size=6))
def test_concurrent_threads_on_one_tracker(shapes: list[Any]) -> None:
    tracker, registry = _tracker()
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        handler = HypertoolCallbackHandler(tracker)
        try:
            for _ in range(20):
                root, child, llm = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                tag_list, meta, name = shapes[index % len(shapes)]
                handler.on_chain_start(None, {}, run_id=root, tags=tag_list, metadata=meta,
                                       name=name)
                handler.on_chain_start(None, {}, run_id=child, parent_run_id=root,
                                       tags=tag_list, metadata=meta, name=f"review-{index}")
                handler.on_chat_model_start(None, [[HumanMessage("hi")]], run_id=llm,
                                            parent_run_id=child, metadata=meta)
                handler.on_llm_end(_result("ok", {"input_tokens": 3, "output_tokens": 2,
                                                  "total_tokens": 5}), run_id=llm)
                handler.on_chain_end({"verdict": "pass"}, run_id=child)
                handler.on_chain_end(None, run_id=root)
        except BaseException as exc:  # collected: an assertion in a thread would be lost
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert tracker.live_runs == 0
    _check_labels(registry)
    requests = sum(s.value for m in registry.collect() if m.name == "hypertool_llm_requests"
                   for s in m.samples if s.name == "hypertool_llm_requests_total")
    assert requests == 4 * 20
