"""Issue 15 for LlamaIndex: its source distribution ships no tests, so a smoke suite of its
documented offline flows (index query, retriever, async chat and stream, a two-step workflow,
a chat engine) observed by the app's own instrumentation and legacy handlers runs with and
without ``HYPERTOOL_CALLBACKS=true``: results and what the other observers saw are identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

SMOKE = Path(__file__).parent / "apps" / "llamaindex_smoke.py"


def _run(tmp_path: Path, name: str, **env: str) -> tuple[dict[str, Any], CollectorRegistry]:
    metrics = tmp_path / name
    metrics.mkdir()
    child_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    child_env.update(PROMETHEUS_MULTIPROC_DIR=str(metrics), **env)
    done = subprocess.run([sys.executable, str(SMOKE)], env=child_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics))
    return json.loads(done.stdout.strip().splitlines()[-1]), registry


def test_documented_flows_are_unchanged_by_activation(tmp_path: Path) -> None:
    plain, quiet = _run(tmp_path, "off")
    observed, registry = _run(tmp_path, "on", HYPERTOOL_CALLBACKS="true")

    assert observed == plain
    # The flows really ran and were observed by the app's own handlers...
    assert plain["workflow"].startswith("cats: ")
    assert plain["stream"] and plain["chat"].startswith("assistant:")
    assert plain["retrieved"] == ["Paris is the capital of France.", "Rome is in Italy."]
    assert "TwoSteps.first" in plain["span_names"] and plain["open_spans"] == 0
    assert plain["legacy_events"]["llm"] >= 3 and "LLMChatEndEvent" in plain["events"]
    # ... and hypertool was on in the second run only.
    calls = [s.value for m in registry.collect() if m.name == "hypertool_llm_requests"
             for s in m.samples if s.name.endswith("_total")]
    assert sum(calls) >= 4
    assert not any(m.name.startswith("hypertool_") and m.samples for m in quiet.collect())
