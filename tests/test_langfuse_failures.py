"""A dead, silent or refusing Langfuse server: the app carries on, failures are counted,
flush and exit are bounded.

Bounds on elapsed time are deliberately generous ("did not block"), never tight timings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.runnables import RunnableLambda
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.langfuse import LangfuseSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.langfuse_support import langfuse_env
from tests.otlp_receiver import OTLPReceiver
from tests.polling import wait_for

FAILURES = "hypertool_langfuse_export_failures_total"
REPO = Path(__file__).resolve().parent.parent
NOT_BLOCKED = 2.0  # seconds: an invoke, or a bounded call, returning later than this blocked


pytestmark = pytest.mark.usefixtures("reset_langfuse")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def invoke_timed(handler: HypertoolCallbackHandler, answer: str) -> float:
    model = FakeMessagesListChatModel(responses=[reply(answer)])
    chain = RunnableLambda(lambda q: q, name="prep") | model
    started = time.monotonic()
    result = chain.invoke("q", config={"callbacks": [handler]})
    elapsed = time.monotonic() - started
    assert result.content == answer
    return elapsed


@pytest.mark.parametrize(("mode", "reason"), [
    (401, "http_401"), (503, "http_503"), ("hang", "timeout"), ("closed", "connection")])
def test_broken_server_does_not_block_and_is_counted(
        mode: str | int, reason: str, monkeypatch: pytest.MonkeyPatch,
        registry: CollectorRegistry, sample: Callable[..., float]) -> None:
    with OTLPReceiver("ok" if mode == "closed" else mode) as receiver:
        langfuse_env(monkeypatch, closed_port_url() if mode == "closed" else receiver.url)
        sink = LangfuseSink(registry=registry, flush_timeout=0.5)
        handler = HypertoolCallbackHandler(Tracker(sinks=[sink, PrometheusSink(registry)]))

        assert invoke_timed(handler, "fine") < NOT_BLOCKED
        started = time.monotonic()
        sink.flush(0.5)  # starts the export; returns at its bound even if the export hangs
        assert time.monotonic() - started < NOT_BLOCKED
        # One batch, one failure, once the exporter gives up (after its retries).
        assert wait_for(lambda: sample(FAILURES, reason=reason) == 1.0, timeout=15.0,
                        interval=0.05)
        assert sample(FAILURES, reason=reason) == 1.0
        assert sum(sample(FAILURES, reason=r) for r in (
            "http_401", "http_503", "timeout", "connection", "error", "other")) == 1.0
        # The app keeps working while Langfuse is down.
        assert invoke_timed(handler, "still fine") < NOT_BLOCKED

        if isinstance(mode, int):  # the server recovers: later traces arrive
            receiver.mode = "ok"
            assert sink.flush(10.0)
            assert len(receiver.spans()) == 3  # the second invoke's batch (the first is lost)

        started = time.monotonic()
        sink.shutdown(0.5)
        assert time.monotonic() - started < NOT_BLOCKED


def test_shutdown_returns_within_its_timeout_while_export_hangs(
        monkeypatch: pytest.MonkeyPatch, registry: CollectorRegistry) -> None:
    with OTLPReceiver("hang") as receiver:
        langfuse_env(monkeypatch, receiver.url, timeout="4")  # a 4 s export
        sink = LangfuseSink(registry=registry)
        handler = HypertoolCallbackHandler(Tracker(sinks=[sink]))
        assert invoke_timed(handler, "ok") < NOT_BLOCKED
        started = time.monotonic()
        sink.shutdown(0.5)
        assert time.monotonic() - started < NOT_BLOCKED


EXIT_SCRIPT = textwrap.dedent("""
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage

    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
    from hypertool_callbacks.context.tracker import Tracker
    from hypertool_callbacks.sinks.langfuse import LangfuseSink

    sink = LangfuseSink(flush_timeout=1.0)
    handler = HypertoolCallbackHandler(Tracker(sinks=[sink]))
    model = FakeMessagesListChatModel(responses=[AIMessage("ok")])
    print(model.invoke("q", config={"callbacks": [handler]}).content, flush=True)
""")


def test_process_exit_is_bounded_by_flush_timeout(tmp_path: Path) -> None:
    """Without the sink's exit hook, the SDK's own would flush for the 30 s export timeout."""
    script = tmp_path / "app.py"
    script.write_text(EXIT_SCRIPT)
    with OTLPReceiver("hang") as receiver:
        env = {**os.environ, "LANGFUSE_PUBLIC_KEY": "pk-exit", "LANGFUSE_SECRET_KEY": "sk",
               "LANGFUSE_BASE_URL": receiver.url, "LANGFUSE_TIMEOUT": "30",
               "PYTHONPATH": str(REPO)}
        process = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ok"  # the app ran
            ran = time.monotonic()
            process.wait(timeout=25)
            exit_seconds = time.monotonic() - ran
        finally:
            process.kill()
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert exit_seconds < 1.0 + 4.0  # flush_timeout plus generous interpreter teardown
