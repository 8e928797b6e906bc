"""What the handler costs per run: ``python benchmarks/bench_overhead.py [--n 3000]``.

Measures a prompt | fake chat model | parser chain (4 runs per invoke) with no callbacks, a
no-op handler (LangChain's own callback floor), and hypertool's handler with the Prometheus
sink, and reports microseconds per invoke and the handler's cost per run above the floor.
Numbers, not assertions: performance targets live here, never in unit tests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.prometheus import PrometheusSink

RUNS_PER_INVOKE = 4  # sequence, prompt, chat model, parser


class NoOp(BaseCallbackHandler):
    run_inline = True


def _chain() -> Any:
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
    prompt = ChatPromptTemplate.from_messages([("system", "You review code."), ("user", "{q}")])
    return prompt | model | StrOutputParser()


def _time(invoke: Callable[[], Any], n: int, repeats: int = 5) -> float:
    for _ in range(200):
        invoke()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            invoke()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    chain = _chain()
    tracker = Tracker(Config(), [PrometheusSink(CollectorRegistry())])
    ours = HypertoolCallbackHandler(tracker)
    noop = NoOp()
    cases = {
        "no callbacks": lambda: chain.invoke({"q": "hi"}),
        "no-op handler": lambda: chain.invoke({"q": "hi"}, config={"callbacks": [noop]}),
        "hypertool (prometheus)": lambda: chain.invoke(
            {"q": "hi"}, config={"callbacks": [ours], "tags": ["persona:reviewer"]}),
    }
    try:  # the OTel sink on an SDK provider that records spans but exports nowhere
        from opentelemetry.sdk.trace import TracerProvider

        from hypertool_callbacks.sinks.otel import OtelSink

        traced = HypertoolCallbackHandler(Tracker(Config(), [
            OtelSink(TracerProvider()), PrometheusSink(CollectorRegistry())]))
        cases["hypertool (otel + prometheus)"] = lambda: chain.invoke(
            {"q": "hi"}, config={"callbacks": [traced], "tags": ["persona:reviewer"]})
    except ImportError:
        pass
    results = {name: _time(fn, args.n) for name, fn in cases.items()}
    print(f"{'case':28} {'us/invoke':>10}")
    for name, value in results.items():
        print(f"{name:28} {value:10.1f}")
    for name in [n for n in results if n.startswith("hypertool")]:
        extra = results[name] - results["no-op handler"]
        print(f"{name} above the no-op floor: {extra:.1f} us/invoke, "
              f"{extra / RUNS_PER_INVOKE:.1f} us/run")


if __name__ == "__main__":
    main()
