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
"""

from __future__ import annotations

from hypertool_callbacks.viz.tree import SpanTree, span_tree

__all__ = [
    "SpanTree",
    "llm_latency",
    "overview",
    "persona_timeline",
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
    raise AttributeError(f"module 'hypertool_callbacks.viz' has no attribute {name!r}")
