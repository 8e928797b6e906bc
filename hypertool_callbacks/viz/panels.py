"""A static picture of a generated Grafana dashboard, its panels' queries evaluated over a
registry snapshot (see :mod:`hypertool_callbacks.viz.snapshot`).

Panels keep their place in the dashboard's grid; each draws one horizontal bar per series its
queries return (the value over the whole run: a rate is per second of the run, an increase
the run's total, a quantile the run's), labelled with the panel's legend format. A panel whose
queries return nothing says "no data", as Grafana does.

Example::

    dash = json.loads(Path("dashboards/persona-overview.json").read_text())
    dashboard_preview(dash, Snapshot.of(registry, seconds=clock.now()))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hypertool_callbacks.viz.snapshot import Snapshot, evaluate

try:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("hypertool_callbacks.viz needs matplotlib: "
                      "pip install 'hypertool-callbacks[viz]'") from exc

MAX_BARS = 12  # per panel; more would not be readable in a preview
ROW_INCHES = 2.4
_UNITS = {"ops": ("per second", "/s"), "s": ("seconds", " s"), "percentunit": ("share", ""),
          "currencyUSD": ("USD", ""), "short": ("", "")}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _legend(fmt: str, labels: Mapping[str, str], fallback: str) -> str:
    if fmt and fmt != "__auto":
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or fallback


def _format(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value:.0%}"
    if unit == "currencyUSD":
        return f"${value:.4g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}{_UNITS.get(unit, ('', ''))[1]}"
    return f"{value:.3g}{_UNITS.get(unit, ('', ''))[1]}"


def panel_series(panel: Mapping[str, Any], snapshot: Snapshot) -> list[tuple[str, float, int]]:
    """(legend, value, target index) for every series a panel's queries return, in legend
    order within each target."""
    out: list[tuple[str, float, int]] = []
    for index, target in enumerate(panel.get("targets", [])):
        result = evaluate(target["expr"], snapshot)
        vector = result if isinstance(result, dict) else {(): result}
        rows = [(_legend(target.get("legendFormat", ""), dict(k), target.get("refId", "")), v)
                for k, v in vector.items()]
        out += [(legend, value, index) for legend, value in sorted(rows)]
    return out


def draw_panel(panel: Mapping[str, Any], snapshot: Snapshot, ax: Axes) -> Axes:
    """One panel's series as horizontal bars on ``ax``."""
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    series = panel_series(panel, snapshot)[:MAX_BARS]
    ax.set_title(panel["title"], fontsize=9, loc="left")
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", color="grey",
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return ax
    colours = plt.get_cmap("tab10")
    rows = range(len(series))
    values = [value for _, value, _ in series]
    ax.barh(rows, values, color=[colours(index % 10) for _, _, index in series], height=0.45,
            align="edge")
    top = max(max(values), 0.0)
    low = min(min(values), 0.0)
    ax.set_xlim(low, top * 1.3 if top else 1.0)
    for row, (legend, value, _) in zip(rows, series, strict=True):
        # Labels inside the panel, above their bar: tick labels would spill into the next one.
        ax.text(low, row - 0.05, legend[:60], va="bottom", fontsize=7)
        ax.text(value, row + 0.22, " " + _format(value, unit), va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_ylim(len(series) - 0.35 + 0.3, -0.6)  # first series on top
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(_UNITS.get(unit, (unit, ""))[0], fontsize=7)
    return ax


def dashboard_preview(dashboard: Mapping[str, Any], snapshot: Snapshot,
                      width: float = 14.0) -> Figure:
    """Every panel of ``dashboard`` (a dashboard's JSON, loaded) laid out on its grid."""
    panels = dashboard.get("panels", [])
    rows = max((p["gridPos"]["y"] // 8 for p in panels), default=0) + 1
    fig = plt.figure(figsize=(width, ROW_INCHES * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 24)
    for panel in panels:
        pos = panel["gridPos"]
        draw_panel(panel, snapshot, fig.add_subplot(grid[pos["y"] // 8,
                                                         pos["x"]:pos["x"] + pos["w"]]))
    fig.suptitle(f"{dashboard.get('title', '')} (static preview over one run)",
                 fontsize=12, x=0.01, ha="left")
    return fig
