"""The catalog is the one source of metric names: nothing elsewhere may name a metric it lacks,
and what it declares follows Prometheus conventions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hypertool_callbacks.catalog import CATALOG
from hypertool_callbacks.sinks.prometheus import PrometheusSink

ROOT = Path(__file__).parent.parent
# Names of the hypertool_ family that are not metrics: metadata keys, modules, a context var.
NOT_METRICS = {"hypertool_callbacks", "hypertool_persona", "hypertool_stage",
               "hypertool_workflow", "hypertool_gate", "hypertool_handler"}
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_created")
NAME = re.compile(r"(?<![A-Za-z0-9_])hypertool_[a-z0-9_]+")


def _known_names() -> set[str]:
    names = set()
    for spec in CATALOG:
        names |= {spec.name, spec.base_name}
        names |= {spec.base_name + suffix for suffix in SERIES_SUFFIXES}
    return names


def _files() -> list[Path]:
    places = [ROOT / "README.md", *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]
    for folder in ("integrations", "dashboards", "alerts", "notebooks"):
        places += [p for p in (ROOT / folder).rglob("*") if p.is_file()]
    return places


def test_every_metric_named_anywhere_is_in_the_catalog() -> None:
    known = _known_names()
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _files()
        for name in NAME.findall(path.read_text(encoding="utf-8", errors="replace"))
        if name not in known and name not in NOT_METRICS
    }
    assert unknown == set()


@pytest.mark.parametrize("spec", CATALOG, ids=[spec.name for spec in CATALOG])
def test_catalog_entries_follow_prometheus_conventions(spec: object) -> None:
    from hypertool_callbacks.catalog import MetricSpec

    assert isinstance(spec, MetricSpec)
    assert re.fullmatch(r"hypertool_[a-z0-9_]+", spec.name)
    assert spec.name.endswith("_total") == (spec.kind == "counter")
    if spec.kind == "histogram":
        assert spec.name.endswith("_seconds")
        assert list(spec.buckets) == sorted(set(spec.buckets)) and len(spec.buckets) >= 8
    assert all(re.fullmatch(r"[a-z_]+", label) for label in spec.labels)
    assert spec.help.strip()


def test_the_prometheus_sink_registers_exactly_the_catalog() -> None:
    registry = CollectorRegistry()
    PrometheusSink(registry)
    registered = {metric.name for metric in registry.collect()}
    # prometheus_client reports counters without their _total suffix.
    assert registered == {spec.base_name for spec in CATALOG}


def test_closed_label_values_agree_with_the_code_that_emits_them() -> None:
    # Rules and dashboards are checked against these sets; here the sets are checked against
    # the code, so a value the exporter starts (or stops) emitting cannot slip past both.
    import typing

    from hypertool_callbacks import catalog as c
    from hypertool_callbacks.config import PersonaConfig
    from hypertool_callbacks.context import gates
    from hypertool_callbacks.context.runs import Status
    from hypertool_callbacks.events import Usage

    run_statuses = {s.value for s in Status} - {Status.REFUSED.value}  # refused: LLM calls only
    assert set(c.LLM_STATUSES) == {s.value for s in Status}
    assert set(c.RUN_STATUSES) == run_statuses
    assert set(c.GATE_RESULTS) == {gates.PASS, gates.FAIL}
    assert set(c.TOKEN_DETAILS) == set(Usage(1, 1, 2, 1, 1, 1).details())
    scope = PersonaConfig.model_fields["budget_scope"].annotation
    assert set(c.BUDGET_SCOPES) == set(typing.get_args(scope))
    tracker_source = (ROOT / "hypertool_callbacks/context/tracker.py").read_text()
    emitted = set(re.findall(r'\("on_drop", "([a-z_]+)"\)', tracker_source))
    assert emitted == set(c.DROP_REASONS)
    assert _token_types_the_sink_emits() == set(c.TOKEN_TYPES)


def _token_types_the_sink_emits() -> set[str]:
    """The ``token_type`` values the Prometheus sink writes for reported and estimated usage."""
    from prometheus_client import CollectorRegistry

    from hypertool_callbacks.context.runs import Run
    from hypertool_callbacks.events import RunKind, Usage
    from hypertool_callbacks.sinks.prometheus import PrometheusSink

    registry = CollectorRegistry()
    sink = PrometheusSink(registry)
    for estimated in (False, True):
        run = Run(run_id=estimated, parent=None, kind=RunKind.LLM, name="m", tags=(),
                  metadata={}, start_ns=0, start_mono=0.0)
        run.end_mono, run.usage = 1.0, Usage(3, 2, 5, estimated=estimated)
        sink.on_run_end(run)
    return {sample.labels["token_type"] for family in registry.collect()
            for sample in family.samples
            if sample.name == "hypertool_persona_tokens_used_total"}


def test_allowed_values_reject_unknown_labels() -> None:
    from hypertool_callbacks import catalog as c

    assert c.QUALITY_GATE.allowed("result") == ("pass", "fail")
    assert c.QUALITY_GATE.allowed("gate") is None
    with pytest.raises(KeyError, match="no label 'status'"):
        c.QUALITY_GATE.allowed("status")
    for spec in CATALOG:
        assert {label for label, _ in spec.values} <= set(spec.labels), spec.name
