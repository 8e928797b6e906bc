"""USD cost of one LLM call, priced offline.

Prices come from the price data bundled in the installed ``genai-prices`` package (its network
update path, ``UpdatePrices``, is never started here) or from ``[prices."<model>"]`` overrides in
the config, which win (and work without genai-prices: unset cache prices are the input price,
as genai-prices has it). The tracker calls :meth:`Pricer.price` once per LLM run end, never on other
events.

genai-prices' own ``calc_price`` costs ~150 us a call (it decomposes the usage through its unit
registry every time). Token prices are linear in the token counts, so for each price set the
coefficients are measured once *with genai-prices itself* (one call per token kind), checked
against a direct call on a mixed usage, and reused: a call then costs a few microseconds and
gives the same Decimal result. Price sets that are not linear (tiered prices) are priced by a
direct genai-prices call every time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypertool_callbacks.config import PriceOverride
from hypertool_callbacks.events import Usage

_log = logging.getLogger(__name__)
_M = 1_000_000
_MAX_CACHED = 1024  # model identities remembered (hits and misses); cleared when full

# The token kinds we report, as genai-prices' usage keys: (our Usage field, genai-prices key).
# Cache reads/writes are part of input, reasoning part of output, in both.
_KINDS = (
    ("input_tokens", "input_tokens"),
    ("cache_read_tokens", "cache_read_tokens"),
    ("cache_creation_tokens", "cache_write_tokens"),
    ("output_tokens", "output_tokens"),
    ("reasoning_tokens", "output_reasoning_tokens"),
)


# Not frozen: a frozen dataclass's __init__ costs ~2 us more. Treat as read-only.
@dataclass(slots=True)
class Cost:
    """The price of one LLM call, in USD."""

    input_usd: float
    output_usd: float
    total_usd: float
    model: str  # the identity that was priced (a response's dated snapshot, or the request's)
    source: str  # "override" or "genai-prices"
    estimated: bool = False  # priced from estimated usage (``estimate_missing_usage``)


# (input part, output part) of a price, as genai-prices computes it for one usage.
_Parts = tuple[Decimal, Decimal]
_Calc = Callable[[dict[str, int]], _Parts]


class _Linear:
    """Coefficients of one price set: USD per token of each leaf kind (uncached input, cache
    read, cache write, plain output, reasoning output), split into the input and output parts,
    plus the constant part (zero usage). Zero rates are dropped."""

    __slots__ = ("base", "terms_in", "terms_out")

    def __init__(self, base: _Parts, per_mtok: tuple[_Parts, ...]) -> None:
        self.base = base
        # A million tokens' price / 10**6 is exact in Decimal, and so is rate * count: the sum
        # equals genai-prices' own (price * count / per, summed) to the last digit.
        self.terms_in = tuple((i, r / _M) for i, (r, _) in enumerate(per_mtok) if r)
        self.terms_out = tuple((i, r / _M) for i, (_, r) in enumerate(per_mtok) if r)

    def parts(self, counts: tuple[int, ...]) -> _Parts:
        inp, out = self.base
        for i, rate in self.terms_in:
            if counts[i]:
                inp += rate * counts[i]
        for i, rate in self.terms_out:
            if counts[i]:
                out += rate * counts[i]
        return inp, out


def _leaf_counts(usage: dict[str, int]) -> tuple[int, ...]:
    cached = usage["cache_read_tokens"] + usage["cache_write_tokens"]
    reasoning = usage["output_reasoning_tokens"]
    return (usage["input_tokens"] - cached, usage["cache_read_tokens"],
            usage["cache_write_tokens"], usage["output_tokens"] - reasoning, reasoning)


def _leaves(usage: Usage) -> tuple[int, ...]:
    """``_leaf_counts(_usage_dict(usage))`` without the dict (the per-call path)."""
    read, write, reasoning = (usage.cache_read_tokens, usage.cache_creation_tokens,
                              usage.reasoning_tokens)
    return (max(usage.input_tokens - read - write, 0), read, write,
            max(usage.output_tokens - reasoning, 0), reasoning)


def _fit(calc: _Calc) -> _Linear | None:
    """Measure a price set's coefficients with genai-prices; None when it is not linear."""
    zero = dict.fromkeys((key for _, key in _KINDS), 0)
    base = calc(zero)
    # One million of each leaf kind (a cache read is also an input token, and so on).
    probes = (
        {"input_tokens": _M},
        {"input_tokens": _M, "cache_read_tokens": _M},
        {"input_tokens": _M, "cache_write_tokens": _M},
        {"output_tokens": _M},
        {"output_tokens": _M, "output_reasoning_tokens": _M},
    )
    rates = []
    for probe in probes:
        got = calc({**zero, **probe})
        rates.append((got[0] - base[0], got[1] - base[1]))
    linear = _Linear(base, tuple(rates))
    check = {"input_tokens": 1_234_567, "cache_read_tokens": 234_567,
             "cache_write_tokens": 34_567, "output_tokens": 76_543,
             "output_reasoning_tokens": 6_543}
    return linear if linear.parts(_leaf_counts(check)) == calc(check) else None


