"""``hypertool-callbacks status``: resolved settings with their origin, and real backends
(a served /metrics, a local OTLP receiver, a closed port) probed for reachability."""

from __future__ import annotations

import io
import socket
from pathlib import Path

from prometheus_client import CollectorRegistry

from hypertool_callbacks.exposition import serve_metrics, stop_metrics
from hypertool_callbacks.status import report
from tests.otlp_receiver import OTLPReceiver


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(tmp_path: Path, **environ: str) -> tuple[int, dict[str, str], str]:
    out = io.StringIO()
    code = report(out, environ=environ, cwd=tmp_path)
    text = out.getvalue()
    settings = {}
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("  " * 2):
            parts = line.split()
            settings[parts[0]] = line
    return code, settings, text


def test_each_setting_says_where_it_comes_from(tmp_path: Path) -> None:
    (tmp_path / "hypertool.toml").write_text(
        'label_cap = 20\n[personas.reviewer]\nnames = ["rev*"]\n[otel]\ncapture_content = true\n')
    code, settings, text = _status(tmp_path, HYPERTOOL_CALLBACKS="off",
                                   HYPERTOOL_ON_BUDGET_EXCEEDED="warn")
    assert code == 0, text
    assert "activation  HYPERTOOL_CALLBACKS='off': off" in text
    assert f"config      {tmp_path / 'hypertool.toml'}" in text
    assert settings["label_cap"].split()[1:] == ["20", "file"]
    assert settings["on_budget_exceeded"].split()[1:] == [
        "warn", "env", "HYPERTOOL_ON_BUDGET_EXCEEDED"]
    assert settings["otel.capture_content"].split()[1:] == ["True", "file"]
    assert settings["personas"].split()[1:] == ["reviewer", "file"]
    assert settings["max_runs"].split()[1:] == ["10000", "default"]
    assert "langchain (installed)" in text


def test_backends_are_probed_for_real(tmp_path: Path) -> None:
    server, _ = serve_metrics(0, registry=CollectorRegistry())
    try:
        with OTLPReceiver() as receiver:
            _, settings, text = _status(
                tmp_path, HYPERTOOL_METRICS_PORT=str(server.server_port),
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, LANGFUSE_PUBLIC_KEY="pk",
                LANGFUSE_SECRET_KEY="sk", LANGFUSE_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    finally:
        stop_metrics(server)
    assert f"127.0.0.1:{server.server_port}: serving" in settings["prometheus"], text
    assert settings["otel"].endswith(f"{receiver.url}: reachable"), text
    assert "UNREACHABLE (Connection refused)" in settings["langfuse"], text
    assert "sk" not in settings["langfuse"].split()  # no secret printed


def test_free_metrics_port_and_unset_switch(tmp_path: Path) -> None:
    port = _closed_port()
    _, settings, text = _status(tmp_path, HYPERTOOL_METRICS_PORT=str(port))
    assert f"127.0.0.1:{port}: free (activation will serve" in settings["prometheus"]
    assert "HYPERTOOL_CALLBACKS=unset: off" in text
    assert "config      no file (defaults)" in text


def test_an_invalid_configuration_is_reported_with_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "hypertool.toml").write_text("lable_cap = 20\n")
    code, _, text = _status(tmp_path)
    assert code == 1
    assert "config      INVALID: invalid hypertool configuration in" in text
    assert "lable_cap: Extra inputs are not permitted (did you mean 'label_cap'?)" in text


def test_the_cli_command_runs_in_a_fresh_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERTOOL_", "OTEL_"))}
    done = subprocess.run([str(Path(sys.executable).parent / "hypertool-callbacks"), "status"],
                          env={**env, "HYPERTOOL_CALLBACKS": "1"}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "activation  HYPERTOOL_CALLBACKS='1': on" in done.stdout
    assert "  prometheus  not served on activation (metrics_port unset" in done.stdout
