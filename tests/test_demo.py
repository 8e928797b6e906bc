"""The demo's workflows produce the metrics the README promises, with exact values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
from hypertool_callbacks.context.tracker import Tracker
from hypertool_callbacks.demo import pipeline, team

MODEL = "fake-messages-list-chat-model"
CLI = Path(sys.executable).parent / "hypertool-callbacks"


def test_pipeline_personas_gate_and_budget(
    make_tracker: Callable[..., Tracker], sample: Callable[..., float]
) -> None:
    tracker = make_tracker(pipeline.CONFIG)
    pipeline.run_once(pipeline.build(), [HypertoolCallbackHandler(tracker)])
    wf = {"workflow": pipeline.WORKFLOW}
    switches = [("planner", "backend-engineer", 1), ("backend-engineer", "qa-engineer", 2),
                ("qa-engineer", "reviewer", 2), ("reviewer", "backend-engineer", 1),
                ("reviewer", "release-manager", 1)]
    for source, target, count in switches:
        assert sample("hypertool_persona_switches_total", from_persona=source,
                      to_persona=target, **wf) == count, (source, target)
    gate = {"gate": "code-review", "stage": "review", **wf}
    assert sample("hypertool_workflow_quality_gate_total", result="fail", **gate) == 1
    assert sample("hypertool_workflow_quality_gate_total", result="pass", **gate) == 1
    # Two attempts of (150+30) + (210+60) tokens against a budget of 600: the last call
    # starts with 630 used, so it is counted as started over budget.
    budget = {"persona": "backend-engineer", "scope": "workflow"}
    assert sample("hypertool_persona_token_budget_limit", **budget) == 600
    assert sample("hypertool_persona_token_budget_remaining", **budget) == -300
    assert sample("hypertool_persona_token_budget_exceeded_total", **budget) == 1
    assert sample("hypertool_persona_tokens_used_total", persona="reviewer", model=MODEL,
                  token_type="input") == 620
    # Priced by the demo's [prices] override: the reviewer's tokens at its per-million rates.
    output = sample("hypertool_persona_tokens_used_total", persona="reviewer", model=MODEL,
                    token_type="output")
    price = pipeline.CONFIG.prices[MODEL]
    assert price.input_mtok is not None and price.output_mtok is not None
    assert sample("hypertool_persona_cost_usd_total", persona="reviewer", model=MODEL,
                  usage="reported") == pytest.approx(
        (620 * price.input_mtok + output * price.output_mtok) / 1e6, rel=1e-9)
    assert sample("hypertool_tool_calls_total", tool="run_tests", persona="qa-engineer",
                  status="ok") == 2
    assert sample("hypertool_workflow_stage_duration_seconds_count", stage="implement",
                  persona="backend-engineer", **wf) == 2
    assert tracker.live_runs == 0


def test_team_needs_no_configuration(
    make_tracker: Callable[..., Tracker], sample: Callable[..., float]
) -> None:
    tracker = make_tracker()
    team.run_once(team.build(), [HypertoolCallbackHandler(tracker)])
    wf = {"workflow": team.WORKFLOW}
    for source, target in [("supervisor", "researcher"), ("researcher", "supervisor"),
                           ("supervisor", "writer"), ("writer", "supervisor")]:
        assert sample("hypertool_persona_switches_total", from_persona=source,
                      to_persona=target, **wf) == 1
    for target in ("researcher", "writer"):
        assert sample("hypertool_persona_handoffs_total", from_persona="supervisor",
                      to_persona=target, **wf) == 1
    assert sample("hypertool_persona_tokens_used_total", persona="supervisor", model=MODEL,
                  token_type="input") == 370
    assert sample("hypertool_tool_calls_total", tool="web_search", persona="researcher",
                  status="ok") == 1


def test_demo_command_runs_offline(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "hypertool-callbacks"
    done = subprocess.run(
        [str(cli), "demo", "--iterations", "2", "--interval", "0", "--port", "0",
         "--spans", "file", "--spans-file", str(tmp_path / "spans.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "metrics at http://127.0.0.1:" in done.stdout
    assert "2 iteration(s) done" in done.stdout
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    personas = {span["attributes"].get("hypertool.persona") for span in spans}
    assert {"planner", "backend-engineer", "reviewer", "supervisor", "researcher"} <= personas
    agents = {span["name"] for span in spans if span["name"].startswith("invoke_agent ")}
    assert {"invoke_agent researcher", "invoke_agent writer"} <= agents


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def test_demo_spans_go_to_the_state_dir_not_the_working_dir(tmp_path: Path) -> None:
    """Issue 14, item 13: following the README wrote spans into the checkout."""
    work = tmp_path / "checkout"
    work.mkdir()
    done = subprocess.run(
        [str(CLI), "demo", "--iterations", "1", "--interval", "0", "--port", "0",
         "--scenario", "team"],
        capture_output=True, text=True, timeout=120, cwd=work, env=_demo_env(tmp_path))
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "state" / "hypertool-callbacks" / "hypertool-spans.jsonl"
    assert f"spans appended to {expected} (moved to .1 past 10 MB)" in done.stdout
    assert list(work.iterdir()) == []
    names = {json.loads(line)["name"] for line in expected.read_text().splitlines()}
    assert "invoke_agent researcher" in names


def test_demo_keep_serving_serves_until_ctrl_c(tmp_path: Path) -> None:
    """Issue 14, item 9: ``--iterations N`` used to exit (and stop /metrics) when done."""
    process = subprocess.Popen(
        [str(CLI), "demo", "--iterations", "1", "--interval", "0", "--port", "0",
         "--scenario", "team", "--spans", "none", "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=_demo_env(tmp_path))
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "still serving" in line:
                break
        assert "1 iteration(s) done" in "".join(lines), lines
        url = lines[-1].split()[2]
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'hypertool_persona_handoffs_total{from_persona="supervisor"' in body
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