@dataclass(slots=True)
class _Priced:
    """How to price one model identity: an override, or a genai-prices model."""

    model: str
    source: str
    prices: Any = None  # genai_prices ModelInfo (bundled)
    linear: _Linear | None = None  # fixed prices: an override, or a model with one linear set


_UNDECIDED: Any = object()


class Pricer:
    """Prices LLM calls; thread-safe, bounded memory.

    Example::

        pricer = Pricer({"acme-7b": PriceOverride(input_mtok=2.0, output_mtok=6.0)})
        pricer.price("acme-7b", None, None, Usage(1000, 200), when_ns)  # Cost(... total 0.0032)
    """

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = {name.lower(): o for name, o in (overrides or {}).items()}
        self._models: dict[tuple[str, str | None], _Priced | None] = {}
        # The decision per (response model, model, provider) exactly as given: one dict read
        # per call once decided (a read needs no lock).
        self._decided: dict[tuple[str | None, str | None, str | None], _Priced | None] = {}
        self._linear: dict[int, tuple[Any, _Linear | None]] = {}
        self._unpriced_logged: set[str] = set()
        self._lock = threading.Lock()

    def price(self, response_model: str | None, model: str | None, provider: str | None,
              usage: Usage, when_ns: int) -> Cost | None:
        """The cost of one call, or None when no candidate identity has a price. The response's
        model (the dated snapshot actually served) is tried before the requested one."""
        key = (response_model, model, provider)
        priced = self._decided.get(key, _UNDECIDED)
        if priced is _UNDECIDED:
            priced = self._decide(response_model, model, provider)
            with self._lock:
                if len(self._decided) >= _MAX_CACHED:
                    self._decided.clear()
                self._decided[key] = priced
        return None if priced is None else self._cost(priced, usage, when_ns)

    def _decide(self, response_model: str | None, model: str | None,
                provider: str | None) -> _Priced | None:
        for ref in dict.fromkeys(m for m in (response_model, model) if m):
            priced = self._lookup(ref, provider)
            if priced is not None:
                return priced
        name = response_model or model or "unknown"
        with self._lock:
            first = name not in self._unpriced_logged and len(self._unpriced_logged) < _MAX_CACHED
            if first:
                self._unpriced_logged.add(name)
        if first:
            _log.info("hypertool: no price for model %r (provider %r); counted in "
                      "hypertool_llm_cost_unpriced_total. Add [prices.%r] to price it.",
                      name, provider, name)
        return None

    # -- lookup ----------------------------------------------------------------------------

    def _lookup(self, ref: str, provider: str | None) -> _Priced | None:
        key = (ref.lower(), provider.lower() if provider else None)
        with self._lock:
            if key in self._models:
                return self._models[key]
        found = self._find(*key)
        with self._lock:
            if len(self._models) >= _MAX_CACHED:
                self._models.clear()
            self._models[key] = found
        return found

    def _find(self, ref: str, provider: str | None) -> _Priced | None:
        override = self._overrides.get(ref)
        if override is not None:
            return _Priced(ref, "override", linear=_override_rates(override))
        snapshot = _snapshot()
        if snapshot is None:
            return None
        try:
            # A provider we were told (LangChain's ls_provider) but genai-prices does not know
            # (a local server, say) stays unpriced: matching by name would bill a local model
            # at some cloud's price.
            _, info = snapshot.find_provider_model(ref, None, provider, None)
        except (LookupError, ValueError):
            return None
        linear = self._linear_for(info.prices) if _is_model_price(info.prices) else None
        return _Priced(ref, "genai-prices", info, linear)

    # -- pricing ---------------------------------------------------------------------------

    def _cost(self, priced: _Priced, usage: Usage, when_ns: int) -> Cost:
        linear = priced.linear
        if linear is not None:
            inp, out = linear.parts(_leaves(usage))
        else:
            info = priced.prices
            # Prices may change over time (dated or time-of-day prices): the call's start time
            # picks them.
            model_price = info.prices if _is_model_price(info.prices) else info.get_prices(
                datetime.fromtimestamp(when_ns / 1e9, UTC))
            linear = self._linear_for(model_price)
            if linear is not None:
                inp, out = linear.parts(_leaves(usage))
            else:
                inp, out = _calc_with(model_price)(_usage_dict(usage))
        return Cost(float(inp), float(out), float(inp + out), priced.model, priced.source,
                    usage.estimated)

    def _linear_for(self, model_price: Any) -> _Linear | None:
        key = id(model_price)
        with self._lock:
            cached = self._linear.get(key)
        if cached is not None and cached[0] is model_price:
            return cached[1]
        linear = None if _is_tiered(model_price) else _fit(_calc_with(model_price))
        with self._lock:
            if len(self._linear) >= _MAX_CACHED:
                self._linear.clear()
            # The price object is kept with its coefficients, so its id cannot be reused.
            self._linear[key] = (model_price, linear)
        return linear


