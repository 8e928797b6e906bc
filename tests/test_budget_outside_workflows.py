"""Issue 14 item 16: LLM calls made outside any workflow (a bare ``llm.invoke``) and budgets.

With ``budget_scope = "workflow"`` each workflow execution starts with the full budget. A bare
call is no workflow: every such call of a persona counts against one running total in the
process (per LangGraph thread when the call carries a ``thread_id``), so the budget can trip.
Real langchain-core chat models (fakes reporting usage), no graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import TokenBudgetExceeded
from tests.fakes import ToolCallingFake, reply
from tests.test_budget import EXCEEDED, MODEL, REMAINING, Sample, budget

MakeTracker = Callable[..., Tracker]
REQUESTS = "hypertool_llm_requests_total"


def _model(calls: int = 5) -> ToolCallingFake:
    return ToolCallingFake(responses=[reply(f"r{i}", tokens=(30, 10)) for i in range(calls)])


def _bare(model: ToolCallingFake, handler: HypertoolCallbackHandler, **config: Any) -> Any:
    cfg: RunnableConfig = {"callbacks": [handler], "tags": ["persona:coder"], **config}
    return model.invoke("write it", config=cfg)


def test_bare_calls_share_one_running_total_and_trip_the_budget(
        make_tracker: MakeTracker, sample: Sample) -> None:
    """Budget 100, 40 tokens a call: calls 1-3 start with 0, 40, 80 used; call 4 starts with
    120 used -> over budget (recorded, the call goes ahead)."""
    tracker = make_tracker(budget(100))
    handler = HypertoolCallbackHandler(tracker)
    model = _model()
    for _ in range(3):
        _bare(model, handler)
    assert sample(REMAINING, persona="coder", scope="workflow") == -20
    assert sample(EXCEEDED, persona="coder", scope="workflow") == 0
    _bare(model, handler)
    assert sample(EXCEEDED, persona="coder", scope="workflow") == 1
    assert sample(REMAINING, persona="coder", scope="workflow") == -60
    assert sample(REQUESTS, model=MODEL, persona="coder", status="ok") == 4
    assert tracker.live_runs == 0


def test_bare_calls_are_refused_once_the_running_total_is_spent_in_raise_mode(
        make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(budget(100, on_budget_exceeded="raise"))
    handler = HypertoolCallbackHandler(tracker)
    model = _model()
    for _ in range(3):
        _bare(model, handler)
    with pytest.raises(TokenBudgetExceeded) as caught:
        _bare(model, handler)
    assert (caught.value.persona, caught.value.limit, caught.value.used) == ("coder", 100, 120)
    assert sample(REQUESTS, model=MODEL, persona="coder", status="refused") == 1
    assert sample(REQUESTS, model=MODEL, persona="coder", status="ok") == 3
    assert tracker.live_runs == 0


def test_workflows_still_start_full_and_do_not_touch_the_bare_total(
        make_tracker: MakeTracker, sample: Sample) -> None:
    """A chain (``prompt | model``) is a workflow: its calls count for that execution only.
    Three chain runs of 40 tokens each never trip a budget of 50, and leave the total of bare
    calls at 0: the first two bare calls start with 0 and 40 used, the third with 80."""
    tracker = make_tracker(budget(50, on_budget_exceeded="raise"))
    handler = HypertoolCallbackHandler(tracker)
    model = _model(6)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model
    for _ in range(3):
        chain.invoke({"q": "x"}, config={"callbacks": [handler], "tags": ["persona:coder"]})
    _bare(model, handler)
    _bare(model, handler)
    with pytest.raises(TokenBudgetExceeded) as caught:
        _bare(model, handler)
    assert caught.value.used == 80
    assert sample(REQUESTS, model=MODEL, persona="coder", status="ok") == 5


def test_bare_calls_of_a_thread_count_per_thread(make_tracker: MakeTracker,
                                                 sample: Sample) -> None:
    """A bare call carrying a LangGraph ``thread_id`` counts for that thread's execution."""
    tracker = make_tracker(budget(100, on_budget_exceeded="raise"))
    handler = HypertoolCallbackHandler(tracker)
    model = _model(8)
    for _ in range(3):
        _bare(model, handler, metadata={"thread_id": "t1"})
    for _ in range(3):  # another thread, and calls without one, start from 0
        _bare(model, handler, metadata={"thread_id": "t2"})
    with pytest.raises(TokenBudgetExceeded):
        _bare(model, handler, metadata={"thread_id": "t1"})
    _bare(model, handler)
    assert sample(REQUESTS, model=MODEL, persona="coder", status="refused") == 1


def test_process_scope_is_unchanged_for_bare_calls(make_tracker: MakeTracker,
                                                   sample: Sample) -> None:
    tracker = make_tracker(budget(100, scope="process", on_budget_exceeded="raise"))
    handler = HypertoolCallbackHandler(tracker)
    model = _model(6)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model
    chain.invoke({"q": "x"}, config={"callbacks": [handler], "tags": ["persona:coder"]})
    _bare(model, handler)
    _bare(model, handler)  # 80 used in the process, chain and bare calls together
    with pytest.raises(TokenBudgetExceeded):
        _bare(model, handler)
