"""The resolver's fast path (a run that adds nothing to its parent takes the parent's values in
one step) must resolve exactly what the full resolution does, for every kind of app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker
from tests.agents import role_graph
from tests.fakes import reply
from tests.test_multiagent import SCENARIOS, run


class _Resolved(Sink):
    """What resolution gave each run, in start order (execution keys by first appearance:
    they hold random run ids)."""

    name = "resolved"

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self._executions: dict[str, int] = {}

    def on_run_start(self, run: Run) -> None:
        execution = self._executions.setdefault(run.execution, len(self._executions))
        self.seen.append((run.kind, run.name, run.persona, run.persona_source, run.stage,
                          run.stage_source, run.stage_run.name if run.stage_run else None,
                          run.workflow, run.agent, run.is_node, run.gate,
                          run.extra.get("gate_scope"), execution, run.thread_id))


def _chain(tags: list[str]) -> Callable[[HypertoolCallbackHandler], Any]:
    prompt = ChatPromptTemplate.from_messages([("system", "You review code."), ("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("ok", tokens=(10, 5))])
    chain = prompt | model | StrOutputParser()
    return lambda h: chain.invoke({"q": "hi"}, config={"callbacks": [h], "tags": tags})


CASES: dict[str, Callable[[HypertoolCallbackHandler], Any]] = {
    **SCENARIOS,
    "chain-no-persona": _chain([]),
    "chain-persona-tag": _chain(["persona:reviewer", "stage:review"]),
    "node-personas": lambda h: run(role_graph(), h),
    "node-personas-tagged": lambda h: run(role_graph(), h, tags=["persona:solo"]),
}


def _resolved(make_tracker: Callable[..., Tracker], case: str, full: bool) -> list[Any]:
    sink = _Resolved()
    tracker = make_tracker(sinks=[sink])
    if full:
        # With rules configured the fast path is off; with none, rule matching adds nothing.
        tracker.resolver.has_rules = True
    CASES[case](HypertoolCallbackHandler(tracker))
    return sink.seen


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_resolves_what_the_full_resolution_does(
        case: str, make_tracker: Callable[..., Tracker]) -> None:
    fast = _resolved(make_tracker, case, full=False)
    assert len(fast) > 3
    assert fast == _resolved(make_tracker, case, full=True)