def _override_rates(override: PriceOverride) -> _Linear:
    def usd(value: float | None) -> Decimal:
        return Decimal(str(value)) if value is not None else Decimal(0)

    zero = Decimal(0)
    inp = usd(override.input_mtok)
    read = usd(override.cache_read_mtok) if override.cache_read_mtok is not None else inp
    write = usd(override.cache_write_mtok) if override.cache_write_mtok is not None else inp
    out = usd(override.output_mtok)
    return _Linear((zero, zero), ((inp, zero), (read, zero), (write, zero), (zero, out),
                                  (zero, out)))


def _usage_dict(usage: Usage) -> dict[str, int]:
    # Inconsistent provider data (more cached than input tokens) must not make genai-prices
    # raise: cache tokens are part of the input, reasoning part of the output.
    cache_read, cache_write = usage.cache_read_tokens, usage.cache_creation_tokens
    output = max(usage.output_tokens, 0)
    return {
        "input_tokens": max(usage.input_tokens, cache_read + cache_write),
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": max(output, usage.reasoning_tokens),
        "output_reasoning_tokens": usage.reasoning_tokens,
    }


def _calc_with(model_price: Any) -> _Calc:
    from genai_prices import Usage as PriceUsage

    def calc(counts: dict[str, int]) -> _Parts:
        result = model_price.calc_price(PriceUsage(**counts))
        return result["input_price"], result["output_price"]

    return calc


def _is_model_price(value: Any) -> bool:
    from genai_prices.types import ModelPrice

    return isinstance(value, ModelPrice)


def _is_tiered(model_price: Any) -> bool:
    from genai_prices.types import TieredPrices

    return any(isinstance(v, TieredPrices) for v in vars(model_price).values())


_snapshot_missing_logged = False


def _snapshot() -> Any:
    """genai-prices' price data (bundled with the package, loaded on first use), or None."""
    global _snapshot_missing_logged
    try:
        from genai_prices.data_snapshot import get_snapshot

        return get_snapshot()
    except Exception as exc:  # not installed, or an incompatible version: overrides only
        if not _snapshot_missing_logged:
            _snapshot_missing_logged = True
            _log.warning("hypertool: genai-prices is not importable (%r); only [prices] "
                         "overrides are priced", exc)
        return None


def price_data_version() -> str | None:
    """Version of the installed genai-prices package, i.e. of the price data used."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return None
