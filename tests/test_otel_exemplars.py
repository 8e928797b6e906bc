"""Exemplars end to end: a real Prometheus (exemplar storage on) scrapes our /metrics and
returns, for the LLM request counter and latency histogram, the trace id of the run's span."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.prompts import ChatPromptTemplate
from prometheus_client import CollectorRegistry

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.exposition import serve_metrics
from hypertool_callbacks.sinks.otel import OtelSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.test_otel_support import Spans

PROMETHEUS = shutil.which("prometheus")
MODEL = "fake-messages-list-chat-model"
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus binary not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exemplars(base: str, query: str, start: float, end: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end})
    with urllib.request.urlopen(f"{base}/api/v1/query_exemplars?{params}", timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"])


def test_prometheus_returns_the_span_trace_id_as_exemplar(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    spans = Spans()
    tracker = Tracker(Config(), [OtelSink(spans.provider), PrometheusSink(registry)])
    prompt = ChatPromptTemplate.from_messages([("user", "{q}")])
    model = FakeMessagesListChatModel(responses=[reply("hello", tokens=(12, 3))])
    (prompt | model).invoke({"q": "hi"}, config={
        "callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:reviewer"]})
    trace_id = format(spans.named(f"chat {MODEL}").context.trace_id, "032x")

    server, _ = serve_metrics(port=0, registry=registry)
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: hypertool\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.server_port}']\n", encoding="utf-8")
    log = (tmp_path / "prometheus.log").open("w")
    assert PROMETHEUS is not None
    proc = subprocess.Popen(
        [PROMETHEUS, "--enable-feature=exemplar-storage", f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    started = time.time()
    counter: list[dict[str, Any]] = []
    histogram: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (counter and histogram):
            time.sleep(0.5)
            try:
                now = time.time()
                counter = _exemplars(base, "hypertool_llm_requests_total", started - 60, now)
                histogram = _exemplars(base, "hypertool_llm_request_duration_seconds_bucket",
                                       started - 60, now)
            except OSError:  # not listening yet
                continue
    finally:
        server.shutdown()
        server.server_close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    assert counter, (tmp_path / "prometheus.log").read_text()
    [series] = counter
    assert series["seriesLabels"] == {
        "__name__": "hypertool_llm_requests_total", "job": "hypertool",
        "instance": f"127.0.0.1:{server.server_port}", "model": MODEL,
        "persona": "reviewer", "status": "ok"}
    assert [e["labels"] for e in series["exemplars"]] == [{"trace_id": trace_id}]
    assert series["exemplars"][0]["value"] == "1"
    assert histogram
    assert {e["labels"]["trace_id"] for s in histogram for e in s["exemplars"]} == {trace_id}
