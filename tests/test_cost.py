"""USD cost per persona and model: priced offline with genai-prices (expected values computed by
genai-prices itself on the same usage), overrides from the config, unknown models."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from langchain_core.messages import AIMessage
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import PriceOverride, load_config
from hypertool_callbacks.context.cost import Pricer
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.errors import ConfigError
from hypertool_callbacks.events import Usage
from tests.fakes import PricedFake, PricedStreamingFake, priced_reply

COST = "hypertool_persona_cost_usd_total"
UNPRICED = "hypertool_llm_cost_unpriced_total"


def _expected(model: str, provider: str | None, inp: int, out: int, cache_read: int = 0,
              cache_write: int = 0, reasoning: int = 0) -> float:
    usage = PriceUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read,
                       cache_write_tokens=cache_write, output_reasoning_tokens=reasoning)
    return float(calc_price(usage, model, provider_id=provider).total_price)


def _invoke(tracker: Tracker, model: Any, persona: str = "coder") -> None:
    model.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                               "tags": [f"persona:{persona}"]})


def test_known_model_is_priced_exactly_as_genai_prices_does(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    tracker = make_tracker()
    _invoke(tracker, PricedFake(responses=[priced_reply(1200, 300), priced_reply(800, 100)]))
    _invoke(tracker, PricedFake(responses=[priced_reply(800, 100)]))
    expected = _expected("gpt-4o", "openai", 1200, 300) + _expected("gpt-4o", "openai", 800, 100)
    assert expected > 0
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == pytest.approx(
        expected, rel=1e-12)
    assert sample(UNPRICED, persona="coder", model="gpt-4o") == 0


def test_the_served_snapshot_is_priced_and_the_model_label_stays(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    # gpt-4o-2024-05-13 is its own, pricier model: the response names what was served.
    tracker = make_tracker()
    _invoke(tracker, PricedFake(responses=[priced_reply(1000, 500, served="gpt-4o-2024-05-13")]))
    served = _expected("gpt-4o-2024-05-13", "openai", 1000, 500)
    assert served != _expected("gpt-4o", "openai", 1000, 500)
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == served


def test_cache_reads_and_writes_are_priced_once_at_their_rates(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    tracker = make_tracker()
    model = PricedFake(model="claude-sonnet-4-5", provider="anthropic", responses=[
        priced_reply(5000, 300, served="claude-sonnet-4-5-20250929", cache_read=3000,
               cache_creation=1000)])
    _invoke(tracker, model)
    expected = _expected("claude-sonnet-4-5-20250929", "anthropic", 5000, 300, 3000, 1000)
    # Cache reads are cheaper than input: were they priced twice, or as input, this would differ.
    assert expected < _expected("claude-sonnet-4-5", "anthropic", 5000, 300)
    assert sample(COST, persona="coder", model="claude-sonnet-4-5",
                  usage="reported") == expected


def test_reasoning_tokens_are_output(make_tracker: Callable[..., Tracker],
                                     sample: Callable[..., float]) -> None:
    tracker = make_tracker()
    _invoke(tracker, PricedFake(model="o3", responses=[priced_reply(1000, 2000, reasoning=1500)]))
    assert sample(COST, persona="coder", model="o3", usage="reported") == _expected(
        "o3", "openai", 1000, 2000, reasoning=1500)


def test_a_streamed_call_is_priced(make_tracker: Callable[..., Tracker],
                                   sample: Callable[..., float]) -> None:
    tracker = make_tracker()
    model = PricedStreamingFake(responses=[priced_reply(400, 60)])
    chunks = list(model.stream("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                                             "tags": ["persona:writer"]}))
    assert len(chunks) > 1
    assert sample(COST, persona="writer", model="gpt-4o", usage="reported") == _expected(
        "gpt-4o", "openai", 400, 60)


def test_unknown_model_is_counted_unpriced_and_logged_once(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float],
        registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    tracker = make_tracker()
    caplog.set_level(logging.INFO, logger="hypertool_callbacks.context.cost")
    for _ in range(3):
        _invoke(tracker, PricedFake(model="acme-9000", responses=[priced_reply(10, 5)]))
    assert sample(UNPRICED, persona="coder", model="acme-9000") == 3
    cost_series = [s for m in registry.collect() if m.name == COST.removesuffix("_total")
                   for s in m.samples]
    assert cost_series == []  # no cost sample at all, not even a zero
    lines = [r for r in caplog.records if "acme-9000" in r.getMessage()]
    assert len(lines) == 1


def test_a_provider_genai_prices_does_not_know_stays_unpriced(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    # A local server serving "gpt-4o" must not be billed at OpenAI's price.
    tracker = make_tracker()
    _invoke(tracker, PricedFake(provider="ollama", responses=[priced_reply(10, 5)]))
    assert sample(UNPRICED, persona="coder", model="gpt-4o") == 1
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == 0


def test_calls_without_usage_are_neither_priced_nor_unpriced(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    tracker = make_tracker()
    _invoke(tracker, PricedFake(responses=[AIMessage("no usage")]))
    assert sample(UNPRICED, persona="coder", model="gpt-4o") == 0
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == 0


def test_estimated_usage_is_priced_and_marked_estimated(
        make_tracker: Callable[..., Tracker], sample: Callable[..., float]) -> None:
    tracker = make_tracker(estimate_missing_usage=True)
    _invoke(tracker, PricedFake(responses=[AIMessage("four words of reply")]))
    assert sample(COST, persona="coder", model="gpt-4o", usage="estimated") > 0
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == 0


# -- overrides -----------------------------------------------------------------------------

def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hypertool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_prices_an_unknown_model(tmp_path: Path, make_tracker: Callable[..., Tracker],
                                          sample: Callable[..., float]) -> None:
    config = load_config(_config_file(tmp_path, """
        [prices."acme-7b"]
        input_mtok = 2.0
        output_mtok = 6.0
        cache_read_mtok = 0.5
    """), environ={})
    tracker = make_tracker(config=config)
    _invoke(tracker, PricedFake(model="acme-7b", provider="acme",
                                responses=[priced_reply(1000, 200, cache_read=100)]))
    expected = (Decimal(900) * 2 + Decimal(100) * Decimal("0.5") + Decimal(200) * 6) / 10**6
    assert sample(COST, persona="coder", model="acme-7b", usage="reported") == float(expected)
    assert sample(UNPRICED, persona="coder", model="acme-7b") == 0


def test_override_wins_over_shipped_prices(make_tracker: Callable[..., Tracker],
                                           sample: Callable[..., float]) -> None:
    tracker = make_tracker(prices={"gpt-4o": {"input_mtok": 1.0, "output_mtok": 1.0}})
    _invoke(tracker, PricedFake(responses=[priced_reply(1000, 1000)]))
    assert sample(COST, persona="coder", model="gpt-4o", usage="reported") == 0.002
    assert _expected("gpt-4o", "openai", 1000, 1000) != 0.002


@pytest.mark.parametrize(("body", "key"), [
    ('[prices."acme-7b"]\ninput_mtk = 2.0\n', "prices.acme-7b.input_mtk"),
    ('[prices."acme-7b"]\noutput_mtok = -1.0\n', "prices.acme-7b.output_mtok"),
    ('[prices."acme-7b"]\n', "prices.acme-7b"),
    ('[prices."acme-7b"]\ncache_read_mtok = 0.1\noutput_mtok = 1.0\n', "prices.acme-7b"),
])
def test_bad_override_fails_at_load_naming_file_and_key(tmp_path: Path, body: str,
                                                        key: str) -> None:
    path = _config_file(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(path) in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize("prices", [
    {"input_mtok": 2.0, "output_mtok": 6.0, "cache_read_mtok": 0.5},
    {"input_mtok": 3.0, "output_mtok": 15.0, "cache_read_mtok": 0.3, "cache_write_mtok": 3.75},
    {"input_mtok": 0.15, "output_mtok": 0.6},  # cache tokens at the input price
    {"output_mtok": 1.1},
])
def test_overrides_price_as_genai_prices_would(prices: dict[str, float]) -> None:
    from genai_prices.types import ModelPrice

    usage = Usage(5000, 700, cache_read_tokens=2000, cache_creation_tokens=1000,
                  reasoning_tokens=200)
    cost = Pricer({"m": PriceOverride(**prices)}).price(None, "m", None, usage, 0)
    assert cost is not None and cost.source == "override"
    reference = ModelPrice(**{k: Decimal(str(v)) for k, v in prices.items()}).calc_price(
        PriceUsage(input_tokens=5000, output_tokens=700, cache_read_tokens=2000,
                   cache_write_tokens=1000, output_reasoning_tokens=200))
    assert (cost.input_usd, cost.output_usd, cost.total_usd) == (
        float(reference["input_price"]), float(reference["output_price"]),
        float(reference["total_price"]))


# -- the pricer on its own -----------------------------------------------------------------

@pytest.mark.parametrize(("model", "provider"), [
    ("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-3-5-haiku-latest", "anthropic"),
    ("gpt-4o", "azure"), ("claude-sonnet-4-5-20250929", None),
    ("gemini-2.5-pro", "google_genai"),  # tiered: above 200k input tokens a higher rate
])
@pytest.mark.parametrize("counts", [(1000, 100, 0, 0, 0), (250_000, 4000, 60_000, 0, 0),
                                    (3000, 900, 1000, 500, 300)])
def test_pricer_matches_genai_prices(model: str, provider: str | None,
                                     counts: tuple[int, int, int, int, int]) -> None:
    inp, out, read, write, reasoning = counts
    cost = Pricer().price(None, model, provider, Usage(inp, out, cache_read_tokens=read,
                                                       cache_creation_tokens=write,
                                                       reasoning_tokens=reasoning), 0)
    assert cost is not None
    usage = PriceUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=read,
                       cache_write_tokens=write, output_reasoning_tokens=reasoning)
    reference = calc_price(usage, model, provider_id=provider)
    assert (cost.input_usd, cost.output_usd, cost.total_usd) == (
        float(reference.input_price), float(reference.output_price),
        float(reference.total_price))


def test_inconsistent_usage_does_not_raise() -> None:
    # More cached than input tokens (a provider bug): priced, not an exception.
    cost = Pricer().price(None, "gpt-4o", "openai", Usage(10, 5, cache_read_tokens=50), 0)
    assert cost is not None and cost.total_usd > 0


def test_status_names_the_price_data_and_the_overrides(tmp_path: Path) -> None:
    import io

    from hypertool_callbacks.context.cost import price_data_version
    from hypertool_callbacks.status import report

    _config_file(tmp_path, '[prices."acme-7b"]\ninput_mtok = 1.0\n[prices.b]\noutput_mtok = 1.0\n')
    out = io.StringIO()
    assert report(out, environ={}, cwd=tmp_path) == 0
    line = next(x for x in out.getvalue().splitlines() if x.startswith("pricing"))
    assert line.split(None, 1)[1] == (f"genai-prices {price_data_version()} (its bundled "
                                      "data, offline); overrides: acme-7b, b")
