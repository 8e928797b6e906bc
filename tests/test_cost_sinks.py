"""Cost on the other sinks: the OTel LLM span's ``hypertool.cost.*`` attributes, and Langfuse
generations' ``cost_details`` through the real Langfuse SDK to a local OTLP receiver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from prometheus_client import CollectorRegistry

from hypertool_callbacks import semconv as sc
from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks import langfuse as lf
from hypertool_callbacks.sinks.otel import OtelSink
from tests.fakes import PricedFake, PricedStreamingFake, priced_reply
from tests.otlp_receiver import OTLPReceiver
from tests.test_langfuse import observations
from tests.test_otel_support import Spans, attrs


def _price(model: str, provider: str, inp: int, out: int, read: int = 0) -> Any:
    return calc_price(PriceUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=read),
                      model, provider_id=provider)


def _call(tracker: Tracker, model: Any, stream: bool = False) -> None:
    config: Any = {"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:coder"]}
    if stream:
        list(model.stream("hi", config=config))
    else:
        model.invoke("hi", config=config)


def test_llm_span_carries_the_cost(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    _call(tracker, PricedFake(responses=[priced_reply(2000, 300, cache_read=1500,
                                                      served="gpt-4o-2024-08-06")]))
    span = attrs(spans.named("chat gpt-4o"))
    price = _price("gpt-4o-2024-08-06", "openai", 2000, 300, 1500)
    assert span[sc.HT_COST_USD] == float(price.total_price)
    assert span[sc.HT_COST_INPUT_USD] == float(price.input_price)
    assert span[sc.HT_COST_OUTPUT_USD] == float(price.output_price)
    assert span[sc.HT_COST_SOURCE] == "genai-prices"
    assert sc.HT_COST_UNPRICED not in span


def test_streamed_llm_span_carries_the_cost(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    _call(tracker, PricedStreamingFake(responses=[priced_reply(400, 60)]), stream=True)
    span = attrs(spans.named("chat gpt-4o"))
    assert span[sc.HT_COST_USD] == float(_price("gpt-4o", "openai", 400, 60).total_price)


def test_unpriced_llm_span_says_so(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    tracker = make_tracker(sinks=[OtelSink(spans.provider)])
    _call(tracker, PricedFake(model="acme-9000", responses=[priced_reply(10, 5)]))
    span = attrs(spans.named("chat acme-9000"))
    assert span[sc.HT_COST_UNPRICED] is True
    assert sc.HT_COST_USD not in span


def test_override_source_is_on_the_span(make_tracker: Callable[..., Tracker]) -> None:
    spans = Spans()
    config = Config.model_validate({"prices": {"acme-7b": {"input_mtok": 2.0,
                                                           "output_mtok": 6.0}}})
    tracker = make_tracker(config=config, sinks=[OtelSink(spans.provider)])
    _call(tracker, PricedFake(model="acme-7b", responses=[priced_reply(1000, 100)]))
    span = attrs(spans.named("chat acme-7b"))
    assert (span[sc.HT_COST_USD], span[sc.HT_COST_SOURCE]) == (0.0026, "override")


@pytest.mark.usefixtures("reset_langfuse")
def test_langfuse_generation_gets_our_cost_details(public_key: str, receiver: OTLPReceiver,
                                                   registry: CollectorRegistry) -> None:
    sink = lf.LangfuseSink(registry=registry)
    try:
        tracker = Tracker(Config(), [sink])
        _call(tracker, PricedFake(model="claude-sonnet-4-5", provider="anthropic", responses=[
            priced_reply(5000, 400, cache_read=3000, served="claude-sonnet-4-5-20250929")]))
        _call(tracker, PricedFake(model="acme-9000", responses=[priced_reply(10, 5)]))
        assert sink.flush(10.0)
    finally:
        sink.shutdown(5.0)
    gens = {o.attrs["langfuse.observation.model.name"]: o for o in observations(receiver)
            if o.type == "generation"}
    price = _price("claude-sonnet-4-5-20250929", "anthropic", 5000, 400, 3000)
    assert gens["claude-sonnet-4-5-20250929"].json("cost_details") == {
        "input": float(price.input_price), "output": float(price.output_price),
        "total": float(price.total_price)}
    # No price known: no cost_details, Langfuse is left to do what it does.
    assert gens["acme-9000"].json("cost_details") is None
    assert gens["acme-9000"].json("usage_details") == {"input": 10, "output": 5, "total": 15}
