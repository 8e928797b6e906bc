"""Pictures of a recording (see :func:`hypertool_callbacks.record`), for notebooks.

Needs matplotlib (``pip install 'hypertool-callbacks[viz]'``). Every plot takes a recorder or
an execution record and returns the matplotlib ``Axes`` it drew on (pass ``ax=`` to draw into
your own figure); nothing calls ``plt.show()``. Plots of one execution use the recorder's last
finished one; distributions use every recorded execution.

Example::

    from hypertool_callbacks import viz
    with hypertool_callbacks.record() as rec:
        app.invoke(...)
    viz.persona_timeline(rec)
    viz.span_tree(rec)          # text / HTML, no matplotlib needed

The generated dashboards and alert rules, previewed over a run's metrics (no Prometheus)::

    snap = viz.Snapshot.of(registry, seconds=run_seconds)
    viz.dashboard_preview(json.loads(Path("dashboards/llm-and-tools.json").read_text()), snap)
    viz.alert_preview(snap)     # which rules would fire, and why
"""

from __future__ import annotations

from hypertool_callbacks.viz.alerts_preview import AlertPreview, alert_preview, promtool_check
from hypertool_callbacks.viz.snapshot import Snapshot
from hypertool_callbacks.viz.tree import SpanTree, span_tree

__all__ = [
    "AlertPreview",
    "Snapshot",
    "SpanTree",
    "alert_preview",
    "dashboard_preview",
    "llm_latency",
    "overview",
    "persona_timeline",
    "promtool_check",
    "span_tree",
    "stage_durations",
    "tokens_vs_budget",
    "transition_matrix",
]


def __getattr__(name: str) -> object:
    # The plots import matplotlib: only when one is asked for, with an error naming the extra.
    if name in ("persona_timeline", "transition_matrix", "tokens_vs_budget", "stage_durations",
                "llm_latency", "overview"):
        from hypertool_callbacks.viz import plots

        return getattr(plots, name)
    if name == "dashboard_preview":
        from hypertool_callbacks.viz import panels

        return panels.dashboard_preview
    raise AttributeError(f"module 'hypertool_callbacks.viz' has no attribute {name!r}")
