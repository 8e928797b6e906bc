"""PromQL selectors built from, and checked against, the metric catalog.

Dashboards, alert rules and the runbook write every series through :func:`sel`, so a metric,
label or label value the exporter never emits fails when they are generated, not when someone
stares at an empty panel. :func:`problems` checks finished text (committed files, the README)
the same way.

Example::

    sel(catalog.QUALITY_GATE, result="fail")          # hypertool_..._total{result="fail"}
    sel(catalog.LLM_DURATION, "_bucket", status="~ok|error")
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hypertool_callbacks import catalog
from hypertool_callbacks.catalog import MetricSpec

# Labels Prometheus adds to every scraped series.
TARGET_LABELS = ("instance", "job")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
_OPERATORS = {"~": "=~", "!": "!=", "!~": "!~"}


def _matcher(spec: MetricSpec, label: str, value: str) -> str:
    op = "="
    for prefix in ("!~", "~", "!"):  # longest first
        if value.startswith(prefix):
            op, value = _OPERATORS[prefix], value[len(prefix):]
            break
    if label == "le":
        if spec.kind != "histogram":
            raise ValueError(f"{spec.name}: le only exists on histogram buckets")
    elif label not in TARGET_LABELS:
        allowed = spec.allowed(label)  # raises KeyError for a label the metric lacks
        # Closed labels: every alternative must be a value the exporter emits (a variable such
        # as $persona is not a value and is only allowed on open labels).
        if allowed is not None:
            options = value.split("|") if "~" in op else [value]
            unknown = [v for v in options if v not in allowed]
            if unknown:
                raise ValueError(f"{spec.name}{{{label}}} is never {unknown} "
                                 f"(the exporter emits {list(allowed)})")
    return f'{label}{op}"{value}"'


def sel(spec: MetricSpec, suffix: str = "", /, *, where: Mapping[str, str] | None = None,
        **matchers: str) -> str:
    """``spec``'s series (``suffix``: ``_bucket``/``_count``/``_sum`` of a histogram) with
    ``label="value"`` matchers; prefix a value with ``~`` for ``=~``, ``!`` for ``!=``.
    ``where`` adds matchers only for the labels ``spec`` has (dashboard variables)."""
    if suffix and (spec.kind != "histogram" or suffix not in _HISTOGRAM_SUFFIXES):
        raise ValueError(f"{spec.name} has no {suffix} series")
    pairs = dict(matchers)
    for label, value in (where or {}).items():
        if label in spec.labels or label in TARGET_LABELS:
            pairs.setdefault(label, value)
    body = ", ".join(_matcher(spec, label, value) for label, value in pairs.items())
    return f"{spec.name}{suffix}{{{body}}}" if body else spec.name + suffix


# -- checking finished text ------------------------------------------------------------------

_SELECTOR = re.compile(r"(?<![A-Za-z0-9_])(hypertool_[a-z0-9_]+)(\{[^}]*\})?")
_PAIR = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_BY = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _spec_for(name: str) -> tuple[MetricSpec, str] | None:
    for spec in catalog.CATALOG:
        if name == spec.name:
            return spec, ""
        if spec.kind == "histogram":
            for suffix in _HISTOGRAM_SUFFIXES:
                if name == spec.name + suffix:
                    return spec, suffix
    return None


def problems(text: str, extra_labels: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with every ``hypertool_*`` selector in ``text``: unknown metrics, labels
    a metric lacks, values a closed label never takes. Empty when all is well. Grouping
    labels (``by (...)``) are checked too when every selector in an expression lacks them."""
    found: list[str] = []
    for match in _SELECTOR.finditer(text):
        name, body = match.group(1), match.group(2) or ""
        hit = _spec_for(name)
        if hit is None:
            if name not in catalog_non_metrics():
                found.append(f"{name}: not in the catalog")
            continue
        spec, suffix = hit
        after = text[match.end():match.end() + 1]
        if spec.kind == "histogram" and not suffix and after and after in "{[,)":
            found.append(f"{name}: a histogram has only _bucket/_count/_sum series")
        for label, op, value in _PAIR.findall(body):
            if label in extra_labels:
                continue
            try:
                _matcher(spec, label, {"=": "", "=~": "~", "!=": "!", "!~": "!~"}[op] + value)
            except (KeyError, ValueError) as exc:
                found.append(str(exc).strip('"'))
    return found


def grouping_problems(expr: str) -> list[str]:
    """``by (...)`` / ``on (...)`` labels that no selected metric of ``expr`` carries."""
    specs = [hit[0] for m in _SELECTOR.finditer(expr) if (hit := _spec_for(m.group(1)))]
    if not specs:
        return []
    known = {label for spec in specs for label in spec.labels}
    known |= set(TARGET_LABELS) | {"le", "tmp"}
    found = []
    for group in _BY.findall(expr):
        for label in (x.strip() for x in group.split(",")):
            if label and label not in known:
                found.append(f"grouping by {label!r}, which none of {[s.name for s in specs]} has")
    return found


def catalog_non_metrics() -> frozenset[str]:
    """``hypertool_*`` words that are not metrics (package and metadata names)."""
    return frozenset({"hypertool_callbacks", "hypertool_persona", "hypertool_stage",
                      "hypertool_workflow", "hypertool_gate", "hypertool_handler"})
