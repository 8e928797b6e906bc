"""LlamaIndex calls are priced like LangChain ones: the adapter fills the same neutral fields
(requested model from ``llm.metadata.model_name``, served model from the response, provider
from the integration package), the tracker prices them. Expected USD from genai-prices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from llama_index.core.base.llms.types import ChatMessage
from prometheus_client import CollectorRegistry

from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.llama_support import UsageLLM, openai_usage

COST = "hypertool_persona_cost_usd_total"
USER = [ChatMessage(role="user", content="hi")]


def _usd(model: str, inp: int, out: int, cached: int = 0) -> float:
    usage = PriceUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached)
    return float(calc_price(usage, model).total_price)


def _tracker(make_tracker: Callable[..., Tracker], registry: CollectorRegistry,
             attach_tracker: Callable[[Tracker], Tracker]) -> Tracker:
    return attach_tracker(make_tracker(sinks=[PrometheusSink(registry)]))


def test_served_model_priced_with_cache_reads_model_label_stays(
        make_tracker: Callable[..., Tracker], registry: CollectorRegistry,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    _tracker(make_tracker, registry, attach_tracker)
    raw: dict[str, Any] = {"model": "gpt-4o-2024-05-13", **openai_usage(1000, 200, cached=400)}
    llm = UsageLLM(model_name="gpt-4o", raw_override=raw)
    llm.chat(USER)  # chat -> complete inside: one call, priced once
    asyncio.run(llm.achat(USER))
    one = _usd("gpt-4o-2024-05-13", 1000, 200, 400)
    assert one != _usd("gpt-4o", 1000, 200, 400)  # the served snapshot has its own price
    assert sample(COST, persona="unknown", model="gpt-4o", usage="reported") == 2 * one


def test_streamed_completion_is_priced_from_the_last_chunk(
        make_tracker: Callable[..., Tracker], registry: CollectorRegistry,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    _tracker(make_tracker, registry, attach_tracker)
    llm = UsageLLM(model_name="gpt-4o-mini", text="one two three",
                   raw_override={"model": "gpt-4o-mini", **openai_usage(300, 30)})
    assert len(list(llm.stream_complete("hi"))) == 3
    assert sample(COST, persona="unknown", model="gpt-4o-mini", usage="reported") == _usd(
        "gpt-4o-mini", 300, 30)


def test_unknown_llamaindex_model_is_unpriced(
        make_tracker: Callable[..., Tracker], registry: CollectorRegistry,
        attach_tracker: Callable[[Tracker], Tracker], sample: Callable[..., float]) -> None:
    _tracker(make_tracker, registry, attach_tracker)
    UsageLLM().complete("hi")  # usage-llm-1 / usage-llm-1-2025: no price anywhere
    assert sample("hypertool_llm_cost_unpriced_total", persona="unknown",
                  model="usage-llm-1") == 1
    assert sample(COST, persona="unknown", model="usage-llm-1", usage="reported") == 0
