"""The backend wiring in integrations/ is valid for the tools that will read it, and points only
at files that exist in this repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.otlp_receiver import OTLPReceiver

REPO = Path(__file__).parent.parent
ROOT = REPO / "integrations"
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = _yaml(ROOT / "compose.yaml")
    return compose


def _mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount."""
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out.append(((ROOT / source).resolve(), target))
    return out


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    for source, target in _mounts(service):
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1:]
    return None


def test_every_yaml_file_parses() -> None:
    files = [*ROOT.rglob("*.yml"), *ROOT.rglob("*.yaml")]
    assert len(files) >= 8
    for path in files:
        assert isinstance(_yaml(path), dict), path


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: .ci/run installs the Debian "
                    "prometheus package")
@pytest.mark.parametrize("name", ["prometheus.yml", "compose-prometheus.yml"])
def test_prometheus_configs_pass_promtool(name: str) -> None:
    done = subprocess.run([str(PROMTOOL), "check", "config", str(ROOT / "prometheus" / name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    if name == "prometheus.yml":  # its rule_files point into the repository: checked too
        assert "SUCCESS: 1 rule files found" in done.stdout
        assert "hypertool-rules.yml" in done.stdout


def test_prometheus_configs_load_the_rules_and_scrape_the_rules_job() -> None:
    rules_job = re.search(r'up\{job="([^"]+)"\}', (REPO / "alerts/hypertool-rules.yml")
                          .read_text())
    assert rules_job
    for name in ("prometheus.yml", "compose-prometheus.yml"):
        config = _yaml(ROOT / "prometheus" / name)
        jobs = {job["job_name"] for job in config["scrape_configs"]}
        assert rules_job.group(1) in jobs, name
        assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    local = _yaml(ROOT / "prometheus" / "prometheus.yml")
    assert all((ROOT / "prometheus" / rule).resolve().is_file() for rule in local["rule_files"])


@pytest.mark.skipif(AMTOOL is None, reason="amtool missing: .ci/run installs the Debian "
                    "prometheus-alertmanager package")
def test_alertmanager_example_passes_amtool() -> None:
    done = subprocess.run([str(AMTOOL), "check-config", str(ROOT / "alertmanager" /
                                                            "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alertmanager_routes_use_the_rules_severities() -> None:
    rules = _yaml(REPO / "alerts/hypertool-rules.yml")
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    config = _yaml(ROOT / "alertmanager" / "alertmanager.yml")
    routed = {m.split('"')[1] for route in config["route"]["routes"]
              for m in route["matchers"]}
    assert routed <= severities and "critical" in routed
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"]:
            pattern = matcher.split('"')[1]
            assert all(n in names for n in pattern.split("|")), pattern


def test_compose_mounts_files_that_exist_and_wires_every_service() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"demo", "prometheus", "alertmanager", "grafana", "otel-collector",
            "tempo"} <= set(services)
    for name, service in services.items():
        for source, _ in _mounts(service):
            assert source.exists(), f"{name} mounts {source}, which is missing"
            assert source == REPO or REPO in source.parents, f"{name} mounts outside the repo"
        # Every config file a command names must come from a mount.
        command = service.get("command", [])
        words = command if isinstance(command, list) else command.split()
        for word in words:
            path = word.split("=", 1)[-1]
            if path.startswith("/etc/"):
                host = _host_path(service, path)
                assert host is not None and host.is_file(), f"{name}: {path} is not mounted"
    # Services the configs talk to exist in the compose file.
    prometheus = _yaml(ROOT / "prometheus" / "compose-prometheus.yml")
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]]
    targets += prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert {t.split(":")[0] for t in targets} <= set(services)
    collector = _yaml(ROOT / "otel-collector" / "config.yaml")
    pipelines = collector["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert "prometheus" in pipelines["metrics"]["exporters"]
    assert collector["exporters"]["otlp/traces"]["endpoint"].split(":")[0] in services
    assert services["demo"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        "http://otel-collector:4318")


def test_grafana_provisioning_points_at_files_that_exist() -> None:
    grafana = _compose()["services"]["grafana"]
    provisioning = _host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == ROOT / "grafana" / "provisioning"
    providers = _yaml(provisioning / "dashboards" / "hypertool.yml")["providers"]
    for provider in providers:
        folder = _host_path(grafana, provider["options"]["path"])
        assert folder is not None and folder == REPO / "dashboards"
        assert len(list(folder.glob("*.json"))) == 3
    sources = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    uids = {source["uid"] for source in sources}
    types = {source["type"] for source in sources}
    assert {"prometheus", "tempo"} <= types
    for source in sources:
        for link in source.get("jsonData", {}).get("exemplarTraceIdDestinations", []):
            assert link["datasourceUid"] in uids
            assert link["name"] == "trace_id"  # the exemplar label our exporter writes


def test_compose_demo_command_sends_spans_over_otlp_and_serves_metrics() -> None:
    # The demo service's command and environment, run here against a local OTLP receiver
    # (the pip install is the container's business).
    demo = _compose()["services"]["demo"]
    command = demo["command"].split("&&", 1)[1].strip().rstrip('"').split()
    assert command[:3] == ["opentelemetry-instrument", "hypertool-callbacks", "demo"]
    bindir = Path(sys.executable).parent
    args = [str(bindir / command[0]), str(bindir / command[1]), *command[2:]]
    del args[args.index("--addr"):args.index("--addr") + 2]  # 127.0.0.1 here
    args[args.index("--port") + 1] = "0"
    args[args.index("--spans-file") + 1] = os.devnull
    with OTLPReceiver() as receiver:
        env = {**os.environ, **demo["environment"],
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}"}
        done = subprocess.run([*args, "--iterations", "1"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        url = re.search(r"metrics at (\S+)", done.stdout)
        assert url, done.stdout
        names = {span.name for span in receiver.wait_for_spans(20)}
    assert "invoke_workflow software-delivery" in names, sorted(names)[:20]
    assert "1 iteration(s) done" in done.stdout
    with pytest.raises(OSError):  # the demo stopped serving when it finished
        urllib.request.urlopen(url.group(1), timeout=2)
