"""USD budgets per persona (``budget_usd``): same scopes and record/warn/raise behaviour as token
budgets, their own metric family. Costs are computed by genai-prices in the test."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig
from prometheus_client import CollectorRegistry

from hypertool_callbacks import CostBudgetExceeded, TokenBudgetExceeded
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from tests.fakes import PricedFake, priced_reply

MakeTracker = Callable[..., Tracker]
Sample = Callable[..., float]
LIMIT = "hypertool_persona_cost_budget_limit_usd"
REMAINING = "hypertool_persona_cost_budget_remaining_usd"
EXCEEDED = "hypertool_persona_cost_budget_exceeded_total"


@pytest.fixture
def series(registry: CollectorRegistry) -> Callable[[str], dict[tuple[str, ...], float]]:
    """Every sample of one metric, keyed by its label values."""

    def read(name: str) -> dict[tuple[str, ...], float]:
        return {tuple(s.labels.values()): s.value for metric in registry.collect()
                for s in metric.samples if s.name == name}

    return read


def _usd(inp: int, out: int) -> float:
    usage = PriceUsage(input_tokens=inp, output_tokens=out)
    return float(calc_price(usage, "gpt-4o", provider_id="openai").total_price)


def _config(usd: float, scope: str = "workflow", **keys: Any) -> Config:
    return Config.model_validate(
        {"personas": {"coder": {"budget_usd": usd, "budget_scope": scope}}, **keys})


def _chain(model: PricedFake) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "You write code."), ("user", "{q}")])
    return prompt | model


def _run(tracker: Tracker, model: PricedFake, n: int = 1) -> None:
    config: RunnableConfig = {"callbacks": [HypertoolCallbackHandler(tracker)],
                              "tags": ["persona:coder"]}
    for _ in range(n):
        _chain(model).invoke({"q": "go"}, config=config)


def test_usd_limit_is_exported_at_start_in_its_own_family(
        make_tracker: MakeTracker, sample: Sample, series: Callable[..., Any]) -> None:
    make_tracker(_config(0.5))
    assert sample(LIMIT, persona="coder", scope="workflow") == 0.5
    assert sample(REMAINING, persona="coder", scope="workflow") == 0.5
    assert series("hypertool_persona_token_budget_limit") == {}  # no token budget configured


def test_workflow_scope_each_execution_starts_full(make_tracker: MakeTracker,
                                                   sample: Sample) -> None:
    tracker = make_tracker(_config(0.5))
    model = PricedFake(responses=[priced_reply(10_000, 2000)])
    _run(tracker, model)
    assert sample(REMAINING, persona="coder", scope="workflow") == pytest.approx(
        0.5 - _usd(10_000, 2000), abs=1e-12)
    _run(tracker, model)
    assert sample(REMAINING, persona="coder", scope="workflow") == pytest.approx(
        0.5 - _usd(10_000, 2000), abs=1e-12)
    assert tracker.live_executions == 0


def test_process_scope_accumulates(make_tracker: MakeTracker, sample: Sample) -> None:
    tracker = make_tracker(_config(1.0, "process"))
    _run(tracker, PricedFake(responses=[priced_reply(10_000, 2000)]), n=3)
    assert sample(REMAINING, persona="coder", scope="process") == pytest.approx(
        1.0 - 3 * _usd(10_000, 2000), abs=1e-12)
    assert sample(EXCEEDED, persona="coder", scope="process") == 0


def test_rolling_window_forgets_old_spend(make_tracker: MakeTracker, sample: Sample) -> None:
    from hypertool_callbacks.clock import ManualClock

    clock = ManualClock()
    config = Config.model_validate({"personas": {"coder": {
        "budget_usd": 1.0, "budget_scope": "process", "budget_window_seconds": 60}}})
    tracker = make_tracker(config, clock=clock)
    model = PricedFake(responses=[priced_reply(10_000, 2000)])
    _run(tracker, model, n=2)
    assert sample(REMAINING, persona="coder", scope="process") == pytest.approx(
        1.0 - 2 * _usd(10_000, 2000), abs=1e-12)
    clock.advance(61)
    _run(tracker, model)  # the first two calls left the window
    assert sample(REMAINING, persona="coder", scope="process") == pytest.approx(
        1.0 - _usd(10_000, 2000), abs=1e-12)


def test_raise_mode_stops_the_call_before_the_model(make_tracker: MakeTracker,
                                                    sample: Sample) -> None:
    cost = _usd(100_000, 10_000)  # one call spends more than the budget
    tracker = make_tracker(_config(cost / 2, "process", on_budget_exceeded="raise"))
    model = PricedFake(responses=[priced_reply(100_000, 10_000), priced_reply(1, 1)])
    _run(tracker, model)
    with pytest.raises(CostBudgetExceeded) as info:
        _run(tracker, model)
    assert isinstance(info.value, TokenBudgetExceeded)  # code stopping on budgets stops here too
    assert (info.value.persona, info.value.limit) == ("coder", cost / 2)
    assert info.value.used == pytest.approx(cost, abs=1e-12)
    assert "USD budget of persona 'coder' is spent" in str(info.value)
    assert model.i == 1  # the second call never reached the model
    assert tracker.live_runs == 0
    assert sample(EXCEEDED, persona="coder", scope="process") == 1
    assert sample("hypertool_persona_token_budget_exceeded_total", persona="coder",
                  scope="process") == 0
    assert sample(REMAINING, persona="coder", scope="process") == pytest.approx(
        cost / 2 - cost, abs=1e-12)
    assert sample("hypertool_llm_requests_total", model="gpt-4o", persona="coder",
                  status="refused") == 1
    # The refused call cost nothing.
    assert sample("hypertool_persona_cost_usd_total", persona="coder", model="gpt-4o",
                  usage="reported") == cost


def test_warn_mode_logs_and_lets_the_call_run(make_tracker: MakeTracker, sample: Sample,
                                              caplog: pytest.LogCaptureFixture) -> None:
    tracker = make_tracker(_config(0.001, "process", on_budget_exceeded="warn"))
    model = PricedFake(responses=[priced_reply(10_000, 2000)] * 3)
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks.context.tracker"):
        _run(tracker, model, n=2)
    assert model.i == 2
    assert sample(EXCEEDED, persona="coder", scope="process") == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"USD budget of persona 'coder' is spent (${_usd(10_000, 2000):.6f} of $0.001000)"]


def test_token_and_usd_budgets_are_independent(make_tracker: MakeTracker,
                                               sample: Sample) -> None:
    config = Config.model_validate({"on_budget_exceeded": "raise", "personas": {"coder": {
        "budget_tokens": 1_000_000, "budget_usd": 0.01, "budget_scope": "process"}}})
    tracker = make_tracker(config)
    model = PricedFake(responses=[priced_reply(10_000, 2000)])
    _run(tracker, model)  # 12k tokens of 1M, but more than $0.01
    with pytest.raises(CostBudgetExceeded):
        _run(tracker, model)
    assert sample("hypertool_persona_token_budget_remaining", persona="coder",
                  scope="process") == 1_000_000 - 12_000
    assert sample("hypertool_persona_token_budget_exceeded_total", persona="coder",
                  scope="process") == 0


def test_unpriced_calls_do_not_touch_the_usd_budget(make_tracker: MakeTracker,
                                                    sample: Sample) -> None:
    tracker = make_tracker(_config(0.5, "process"))
    _run(tracker, PricedFake(model="acme-9000", responses=[priced_reply(10_000, 2000)]))
    assert sample(REMAINING, persona="coder", scope="process") == 0.5
    assert sample("hypertool_llm_cost_unpriced_total", persona="coder", model="acme-9000") == 1


@pytest.mark.parametrize("value", [0, -1.0, float("inf")])
def test_bad_usd_budget_is_a_config_error(value: float) -> None:
    from hypertool_callbacks.config import load_config
    from hypertool_callbacks.errors import ConfigError

    with pytest.raises(ConfigError, match=r"personas\.coder\.budget_usd"):
        load_config(environ={}, personas={"coder": {"budget_usd": value}})


def test_the_recorder_summary_keeps_token_budgets_next_to_usd_ones(
        make_tracker: MakeTracker) -> None:
    from hypertool_callbacks.sinks.recorder import RecorderSink

    recorder = RecorderSink()
    config = Config.model_validate({"personas": {"coder": {
        "budget_tokens": 50_000, "budget_usd": 0.5, "budget_scope": "process"}}})
    tracker = make_tracker(config, sinks=[recorder])
    _run(tracker, PricedFake(responses=[priced_reply(10_000, 2000)]))
    row = recorder.summary().row("coder")
    assert (row.budget, row.remaining) == (50_000, 38_000)
