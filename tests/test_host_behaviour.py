"""Our handler next to other handlers: they see every run, whether we are attached or not.

Regression for langchain-ai/langchain#39633: ``AsyncCallbackManager.on_llm_start`` skips every
non-inline handler when an inline one is present, so an inline hypertool handler used to hide
async completion-model runs from tracers, ``collect_runs`` and ``astream_events``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.tracers.context import collect_runs

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.context.tracker import Tracker


class ThreadSink(Sink):
    """Records on which thread each LLM run started and ended."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def on_run_start(self, run: Run) -> None:
        if run.kind == "llm":
            self.threads.append(threading.get_ident())

    def on_run_end(self, run: Run) -> None:
        if run.kind == "llm":
            self.threads.append(threading.get_ident())


class Counting(BaseCallbackHandler):
    """A plain (non-inline) handler, like most tracers."""

    def __init__(self) -> None:
        self.starts = 0
        self.ends = 0

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.fixture
def threads_and_handler(make_tracker: Callable[..., Tracker],
                        ) -> tuple[ThreadSink, HypertoolCallbackHandler]:
    sink = ThreadSink()
    return sink, HypertoolCallbackHandler(make_tracker(sinks=[sink]))


def test_async_completion_runs_reach_collect_runs(
    threads_and_handler: tuple[ThreadSink, HypertoolCallbackHandler],
    sample: Callable[..., float],
) -> None:
    sink, ours = threads_and_handler

    async def main() -> int:
        with collect_runs() as collector:
            await FakeListLLM(responses=["x"] * 3).abatch(
                ["a", "b", "c"], config={"callbacks": [ours]})
        return len(collector.traced_runs)

    assert asyncio.run(main()) == 3
    assert len(sink.threads) == 6  # we saw them too


@pytest.mark.parametrize("model", [FakeListLLM(responses=["x"]),
                                   FakeListChatModel(responses=["x"])],
                         ids=["completion", "chat"])
def test_async_runs_stay_inline_and_reach_plain_handlers(
    threads_and_handler: tuple[ThreadSink, HypertoolCallbackHandler], model: Any,
) -> None:
    sink, ours = threads_and_handler
    plain = Counting()

    async def main() -> int:
        await model.ainvoke("hi", config={"callbacks": [ours, plain]})
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert (plain.starts, plain.ends) == (1, 1)
    # Inline on both paths: on the event loop's thread, not hopping to a thread pool.
    assert sink.threads == [loop_thread, loop_thread]


def test_sync_runs_reach_plain_handlers(
    threads_and_handler: tuple[ThreadSink, HypertoolCallbackHandler],
) -> None:
    sink, ours = threads_and_handler
    plain = Counting()
    FakeListLLM(responses=["x"] * 2).batch(["a", "b"], config={"callbacks": [ours, plain]})
    assert (plain.starts, plain.ends) == (2, 2)
    assert len(sink.threads) == 4


def test_env_var_activation_keeps_other_tracers_whole(tmp_path: Any) -> None:
    """The issue's reproduction, as a user runs it: an unmodified script, env var set."""
    script = tmp_path / "app.py"
    script.write_text(
        "import asyncio\n"
        "from langchain_core.language_models import FakeListLLM\n"
        "from langchain_core.tracers.context import collect_runs\n"
        "async def main():\n"
        "    with collect_runs() as cb:\n"
        "        await FakeListLLM(responses=['x'] * 3).abatch(['a', 'b', 'c'])\n"
        "    print(len(cb.traced_runs))\n"
        "asyncio.run(main())\n",
        encoding="utf-8",
    )
    env = {"HYPERTOOL_CALLBACKS": "true", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_no_langfuse_keys_no_langfuse_sdk_in_the_app(tmp_path: Any) -> None:
    """Without keys the SDK is never imported: its lazily built models broke freezegun users
    (langchain-core's own suite: PydanticSchemaGenerationError for FakeDatetime)."""
    code = ("import sys\n"
            "from hypertool_callbacks.wiring import get_tracker\n"
            "tracker = get_tracker()\n"
            "print(sorted(s.name for s in tracker.sinks), 'langfuse' in sys.modules)\n")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    sinks, imported = out.stdout.rsplit(" ", 1)
    assert "prometheus" in sinks
    assert imported.strip() == "False"
