"""prometheus_client multiprocess mode and the ``/metrics`` endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.catalog import CATALOG
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.exposition import serve_metrics
from tests.fakes import reply

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fake-messages-list-chat-model"

# A worker process: the env var is set before anything imports prometheus_client.
WORKER = textwrap.dedent("""
    import json, sys
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage

    import hypertool_callbacks
    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler

    tokens_in, tokens_out = json.loads(sys.argv[1])
    config = hypertool_callbacks.Config.model_validate({
        "personas": {"coder": {"budget_tokens": 100, "budget_scope": "process"}},
        "otel": {"enabled": False}, "langfuse": {"enabled": False},
    })
    tracker = hypertool_callbacks.build_tracker(config)  # the default registry
    usage = {"input_tokens": tokens_in, "output_tokens": tokens_out,
             "total_tokens": tokens_in + tokens_out}
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
    model.invoke("hi", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                               "tags": ["persona:coder"]})
    print(tracker.live_runs)
""")


def run_worker(directory: Path, cwd: Path, tokens: tuple[int, int]) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "OTEL_", "LANGFUSE_", "PROMETHEUS_"))}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(tokens)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prom"
    directory.mkdir()
    return directory


def merged(directory: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def test_worker_metrics_are_merged_across_processes(multiproc_dir: Path,
                                                    tmp_path: Path) -> None:
    run_worker(multiproc_dir, tmp_path, (30, 4))
    run_worker(multiproc_dir, tmp_path, (50, 6))
    assert len(list(multiproc_dir.glob("*.db"))) >= 2
    registry = merged(multiproc_dir)
    tokens = "hypertool_persona_tokens_used_total"
    labels = {"persona": "coder", "model": MODEL}
    assert registry.get_sample_value(tokens, {**labels, "token_type": "input"}) == 80
    assert registry.get_sample_value(tokens, {**labels, "token_type": "output"}) == 10
    assert registry.get_sample_value("hypertool_llm_requests_total",
                                     {**labels, "status": "ok"}) == 2
    # Gauges merge by their catalog mode: the limit is the max, remaining the latest write.
    assert registry.get_sample_value("hypertool_persona_token_budget_limit",
                                     {"persona": "coder", "scope": "process"}) == 100
    assert registry.get_sample_value("hypertool_persona_token_budget_remaining",
                                     {"persona": "coder", "scope": "process"}) == 44


@pytest.fixture
def fetch() -> Iterator[Callable[..., tuple[str, str]]]:
    """``fetch(registry=None)``: serve on a free port, GET /metrics; (bound address, body)."""
    servers = []

    def get(registry: CollectorRegistry | None = None) -> tuple[str, str]:
        server, _ = serve_metrics(port=0, registry=registry)
        servers.append(server)
        host, port = server.server_address[:2]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply_:
            assert reply_.status == 200
            return str(host), reply_.read().decode()

    yield get
    for server in servers:
        server.shutdown()
        server.server_close()


def test_serve_metrics_on_loopback(make_tracker: Callable[..., Tracker],
                                   registry: CollectorRegistry,
                                   fetch: Callable[..., tuple[str, str]]) -> None:
    tracker = make_tracker()
    FakeMessagesListChatModel(responses=[reply("ok", tokens=(5, 2))]).invoke(
        "hi", config={"callbacks": [HypertoolCallbackHandler(tracker)], "tags": ["persona:p"]})
    host, body = fetch(registry)
    assert host == "127.0.0.1"
    assert (f'hypertool_persona_tokens_used_total{{model="{MODEL}",persona="p",'
            'token_type="input"} 5.0') in body.splitlines()
    for spec in CATALOG:
        assert f"# TYPE {spec.name} {spec.kind}" in body, spec.name


def test_serve_metrics_merges_multiprocess_data(multiproc_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                fetch: Callable[..., tuple[str, str]]) -> None:
    run_worker(multiproc_dir, tmp_path, (7, 3))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
    host, body = fetch()
    assert host == "127.0.0.1"
    assert (f'hypertool_persona_tokens_used_total{{model="{MODEL}",persona="coder",'
            'token_type="input"} 7.0') in body.splitlines()
