"""The extras are optional: without OpenTelemetry, Langfuse or even LangChain installed, the
package imports, builds its tracker (Prometheus only) and never fails the app.

Each case runs in a subprocess whose import system refuses the missing packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {blocked!r}

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
""")


def _run(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "LANGFUSE_", "OTEL_", "PROMETHEUS_"))}
    script = BLOCKER.format(blocked=sorted(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("blocked", [{"opentelemetry"}, {"langfuse"},
                                     {"opentelemetry", "langfuse"}])
def test_without_a_backend_extra_metrics_still_work(blocked: set[str]) -> None:
    done = _run(blocked, """
        from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
        from langchain_core.messages import AIMessage
        from prometheus_client import CollectorRegistry
        import hypertool_callbacks as ht

        registry = CollectorRegistry()
        tracker = ht.build_tracker(registry=registry)
        usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
        model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
        model.invoke("hi", config={"callbacks": [ht.HypertoolCallbackHandler(tracker)],
                                   "tags": ["persona:p"]})
        print(sorted(type(s).__name__ for s in tracker.sinks))
        print(registry.get_sample_value("hypertool_persona_tokens_used_total", {
            "persona": "p", "model": "fake-messages-list-chat-model", "token_type": "input"}))
    """)
    assert done.returncode == 0, done.stderr
    sinks, tokens = done.stdout.strip().splitlines()[-2:]
    assert "PrometheusSink" in sinks
    assert ("OtelSink" in sinks) == ("opentelemetry" not in blocked)
    assert "LangfuseSink" not in sinks  # no keys in this environment either
    assert tokens == "3.0"


def test_without_langchain_the_package_imports_and_the_env_hook_is_a_no_op() -> None:
    done = _run({"langchain_core", "langchain", "langgraph"}, """
        import hypertool_callbacks as ht
        print(ht.register_env_hook(), ht.load_config().label_cap, ht.__version__)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "50", "0.1.0"]


def test_without_langchain_instrument_works_and_says_there_is_nothing_to_observe() -> None:
    done = _run({"langchain_core", "langchain", "langgraph", "llama_index"}, """
        import sys
        import hypertool_callbacks as ht
        from hypertool_callbacks import frameworks
        tracker = ht.instrument()
        print(type(tracker).__name__, sorted(frameworks.attached()))
        ht.uninstrument()
        print("langchain_core" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Tracker", "[]", "False"]
    assert "no supported framework is installed (langchain_core" in done.stderr


def test_without_langchain_instrument_observes_llamaindex() -> None:
    """Issue 16: ``instrument()`` in a venv with llama-index-core and no langchain-core."""
    done = _run({"langchain_core", "langchain", "langgraph"}, """
        import sys
        import hypertool_callbacks as ht
        from hypertool_callbacks import frameworks
        from prometheus_client import CollectorRegistry
        from llama_index.core.llms import MockLLM
        registry = CollectorRegistry()
        ht.instrument(ht.build_tracker(registry=registry))
        MockLLM().complete("hi")
        ht.uninstrument()
        MockLLM().complete("not observed")
        print(sorted(frameworks.attached()), "langchain_core" in sys.modules,
              registry.get_sample_value("hypertool_llm_requests_total",
                                        {"model": "unknown", "persona": "unknown", "status": "ok"}))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False", "1.0"]


def test_instrument_before_the_framework_is_imported_attaches_on_import() -> None:
    done = _run(set(), """
        import sys
        import hypertool_callbacks as ht
        from hypertool_callbacks import frameworks
        from prometheus_client import CollectorRegistry
        registry = CollectorRegistry()
        ht.instrument(ht.build_tracker(registry=registry))
        print("langchain_core" in sys.modules, sorted(frameworks.attached()))
        from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
        from langchain_core.messages import AIMessage
        usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
        model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
        model.invoke("hi", config={"tags": ["persona:p"]})
        print(sorted(frameworks.attached()), registry.get_sample_value(
            "hypertool_persona_tokens_used_total",
            {"persona": "p", "model": "fake-messages-list-chat-model", "token_type": "input"}))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "[]", "['langchain']", "3.0"]


def test_without_genai_prices_overrides_still_price_and_nothing_fails() -> None:
    done = _run({"genai_prices"}, """
        import logging
        from prometheus_client import CollectorRegistry
        import hypertool_callbacks as ht
        from hypertool_callbacks.events import RunEnd, RunKind, RunStart, Usage

        logging.basicConfig(level=logging.WARNING)
        registry = CollectorRegistry()
        config = ht.load_config(environ={}, prices={"acme-7b": {"input_mtok": 1.0}})
        tracker = ht.build_tracker(config, registry=registry)
        for run_id, model in (("a", "acme-7b"), ("b", "gpt-4o")):
            tracker.start(RunStart(run_id, None, RunKind.LLM, "llm", ("persona:p",),
                                   model=model, provider="openai"))
            tracker.end(RunEnd(run_id, usage=Usage(1_000_000, 0, 1_000_000)))
        print(registry.get_sample_value("hypertool_persona_cost_usd_total", {
            "persona": "p", "model": "acme-7b", "usage": "reported"}))
        print(registry.get_sample_value("hypertool_llm_cost_unpriced_total", {
            "persona": "p", "model": "gpt-4o"}))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["1.0", "1.0"]
    assert done.stderr.count("genai-prices is not importable") == 1
