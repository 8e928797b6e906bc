"""No change to a LlamaIndex app: the env var, the launcher and ``opentelemetry-instrument``
observe an unmodified script in a subprocess, with LangChain hidden (as in a venv that has only
llama-index-core) and with both frameworks installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.test_zero_code import _run as run_app

APPS = Path(__file__).parent / "apps"
APP = APPS / "plain_llamaindex_app.py"
WITHOUT_LANGCHAIN = APPS / "without_langchain.py"
CLI = Path(sys.executable).parent / "hypertool-callbacks"


def _run(command: list[str], tmp_path: Path, **env: str) -> tuple[CollectorRegistry, str]:
    registry, stdout = run_app(command, tmp_path, **env)
    assert "team: done" in stdout and "Query: hi?" in stdout  # the app's own output
    return registry, stdout


def _assert_observed(registry: CollectorRegistry) -> None:
    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("hypertool_persona_tokens_used_total", persona="planner", model="script-1",
                 token_type="input") == 13
    assert value("hypertool_persona_tokens_used_total", persona="coder", model="script-1",
                 token_type="input") == 17
    pair = {"from_persona": "planner", "to_persona": "coder", "workflow": "AgentWorkflow"}
    assert value("hypertool_persona_switches_total", **pair) == 1
    assert value("hypertool_persona_handoffs_total", **pair) == 1
    assert value("hypertool_workflow_stage_duration_seconds_count", workflow="RetrieverQueryEngine",
                 stage="retrieve", persona="unknown") == 1


@pytest.mark.parametrize("hidden", [True, False], ids=["llamaindex-only", "both-frameworks"])
def test_env_var(tmp_path: Path, hidden: bool) -> None:
    command = [sys.executable, *([str(WITHOUT_LANGCHAIN)] if hidden else []), str(APP)]
    registry, stdout = _run(command, tmp_path, HYPERTOOL_CALLBACKS="true")
    _assert_observed(registry)
    if hidden:
        assert "langchain imported: False" in stdout


def test_launcher_without_langchain(tmp_path: Path) -> None:
    registry, stdout = _run([str(CLI), "run", sys.executable, str(WITHOUT_LANGCHAIN), str(APP)],
                            tmp_path)
    _assert_observed(registry)
    assert "langchain imported: False" in stdout


def test_opentelemetry_instrument_without_langchain(tmp_path: Path) -> None:
    registry, stdout = _run([sys.executable, str(WITHOUT_LANGCHAIN), "--otel", str(APP)],
                            tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none",
                            OTEL_LOGS_EXPORTER="none")
    _assert_observed(registry)
    assert '"name": "invoke_workflow AgentWorkflow"' in stdout  # our spans, via the SDK
    assert '"gen_ai.response.model": "script-1"' in stdout


def test_nothing_without_activation(tmp_path: Path) -> None:
    registry, _ = _run([sys.executable, str(WITHOUT_LANGCHAIN), str(APP)], tmp_path)
    assert registry.get_sample_value("hypertool_persona_tokens_used_total", {
        "persona": "planner", "model": "script-1", "token_type": "input"}) is None
