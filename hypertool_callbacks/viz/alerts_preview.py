"""Which of the generated alert rules a run would fire, from a registry snapshot.

Each rule's own expression is evaluated by :mod:`hypertool_callbacks.viz.snapshot` with the
rule window as the whole run; ``for:`` is reported, not waited for (a rule whose condition is
true fires once it has held that long). Rules about history or scrape health
(``predict_linear``, ``up``, ``absent``) cannot be judged from one snapshot and say so.

Example::

    alert_preview(Snapshot.of(registry, seconds=clock.now()))   # a table in Jupyter
"""

from __future__ import annotations

import html
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypertool_callbacks.viz.snapshot import (
    Labels,
    Node,
    Snapshot,
    Unsupported,
    evaluate,
    parse,
)

_SETS = ("and", "or", "unless")
_COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
_SHOWN = 4  # series listed per rule
_STEPS = 8  # samples per rule window in the promtool replay: value / 8 is exact in binary


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert: str
    severity: str
    for_: str
    fires: bool | None  # None: cannot be judged from a snapshot
    why: str
    series: tuple[Labels, ...] = ()  # the labels of each firing series


@dataclass(frozen=True, slots=True)
class AlertPreview:
    """The rules with whether each would fire and why; a table in Jupyter."""

    rows: tuple[AlertRow, ...]

    @property
    def firing(self) -> list[str]:
        return [r.alert for r in self.rows if r.fires]

    def __repr__(self) -> str:
        width = max((len(r.alert) for r in self.rows), default=5)
        lines = [f"{'alert':<{width}}  severity  for  fires  why"]
        for r in self.rows:
            lines.append(f"{r.alert:<{width}}  {r.severity:<8}  {r.for_:<3}  "
                         f"{_answer(r.fires):<5}  {r.why}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("alert", "severity", "for", "fires", "why"))
        body = "".join(
            f"<tr><td>{html.escape(r.alert)}</td><td>{html.escape(r.severity)}</td>"
            f"<td>{html.escape(r.for_)}</td><td><b>{_answer(r.fires)}</b></td>"
            f"<td style='text-align:left'>{html.escape(r.why)}</td></tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _answer(fires: bool | None) -> str:
    return "n/a" if fires is None else ("yes" if fires else "no")


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _series(vector: Mapping[Any, float], suffix: str = "") -> str:
    parts = []
    for labels, value in sorted(vector.items(), key=lambda kv: -kv[1])[:_SHOWN]:
        name = ", ".join(f"{k}={v}" for k, v in labels if k != "__name__") or "all"
        parts.append(f"{name}: {_number(value)}{suffix}")
    more = len(vector) - _SHOWN
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _measure(node: Node) -> tuple[Node, str] | None:
    # The quantity a rule compares with its threshold: the left side of its first comparison.
    while node.kind == "bin" and node.name in _SETS:
        node = node.args[0]
    if node.kind == "bin" and node.name in _COMPARISONS and node.args[1].kind == "num":
        return node.args[0], f" {node.name} {node.args[1].value:g}"
    return None


def check(rule: Mapping[str, Any], snapshot: Snapshot) -> AlertRow:
    """One rule (a rule file's mapping: alert, expr, for, labels) at ``snapshot``."""
    name, severity = str(rule["alert"]), str(rule.get("labels", {}).get("severity", ""))
    for_ = str(rule.get("for", "0m"))
    node = parse(str(rule["expr"]))
    try:
        result = evaluate(node, snapshot)
    except Unsupported as exc:
        return AlertRow(name, severity, for_, None, f"not judged: {exc}")
    fired = result if isinstance(result, dict) else ({(): result} if result else {})
    measure = _measure(node)
    if fired:
        return AlertRow(name, severity, for_, True, _series(fired, measure[1] if measure else ""),
                        tuple(sorted(fired)))
    if measure is None:
        return AlertRow(name, severity, for_, False, "condition false")
    values = evaluate(measure[0], snapshot)
    if not isinstance(values, dict):
        values = {(): values}
    return AlertRow(name, severity, for_, False,
                    f"needs{measure[1]}; " + _series(values) if values
                    else "no data (nothing of this kind happened)")


def alert_preview(snapshot: Snapshot, rules: Mapping[str, Any] | None = None) -> AlertPreview:
    """Every rule of ``rules`` (a loaded rule file; default: the generated
    ``alerts/hypertool-rules.yml``) checked against ``snapshot``."""
    return AlertPreview(tuple(check(rule, snapshot) for group in _rules(rules)["groups"]
                              for rule in group["rules"]))


def _rules(rules: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if rules is None:
        from hypertool_callbacks.alerts import rule_groups

        return rule_groups()
    return rules


# -- the same question to Prometheus' own rule engine --------------------------------------------

def _series_name(name: str, labels: Labels) -> str:
    body = ",".join(f"{k}={json.dumps(v)}" for k, v in labels)
    return f"{name}{{{body}}}"


def promtool_check(preview: AlertPreview, snapshot: Snapshot,
                   rules: Mapping[str, Any] | None = None, *, promtool: str | None = None,
                   window_minutes: int = 10, timeout: float = 60.0) -> str:
    """Ask ``promtool test rules`` whether Prometheus' engine fires exactly what ``preview``
    says for every judged rule, once every ``for:`` (up to an hour) has passed. The snapshot is
    replayed as scraped series (job ``hypertool``): counters grow by their snapshot value every
    ``window_minutes`` (the rules' window), in eight steps so the sums stay exact, and an
    ``increase`` over the window is that value; gauges hold theirs. Returns a sentence; never
    raises for a missing or failing promtool."""
    binary = promtool or shutil.which("promtool")
    if binary is None:
        return "promtool is not on PATH: not cross-checked."
    step_ms = window_minutes * 60_000 // _STEPS
    windows = 2 + -(-60 // window_minutes)  # past a full window plus the longest `for:`
    steps = _STEPS * (windows + 1)
    groups = [{**group, "rules": [{k: v for k, v in rule.items() if k != "annotations"}
                                  for rule in group["rules"]]}
              for group in _rules(rules)["groups"]]
    extra = (("instance", "notebook"), ("job", "hypertool"))
    series = []
    for name, vector in sorted(snapshot.samples.items()):
        for labels, value in sorted(vector.items()):
            values = (f"0+{value / _STEPS:.17g}x{steps}" if name in snapshot.counters
                      else f"{value:.17g}x{steps}")
            series.append({"series": _series_name(name, tuple(sorted((*labels, *extra)))),
                           "values": values})
    judged = [r for r in preview.rows if r.fires is not None]
    rule_labels = {rule["alert"]: rule.get("labels", {}) for group in groups
                   for rule in group["rules"]}
    tests = [{"eval_time": f"{windows * _STEPS * step_ms}ms", "alertname": r.alert,
              "exp_alerts": [{"exp_labels": {**rule_labels[r.alert], **dict(labels)}}
                             for labels in r.series]} for r in judged]
    test = {"rule_files": ["rules.json"], "evaluation_interval": f"{step_ms}ms",
            "tests": [{"interval": f"{step_ms}ms", "input_series": series,
                       "alert_rule_test": tests}]}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rules.json").write_text(json.dumps({"groups": groups}))
        Path(tmp, "test.json").write_text(json.dumps(test))
        try:
            done = subprocess.run([binary, "test", "rules", "test.json"], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"promtool could not run: {exc}"
    fired = sum(1 for r in judged if r.fires)
    if done.returncode == 0:
        return (f"promtool test rules agrees: of the {len(judged)} rules judged here, Prometheus'"
                f" engine fires the same {fired} with the same labels, and no other.")
    return "promtool test rules disagrees:\n" + (done.stdout + done.stderr).strip()
