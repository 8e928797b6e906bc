"""What pricing an LLM call costs: ``python benchmarks/bench_cost.py``.

Pricing runs once per LLM call, when it ends (never on other events), so it does not move the
per-event figures of ``bench.py``. Reported here:

- the first call of a process (imports genai-prices and loads its bundled data), in a fresh
  interpreter;
- one call to ``Pricer.price`` for a known model (cached coefficients), a tiered one
  (genai-prices called directly every time), an override, an unknown model (cached miss), next
  to genai-prices' own ``calc_price`` on the same usage;
- an LLM run start + end through the tracker and the Prometheus sink, priced vs unpriced.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from itertools import count

from prometheus_client import CollectorRegistry

from hypertool_callbacks.config import Config, PriceOverride
from hypertool_callbacks.context.cost import Pricer, price_data_version
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.events import RunEnd, RunKind, RunStart, Usage
from hypertool_callbacks.sinks.prometheus import PrometheusSink

USAGE = Usage(2000, 300, 2300, cache_read_tokens=1200)
COLD = """
import time
t = time.perf_counter()
from hypertool_callbacks.context.cost import Pricer
from hypertool_callbacks.events import Usage
t1 = time.perf_counter()
Pricer().price(None, "gpt-4o", "openai", Usage(2000, 300, 2300), 0)
t2 = time.perf_counter()
Pricer().price(None, "claude-sonnet-4-5", "anthropic", Usage(2000, 300, 2300), 0)
t3 = time.perf_counter()
print((t2 - t1) * 1e3, (t3 - t2) * 1e3)
"""


def _us(fn: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    """Median microseconds per call."""
    fn()
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def _tracker_case(model: str, provider: str, usage: Usage | None) -> Callable[[], None]:
    tracker = Tracker(Config(), [PrometheusSink(CollectorRegistry())])
    ids = count()

    def call() -> None:
        run_id = next(ids)
        tracker.start(RunStart(run_id, None, RunKind.LLM, "llm", ("persona:coder",),
                               model=model, provider=provider))
        tracker.end(RunEnd(run_id, usage=usage))

    return call


def main() -> None:
    print(f"genai-prices {price_data_version()}")
    cold = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                          check=True).stdout.split()
    print(f"first priced call of a process: {float(cold[0]):.0f} ms "
          f"(import + load the price data); a second model's first call: {float(cold[1]):.1f} ms")

    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    pricer = Pricer({"acme-7b": PriceOverride(input_mtok=2.0, output_mtok=6.0,
                                              cache_read_mtok=0.5)})
    price_usage = PriceUsage(input_tokens=2000, output_tokens=300, cache_read_tokens=1200)
    long_usage = Usage(300_000, 1000, 301_000)
    rows = [
        ("genai_prices.calc_price (gpt-4o)",
         lambda: calc_price(price_usage, "gpt-4o", provider_id="openai")),
        ("Pricer.price gpt-4o (cached coefficients)",
         lambda: pricer.price(None, "gpt-4o", "openai", USAGE, 0)),
        ("Pricer.price served snapshot gpt-4o-2024-08-06",
         lambda: pricer.price("gpt-4o-2024-08-06", "gpt-4o", "openai", USAGE, 0)),
        ("Pricer.price gemini-2.5-pro (tiered: genai-prices each call)",
         lambda: pricer.price(None, "gemini-2.5-pro", "google_genai", long_usage, 0)),
        ("Pricer.price override acme-7b",
         lambda: pricer.price(None, "acme-7b", None, USAGE, 0)),
        ("Pricer.price unknown model (cached miss)",
         lambda: pricer.price(None, "acme-9000", "openai", USAGE, 0)),
    ]
    print("\nper call, median of 7 x 2000:")
    for name, fn in rows:
        print(f"  {name:<62} {_us(fn):7.1f} us")

    print("\nLLM run start + end through the tracker and the Prometheus sink:")
    cases = [
        ("priced (gpt-4o, openai)", _tracker_case("gpt-4o", "openai", USAGE)),
        ("unpriced (provider unknown to genai-prices)", _tracker_case("gpt-4o", "ollama", USAGE)),
        ("no usage reported (nothing to price)", _tracker_case("gpt-4o", "openai", None)),
    ]
    for name, fn in cases:
        print(f"  {name:<62} {_us(fn, number=1000):7.1f} us")


if __name__ == "__main__":
    main()
