"""Serving /metrics when the port is taken (issue 14, item 8) and the ``_created`` series (item 11).

A busy port is a clear one-line error (``MetricsPortError``, an ``OSError``) for explicit calls
and one warning for activation; the same port asked twice in one process is the same server.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from hypertool_callbacks.errors import MetricsPortError
from hypertool_callbacks.exposition import (
    WithoutCreated,
    serve_metrics,
    serve_metrics_if_free,
    stop_metrics,
)

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "hypertool-callbacks"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def counted() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("jobs", "Jobs done.", ["kind"], registry=registry).labels("a").inc(3)
    Histogram("job_seconds", "Job time.", registry=registry, buckets=(1.0,)).observe(0.5)
    return registry


def get(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
        return str(reply.read().decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_same_port_twice_is_the_same_server(counted: CollectorRegistry) -> None:
    server, thread = serve_metrics(0, registry=counted, created_series=False)
    try:
        again, again_thread = serve_metrics(server.server_port, registry=counted,
                                            created_series=False)
        assert again is server and again_thread is thread
        assert 'jobs_total{kind="a"} 3.0' in get(server.server_port)
    finally:
        stop_metrics(server)


def test_same_port_with_other_metrics_is_a_clear_error(counted: CollectorRegistry) -> None:
    server, _ = serve_metrics(0, registry=counted, created_series=False)
    try:
        with pytest.raises(MetricsPortError, match="already serves other metrics") as raised:
            serve_metrics(server.server_port, registry=CollectorRegistry(), created_series=False)
        assert raised.value.errno == errno.EADDRINUSE
    finally:
        stop_metrics(server)


def test_port_taken_by_another_program(busy_port: int) -> None:
    with pytest.raises(MetricsPortError) as raised:
        serve_metrics(busy_port, registry=CollectorRegistry(), created_series=False)
    error = raised.value
    assert isinstance(error, OSError) and error.errno == errno.EADDRINUSE
    assert str(error) == (f"cannot serve /metrics on 127.0.0.1:{busy_port}: the port is in use "
                          "(another process, or another copy of this app); pick another port, "
                          "or 0 for any free port")
    assert error.__cause__ is None and error.__suppress_context__  # one line, no OSError chain


def test_activation_warns_once_and_carries_on(busy_port: int,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks"):
        assert serve_metrics_if_free(busy_port, created_series=False) is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "the port is in use" in warnings[0].getMessage()
    assert warnings[0].exc_info is None


def test_a_stopped_server_frees_its_port(counted: CollectorRegistry) -> None:
    server, _ = serve_metrics(0, registry=counted, created_series=False)
    port = server.server_port
    stop_metrics(server)
    # Stopped by its owner the usual way too (instrumentor, app code): also released.
    second, _ = serve_metrics(port, registry=counted, created_series=False)
    assert second is not server
    second.shutdown()
    second.server_close()
    third, _ = serve_metrics(port, registry=counted, created_series=False)
    try:
        assert third is not second and "jobs_total" in get(port)
    finally:
        stop_metrics(third)


APP_SERVING_ITSELF = textwrap.dedent("""
    import sys, urllib.request
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from hypertool_callbacks import serve_metrics

    port = int(sys.argv[1])
    serve_metrics(port)  # the app serves the port its hypertool.toml also names
    usage = {"input_tokens": 4, "output_tokens": 1, "total_tokens": 5}
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)])
    model.invoke("hi", config={"tags": ["persona:scribe"]})
    serve_metrics(port)  # and again, later: still no error
    print(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
""")


def test_metrics_port_in_the_toml_plus_serve_metrics(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "hypertool.toml").write_text(f"metrics_port = {port}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    env.update(HYPERTOOL_CALLBACKS="true", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", APP_SERVING_ITSELF, str(port)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OSError" not in done.stderr and "cannot serve" not in done.stderr
    assert ('hypertool_persona_tokens_used_total{model="fake-messages-list-chat-model",'
            'persona="scribe",token_type="input"} 4.0') in done.stdout


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "demo", "--iterations", "1", "--interval", "0", "--spans", "none",
         "--scenario", "team", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_demo_moves_to_a_free_port_when_the_default_is_busy(tmp_path: Path) -> None:
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 9464))
            holder.listen()
        except OSError:
            pass  # already taken by someone else: busy either way
        done = _demo(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "port 9464 is busy; using a free port" in done.stdout
    urls = [line for line in done.stdout.splitlines() if "metrics at http://127.0.0.1:" in line]
    assert len(urls) == 1 and ":9464/" not in urls[0]


def test_demo_on_a_busy_port_asked_for_says_so(tmp_path: Path, busy_port: int) -> None:
    done = _demo(tmp_path, "--port", str(busy_port))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"hypertool-callbacks demo: cannot serve /metrics on 127.0.0.1:{busy_port}: the port is "
        "in use (another process, or another copy of this app); pick another port, or 0 for "
        "any free port")


# -- _created series (item 11) ------------------------------------------------------------------

def test_created_series_are_off_by_default(counted: CollectorRegistry,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERTOOL_METRICS_CREATED_SERIES", raising=False)
    monkeypatch.setenv("HYPERTOOL_CONFIG", os.devnull)
    assert "jobs_created" in openmetrics_latest(counted).decode()  # the registry has them
    server, _ = serve_metrics(0, registry=counted)
    try:
        body = get(server.server_port)
    finally:
        stop_metrics(server)
    assert 'jobs_total{kind="a"} 3.0' in body and "job_seconds_count 1.0" in body
    assert "_created" not in body


def test_created_series_on_request(counted: CollectorRegistry,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERTOOL_CONFIG", os.devnull)
    monkeypatch.setenv("HYPERTOOL_METRICS_CREATED_SERIES", "true")
    server, _ = serve_metrics(0, registry=counted)
    try:
        body = get(server.server_port)
        restricted = get(server.server_port, "/metrics?name[]=jobs_total")
    finally:
        stop_metrics(server)
    assert 'jobs_created{kind="a"}' in body and "job_seconds_created" in body
    assert "jobs_total" in restricted and "job_seconds" not in restricted


def test_the_view_keeps_exemplars_and_name_filters() -> None:
    registry = CollectorRegistry()
    Counter("calls", "Calls.", registry=registry).inc(exemplar={"trace_id": "abc"})
    view = WithoutCreated(registry)
    text = openmetrics_latest(view).decode()  # type: ignore[arg-type]
    assert 'calls_total 1.0 # {trace_id="abc"} 1.0' in text and "_created" not in text
    assert not list(view.restricted_registry(["other_total"]).collect())


def test_prometheus_client_switch_is_honoured(tmp_path: Path) -> None:
    """``PROMETHEUS_DISABLE_CREATED_SERIES`` (prometheus_client's process-wide switch) wins."""
    script = ("from prometheus_client import CollectorRegistry, Counter\n"
              "from hypertool_callbacks.exposition import exposed\n"
              "from prometheus_client import generate_latest\n"
              "r = CollectorRegistry(); Counter('c', 'C.', registry=r).inc()\n"
              "print(generate_latest(exposed(r, created_series=True)).decode())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_DISABLE_CREATED_SERIES": "true"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "c_total 1.0" in done.stdout and "c_created" not in done.stdout
