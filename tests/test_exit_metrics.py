"""A short script keeps its metrics (issue 14, item 9): written to a textfile for the node
exporter and/or pushed to a Pushgateway when the process exits.

The Pushgateway protocol is plain HTTP (PUT /metrics/job/<job> with the text exposition), so
a real HTTP server in the test stands in for it and records what it is sent.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.config import Config
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.sinks.exit_metrics import ExitMetricsSink
from hypertool_callbacks.sinks.prometheus import PrometheusSink
from tests.fakes import reply
from tests.test_langfuse_failures import closed_port_url

APP = Path(__file__).parent / "apps" / "plain_langgraph_app.py"
TOKENS = "hypertool_persona_tokens_used_total"
MODEL = "fake-messages-list-chat-model"


@dataclass
class Pushed:
    method: str
    path: str
    body: str


class Pushgateway:
    """Records every PUT/POST; ``hang`` reads the request and never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.pushed: list[Pushed] = []
        self._release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if hang:
                    gateway._release.wait(30)
                    return
                gateway.pushed.append(Pushed(self.command, self.path, body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Pushgateway:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def tokens(text: str) -> dict[tuple[str, str], float]:
    """(persona, token_type) -> value, parsed from an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == TOKENS:
                found[(sample.labels["persona"], sample.labels["token_type"])] = sample.value
    return found


def run_app(tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items()
             if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    child.update(env)
    done = subprocess.run(command, env=child, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done


EXPECTED = {("writer", "input"): 11, ("writer", "output"): 7, ("editor", "input"): 5,
            ("editor", "output"): 3}


def test_an_unmodified_script_leaves_a_textfile_and_a_push(tmp_path: Path) -> None:
    textfile = tmp_path / "app.prom"
    with Pushgateway() as gateway:
        done = run_app(tmp_path, [sys.executable, str(APP)], HYPERTOOL_CALLBACKS="true",
                       HYPERTOOL_METRICS_TEXTFILE=str(textfile),
                       HYPERTOOL_PUSHGATEWAY_URL=gateway.url,
                       HYPERTOOL_PUSHGATEWAY_JOB="nightly-newsroom")
    assert "'text': 'ok'" in done.stdout
    written = textfile.read_text()
    assert tokens(written) == EXPECTED
    assert "_created" not in written  # hypertool's view: what /metrics serves
    assert not list(tmp_path.glob("app.prom.*"))  # the temporary file was renamed
    assert [(p.method, p.path) for p in gateway.pushed] == [
        ("PUT", "/metrics/job/nightly-newsroom")]  # replaces the job's group: the last run's
    assert tokens(gateway.pushed[0].body) == EXPECTED


def test_multiprocess_mode_writes_the_merged_view(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "multiproc"
    metrics_dir.mkdir()
    textfile = tmp_path / "app.prom"
    env = {"HYPERTOOL_CALLBACKS": "true", "HYPERTOOL_METRICS_TEXTFILE": str(textfile),
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    run_app(tmp_path, [sys.executable, str(APP)], **env)
    assert tokens(textfile.read_text()) == EXPECTED
    run_app(tmp_path, [sys.executable, str(APP)], **env)  # a second process of the same job
    assert tokens(textfile.read_text()) == {key: 2 * value for key, value in EXPECTED.items()}


INSTRUMENTED = textwrap.dedent("""
    import runpy, sys
    import hypertool_callbacks

    hypertool_callbacks.instrument()
    runpy.run_path(sys.argv[1], run_name="__main__")
""")


def test_instrument_writes_the_textfile_at_exit_too(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text(INSTRUMENTED)
    textfile = tmp_path / "app.prom"
    run_app(tmp_path, [sys.executable, str(script), str(APP)],
            HYPERTOOL_METRICS_TEXTFILE=str(textfile))
    assert tokens(textfile.read_text()) == EXPECTED


def _tracker(registry: CollectorRegistry, sink: ExitMetricsSink) -> Tracker:
    tracker = Tracker(Config(), [PrometheusSink(registry), sink])
    model = FakeMessagesListChatModel(responses=[reply("ok", tokens=(4, 2))])
    model.invoke("q", config={"callbacks": [HypertoolCallbackHandler(tracker)],
                              "tags": ["persona:batch"]})
    return tracker


def test_push_and_textfile_from_a_tracker(registry: CollectorRegistry, tmp_path: Path) -> None:
    with Pushgateway() as gateway:
        sink = ExitMetricsSink(textfile=str(tmp_path / "m.prom"), pushgateway_url=gateway.url,
                               job="job", registry=registry)
        tracker = _tracker(registry, sink)
        tracker.shutdown(1.0)
        tracker.shutdown(1.0)  # an explicit shutdown, then the exit hook: one push
    assert len(gateway.pushed) == 1
    assert tokens(gateway.pushed[0].body) == {("batch", "input"): 4, ("batch", "output"): 2}
    assert tokens((tmp_path / "m.prom").read_text()) == {("batch", "input"): 4,
                                                         ("batch", "output"): 2}


def test_a_dead_pushgateway_costs_one_warning(registry: CollectorRegistry,
                                              caplog: pytest.LogCaptureFixture) -> None:
    url = closed_port_url()
    caplog.set_level(logging.WARNING)
    _tracker(registry, ExitMetricsSink(pushgateway_url=url, registry=registry)).shutdown(1.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"hypertool: cannot push the metrics to {url}: ")


@pytest.fixture
def silent_gateway() -> Iterator[Pushgateway]:
    with Pushgateway(hang=True) as gateway:
        yield gateway


def test_a_silent_pushgateway_is_cut_at_the_limit(registry: CollectorRegistry,
                                                  silent_gateway: Pushgateway,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sink = ExitMetricsSink(pushgateway_url=silent_gateway.url, registry=registry)
    _tracker(registry, sink).shutdown(0.3)  # returns: no exception, no hang
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "flush stopped at its 0.3 s limit: exit_metrics had not finished" in messages
    assert silent_gateway.pushed == []
