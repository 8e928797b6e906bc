"""Runs that inherit everything and that no sink needs (a prompt template, a parser) are folded
into their parent: no events for them, the same metrics, nothing left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply

Sample = Callable[..., float]


class Seen(Sink):
    """Records the names of the runs it is told about; needs runs only if asked to."""

    def __init__(self, needs: bool) -> None:
        self.needs = needs
        self.ended: list[str] = []

    def needs_run(self, parent: Run) -> bool:
        return self.needs

    def on_run_end(self, run: Run) -> None:
        self.ended.append(run.name)


def _chain() -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "You review code."), ("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("ok", tokens=(10, 5))])
    return prompt | model | StrOutputParser()


def test_prompt_and_parser_fold_when_no_sink_needs_them(
    make_tracker: Callable[..., Tracker], registry: Any, sample: Sample,
) -> None:
    seen = Seen(needs=False)
    tracker = make_tracker(sinks=[PrometheusSink(registry), seen])
    handler = HypertoolCallbackHandler(tracker)
    for _ in range(3):
        _chain().invoke({"q": "hi"}, config={"callbacks": [handler],
                                             "tags": ["persona:reviewer"]})

    assert seen.ended == ["FakeMessagesListChatModel", "RunnableSequence"] * 3
    assert sample("hypertool_persona_tokens_used_total", persona="reviewer",
                  model="fake-messages-list-chat-model", token_type="input") == 30
    assert sample("hypertool_events_dropped_total", reason="unknown_run") == 0
    assert sample("hypertool_events_dropped_total", reason="unknown_parent") == 0
    assert tracker.live_runs == 0 and not tracker._aliases


def test_a_sink_that_needs_every_run_sees_every_run(
    make_tracker: Callable[..., Tracker], registry: Any,
) -> None:
    seen = Seen(needs=True)
    handler = HypertoolCallbackHandler(make_tracker(sinks=[PrometheusSink(registry), seen]))
    _chain().invoke({"q": "hi"}, config={"callbacks": [handler]})
    assert seen.ended == ["ChatPromptTemplate", "FakeMessagesListChatModel",
                          "StrOutputParser", "RunnableSequence"]


def test_a_run_saying_something_new_is_not_folded(
    make_tracker: Callable[..., Tracker], registry: Any, sample: Sample,
) -> None:
    seen = Seen(needs=False)
    handler = HypertoolCallbackHandler(make_tracker(sinks=[PrometheusSink(registry), seen]))
    model = FakeMessagesListChatModel(responses=[reply("ok", tokens=(10, 5))])
    inner = (RunnableLambda(lambda x: x) | model).with_config(
        metadata={"hypertool_persona": "coder"})
    (RunnableLambda(lambda x: x) | inner).invoke("hi", config={"callbacks": [handler],
                                                              "tags": ["persona:planner"]})
    # The inner sequence names a persona of its own: started, ended, and it switches.
    assert "RunnableSequence" in seen.ended[:-1]
    assert sample("hypertool_persona_switches_total", from_persona="planner",
                  to_persona="coder", workflow="RunnableSequence") == 1
    assert sample("hypertool_persona_tokens_used_total", persona="coder",
                  model="fake-messages-list-chat-model", token_type="input") == 10


def test_folded_runs_that_never_end_are_forgotten_with_their_parent(
    make_tracker: Callable[..., Tracker],
) -> None:
    from uuid import uuid4

    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    root, child = uuid4(), uuid4()
    handler.on_chain_start({}, {}, run_id=root, name="root", tags=[], metadata={})
    handler.on_chain_start({}, {}, run_id=child, parent_run_id=root, name="x", tags=[],
                           metadata={})
    assert tracker._aliases  # folded: the tracker sink needs no run
    handler.on_chain_end({}, run_id=root)
    tracker.evict_now()
    assert not tracker._aliases and tracker.live_runs == 0


def test_a_child_of_a_folded_run_whose_parent_ended_is_a_root(
    make_tracker: Callable[..., Tracker], sample: Sample,
) -> None:
    """Events out of order: the folded run outlives its parent; its child is not attached to
    a run that has ended."""
    from uuid import uuid4

    tracker = make_tracker()
    handler = HypertoolCallbackHandler(tracker)
    root, folded, late = uuid4(), uuid4(), uuid4()
    handler.on_chain_start({}, {}, run_id=root, name="root", tags=[], metadata={})
    handler.on_chain_start({}, {}, run_id=folded, parent_run_id=root, name="x", tags=[],
                           metadata={})
    handler.on_chain_end({}, run_id=root)
    handler.on_chain_start({}, {}, run_id=late, parent_run_id=folded, name="late", tags=[],
                           metadata={})
    assert sample("hypertool_events_dropped_total", reason="unknown_parent") == 1
    run = tracker.get_run(late)
    assert run is not None and run.parent is None
    handler.on_chain_end({}, run_id=late)
    handler.on_chain_end({}, run_id=folded)
    assert tracker.live_runs == 0
