"""The backend wiring in integrations/ is valid for the tools that will read it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent / "integrations"


@pytest.mark.parametrize("name", ["prometheus.yml", "compose-prometheus.yml"])
def test_prometheus_configs_pass_promtool(name: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: .ci/run installs the Debian prometheus package"
    done = subprocess.run([promtool, "check", "config", str(ROOT / "prometheus" / name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_mounts_files_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert {"demo", "prometheus", "grafana", "otel-collector", "tempo"} <= set(compose["services"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), f"{source} is mounted but missing"
    collector = yaml.safe_load((ROOT / "otel-collector" / "config.yaml").read_text())
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
