"""Bad input to the LlamaIndex adapter: nothing reaches the app, everything odd is counted."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.llms import ChatMessage, ChatResponse

from hypertool_callbacks.adapters import llamaindex
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.recorder import RecorderSink
from tests import llama_workloads
from tests.llama_support import UsageLLM

USER = [ChatMessage(role="user", content="hi")]
DROPPED = "hypertool_events_dropped_total"
INTERNAL = "hypertool_internal_errors_total"
CALLS = "hypertool_llm_requests_total"
TOKENS = "hypertool_persona_tokens_used_total"
MISSING = "hypertool_llm_usage_missing_total"


@pytest.fixture
def tracker(make_tracker: Callable[..., Tracker],
            attach_tracker: Callable[[Tracker], Tracker]) -> Tracker:
    return attach_tracker(make_tracker())


def _handlers() -> tuple[Any, Any]:
    span = next(h for h in get_dispatcher().span_handlers
                if isinstance(h, llamaindex.HypertoolSpanHandler))
    event = next(h for h in get_dispatcher().event_handlers
                 if isinstance(h, llamaindex.HypertoolEventHandler))
    return span, event


def _bound() -> inspect.BoundArguments:
    return inspect.signature(lambda: None).bind()


def test_unknown_span_ids_and_end_events_are_counted(
        tracker: Tracker, sample: Callable[..., float]) -> None:
    span, event = _handlers()
    span.span_exit(id_="Nobody.call-1", bound_args=_bound())
    span.span_drop(id_="Nobody.call-2", bound_args=_bound(), err=RuntimeError("x"))
    event.handle(LLMChatEndEvent(messages=[], response=None, span_id="Ghost.chat-3"))
    assert sample(DROPPED, reason="unknown_run") == 3
    assert tracker.live_runs == 0


def test_missing_fields_never_raise(tracker: Tracker, sample: Callable[..., float]) -> None:
    span, event = _handlers()
    # No bound arguments, no instance, no parent, an id without a uuid, events without fields.
    span.span_enter(id_="odd", bound_args=None, instance=None, parent_id="not-seen")
    span.span_exit(id_="odd", bound_args=None, result=None)
    event.handle(SimpleNamespace())
    event.handle(None)
    assert sample(INTERNAL, component="llamaindex.handle") == 0  # ignored, not failed
    assert tracker.live_runs == 0


class _Usage:  # a provider SDK object, attributes only
    def __init__(self) -> None:
        self.input_tokens, self.output_tokens = 12, 5
        self.cache_read_input_tokens, self.cache_creation_input_tokens = 3, 1


@pytest.mark.parametrize(("raw", "expected"), [
    ("just a string", None),
    (["a", "list"], None),
    (42, None),
    ({"usage": "not a mapping"}, None),
    ({"usage": {"prompt_tokens": "many"}}, None),
    (SimpleNamespace(usage=_Usage(), model="claude-x"), (16, 5)),
])
def test_odd_raw_values_are_safe(tracker: Tracker, sample: Callable[..., float],
                                 raw: Any, expected: tuple[int, int] | None) -> None:
    llm = UsageLLM(raw_override=raw)
    assert llm.chat(USER).message.content == "the answer"
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1
    if expected is None:
        assert sample(MISSING, model="usage-llm-1", persona="unknown") == 1
    else:
        assert sample(TOKENS, persona="unknown", model="usage-llm-1",
                      token_type="input") == expected[0]
        assert sample("hypertool_persona_token_details_total", persona="unknown",
                      model="usage-llm-1", detail="cache_read") == 3
    assert sample(INTERNAL, component="llamaindex.span_exit") == 0


def test_handler_registered_twice_counts_once(
        tracker: Tracker, sample: Callable[..., float]) -> None:
    root = get_dispatcher()
    span, event = _handlers()
    root.span_handlers = [*root.span_handlers, span]
    root.event_handlers = [*root.event_handlers, event]
    try:
        UsageLLM(tokens=(4, 2)).chat(USER)
    finally:
        llamaindex.detach()  # removes every copy
    assert span not in root.span_handlers and event not in root.event_handlers
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 4
    assert sample(DROPPED, reason="duplicate_run") >= 1
    assert tracker.live_runs == 0


def _recorded_query(tracker: Tracker, twice: bool) -> list[tuple[str | None, str, str, str]]:
    recorder = RecorderSink()
    tracker.add_sink(recorder)
    root = get_dispatcher()
    span, event = _handlers()
    if twice:
        root.span_handlers = [*root.span_handlers, span]
        root.event_handlers = [*root.event_handlers, event]
    try:
        llama_workloads.query()
    finally:
        if twice:  # back to one copy each
            root.span_handlers = [h for h in root.span_handlers if h is not span] + [span]
            root.event_handlers = [h for h in root.event_handlers if h is not event] + [event]
        tracker.remove_sink(recorder)
    return [(None if r.parent is None else execution.runs[r.parent].name, r.kind, r.name,
             r.status) for execution in recorder.executions for r in execution.runs]


def test_handler_registered_twice_makes_the_same_runs(
        tracker: Tracker, sample: Callable[..., float]) -> None:
    # Each span is heard twice: counted as a duplicate, its second exit ignored. A span that
    # is not a run (transparent) used to become a root run of its own named "duplicate".
    once = _recorded_query(tracker, twice=False)
    assert once and sample(DROPPED, reason="duplicate_run") == 0
    twice = _recorded_query(tracker, twice=True)
    assert twice == once
    assert sample(DROPPED, reason="duplicate_run") >= len(once)
    assert sample(DROPPED, reason="unknown_run") == 0
    assert tracker.live_runs == 0


@pytest.fixture
def isolated_dispatcher() -> Iterator[Any]:
    dispatcher = get_dispatcher(UsageLLM.__module__)
    dispatcher.propagate = False
    yield dispatcher
    dispatcher.propagate = True


def test_dispatcher_that_does_not_propagate(
        tracker: Tracker, sample: Callable[..., float], isolated_dispatcher: Any) -> None:
    # UsageLLM.complete's span stays in its module's dispatcher; the completion events (sent
    # by another module's dispatcher) still arrive, naming a span we never saw.
    response = UsageLLM(tokens=(6, 1)).chat(USER)
    assert isinstance(response, ChatResponse) and response.message.content == "the answer"
    assert sample(CALLS, model="usage-llm-1", persona="unknown", status="ok") == 1
    assert sample(TOKENS, persona="unknown", model="usage-llm-1", token_type="input") == 6
    assert sample(DROPPED, reason="unknown_run") == 1
    assert tracker.live_runs == 0


def test_a_failing_tracker_is_counted_not_raised(
        tracker: Tracker, sample: Callable[..., float], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*fields: Any) -> None:
        raise RuntimeError("tracker bug")

    monkeypatch.setattr(tracker, "start", broken)
    monkeypatch.setattr(tracker, "start_run", broken)
    assert UsageLLM().chat(USER).message.content == "the answer"
    assert sample(INTERNAL, component="llamaindex.span_enter") >= 1
