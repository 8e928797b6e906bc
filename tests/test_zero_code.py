"""No change to application code: an untouched script, run in a subprocess, gets metrics.

Metrics cross the process boundary through prometheus_client's multiprocess mode: the child
writes them to PROMETHEUS_MULTIPROC_DIR and the test reads them back.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

APP = Path(__file__).parent / "apps" / "plain_langgraph_app.py"
CLI = Path(sys.executable).parent / "hypertool-callbacks"


def _run(command: list[str], tmp_path: Path, **env: str) -> tuple[CollectorRegistry, str]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    child_env.update(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), **env)
    done = subprocess.run(command, env=child_env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    return registry, done.stdout


def _tokens(registry: CollectorRegistry, persona: str, token_type: str) -> float | None:
    return registry.get_sample_value("hypertool_persona_tokens_used_total", {
        "persona": persona, "model": "fake-messages-list-chat-model", "token_type": token_type})


def test_env_var_instruments_an_unmodified_script(tmp_path: Path) -> None:
    registry, stdout = _run([sys.executable, str(APP)], tmp_path, HYPERTOOL_CALLBACKS="true")
    assert "'text': 'ok'" in stdout  # the app's own behaviour is unchanged
    assert _tokens(registry, "writer", "input") == 11
    assert _tokens(registry, "editor", "output") == 3
    assert registry.get_sample_value("hypertool_persona_switches_total", {
        "from_persona": "writer", "to_persona": "editor", "workflow": "newsroom"}) == 1


def test_launcher_instruments_an_unmodified_script(tmp_path: Path) -> None:
    registry, _ = _run([str(CLI), "run", sys.executable, str(APP)], tmp_path)
    assert _tokens(registry, "writer", "output") == 7
    assert registry.get_sample_value("hypertool_workflow_stage_duration_seconds_count", {
        "workflow": "newsroom", "stage": "edit", "persona": "editor"}) == 1


def test_nothing_happens_without_the_env_var(tmp_path: Path) -> None:
    registry, _ = _run([sys.executable, str(APP)], tmp_path)
    assert _tokens(registry, "writer", "input") is None


def test_bad_config_leaves_the_app_running_uninstrumented(tmp_path: Path) -> None:
    (tmp_path / "hypertool.toml").write_text('[personas.writer]\nbudjet_tokens = 5\n')
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERTOOL_")}
    env.update(HYPERTOOL_CALLBACKS="true", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    done = subprocess.run([sys.executable, str(APP)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "'text': 'ok'" in done.stdout
    assert "personas.writer.budjet_tokens" in done.stderr  # the key is named, loudly


def test_launcher_serves_metrics_for_an_unmodified_script(tmp_path: Path) -> None:
    """README: ``HYPERTOOL_METRICS_PORT=9464 hypertool-callbacks run python app.py``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    env["HYPERTOOL_METRICS_PORT"] = str(port)
    app = Path(__file__).parent / "apps" / "slow_app.py"
    child = subprocess.Popen([str(CLI), "run", sys.executable, str(app), "20"], env=env,
                             cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "called"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        child.kill()
        child.wait(timeout=10)
    expected = ('hypertool_persona_tokens_used_total{model="fake-messages-list-chat-model",'
                'persona="scribe",token_type="input"} 21.0')
    assert expected in body.decode()
