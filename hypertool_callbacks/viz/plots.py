"""The matplotlib plots of :mod:`hypertool_callbacks.viz`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypertool_callbacks.sinks.recorder import ExecutionRecord, RecorderSink
from hypertool_callbacks.summary import Summary

try:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("hypertool_callbacks.viz needs matplotlib: "
                      "pip install 'hypertool-callbacks[viz]'") from exc

Source = RecorderSink | ExecutionRecord
OVERRUN = "#c0392b"
WITHIN = "#2e86c1"


def _one(source: Source) -> ExecutionRecord:
    return source.last() if isinstance(source, RecorderSink) else source


def _all(source: Source | Sequence[ExecutionRecord]) -> list[ExecutionRecord]:
    if isinstance(source, RecorderSink):
        return [e for e in source.executions if e.finished]
    if isinstance(source, ExecutionRecord):
        return [source]
    return list(source)


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    # pyplot, so that a notebook shows the figure by itself at the end of the cell.
    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _colours(names: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def persona_timeline(source: Source, ax: Axes | None = None) -> Axes:
    """Gantt lanes: one row per persona, a bar for each time it was acting; handoffs are
    arrows between lanes, gate results marks on the gate's lane (pass o, fail x)."""
    execution = _one(source)
    personas = execution.personas
    lane = {p: i for i, p in enumerate(personas)}
    colours = _colours(personas)
    ax = _axes(ax, (9, 0.6 * len(personas) + 1.6))
    for interval in execution.intervals:
        ax.broken_barh([(interval.start, interval.seconds)], (lane[interval.persona] - 0.35, 0.7),
                       facecolors=colours[interval.persona])
    for handoff in execution.handoffs:
        if handoff.from_persona in lane and handoff.to_persona in lane:
            ax.annotate("", xy=(handoff.time, lane[handoff.to_persona]),
                        xytext=(handoff.time, lane[handoff.from_persona]),
                        arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.2})
    for gate in execution.gates:
        if gate.persona in lane:
            ax.plot(gate.time, lane[gate.persona], marker="o" if gate.result == "pass" else "X",
                    color="black" if gate.result == "pass" else OVERRUN, markersize=8,
                    linestyle="none")
    ax.set_yticks(range(len(personas)), personas)
    ax.set_ylim(len(personas) - 0.5, -0.5)  # first persona on top
    end = max(execution.duration, 1e-9)
    ax.set_xlim(0, end * 1.02)
    handles = []
    if execution.handoffs:
        handles.append(Line2D([], [], color="black", marker=r"$\rightarrow$", linestyle="none",
                              markersize=10, label="handoff"))
    results = {gate.result for gate in execution.gates}
    if "pass" in results:
        handles.append(Line2D([], [], color="black", marker="o", linestyle="none",
                              label="gate passed"))
    if results - {"pass"}:
        handles.append(Line2D([], [], color=OVERRUN, marker="X", linestyle="none",
                              label="gate failed"))
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_xlabel("seconds since the execution started")
    ax.set_title(f"Who worked when: {execution.workflow}")
    ax.grid(axis="x", alpha=0.3)
    return ax


def transition_matrix(source: Source | Sequence[ExecutionRecord], ax: Axes | None = None,
                      *, kind: str = "switches") -> Axes:
    """Heatmap of persona switches (or ``kind="handoffs"``): rows from, columns to, counted
    over every recorded execution."""
    if kind not in ("switches", "handoffs"):
        raise ValueError("kind must be 'switches' or 'handoffs'")
    executions = _all(source)
    counts: dict[tuple[str, str], int] = {}
    names: dict[str, None] = {}
    for execution in executions:
        for persona in execution.personas:
            names.setdefault(persona)
        for t in getattr(execution, kind):
            counts[t.from_persona, t.to_persona] = counts.get((t.from_persona, t.to_persona),
                                                              0) + 1
            names.setdefault(t.from_persona)
            names.setdefault(t.to_persona)
    personas = list(names)
    grid = [[counts.get((a, b), 0) for b in personas] for a in personas]
    ax = _axes(ax, (1.1 * len(personas) + 2.5, 0.9 * len(personas) + 1.5))
    image = ax.imshow(grid, cmap="Blues", vmin=0)
    top = max((max(row) for row in grid), default=0)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if top and value > top / 2 else "black")
    ax.set_xticks(range(len(personas)), personas, rotation=30, ha="right")
    ax.set_yticks(range(len(personas)), personas)
    ax.set_xlabel("to persona")
    ax.set_ylabel("from persona")
    ax.set_title(f"Persona {kind} ({len(executions)} execution(s))")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax


def tokens_vs_budget(source: Source, ax: Axes | None = None) -> Axes:
    """Tokens each persona used in one execution (input + output, stacked) next to its budget
    (a black tick); personas over budget are drawn in red."""
    execution = _one(source)
    rows = [r for r in Summary.of(execution).rows if r.tokens or r.budget is not None]
    ax = _axes(ax, (1.2 * len(rows) + 3, 4))
    x = range(len(rows))
    inputs = [r.input_tokens for r in rows]
    outputs = [r.output_tokens for r in rows]
    used = [r.tokens for r in rows]
    over = [r.overrun or (r.budget is not None and r.tokens > r.budget) for r in rows]
    colours = [OVERRUN if o else WITHIN for o in over]
    ax.bar(x, inputs, color=colours, alpha=0.55)
    ax.bar(x, outputs, bottom=inputs, color=colours)
    for i, row in enumerate(rows):
        if row.budget is not None:
            ax.hlines(row.budget, i - 0.42, i + 0.42, colors="black", linewidth=2.5)
        ax.text(i, used[i], str(used[i]), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(x), [r.persona for r in rows], rotation=20, ha="right")
    ax.set_ylabel("tokens")
    ax.set_title(f"Tokens vs budget: {execution.workflow}")
    ax.legend(handles=[Patch(color=WITHIN, alpha=0.55, label="input"),
                       Patch(color=WITHIN, label="output"),
                       Patch(color=OVERRUN, label="over budget"),
                       Patch(color="black", label="budget")], loc="upper left", fontsize=8)
    return ax


def stage_durations(source: Source | Sequence[ExecutionRecord], ax: Axes | None = None) -> Axes:
    """Box plot (with every observation as a dot) of each stage's duration, over every
    recorded execution."""
    by_stage: dict[str, list[float]] = {}
    for execution in _all(source):
        for span in execution.stages:
            by_stage.setdefault(span.stage, []).append(span.seconds)
    stages = list(by_stage)
    ax = _axes(ax, (1.3 * len(stages) + 3, 4))
    if stages:
        ax.boxplot([by_stage[s] for s in stages], positions=range(len(stages)), widths=0.5)
        for i, stage in enumerate(stages):
            values = by_stage[stage]
            offsets = [i + 0.12 * ((k % 5) - 2) / 2 for k in range(len(values))]
            ax.plot(offsets, values, "o", color=WITHIN, alpha=0.6, markersize=4)
        ax.set_xticks(range(len(stages)), stages)
    ax.set_ylabel("seconds")
    ax.set_title("Stage durations")
    return ax


def llm_latency(source: Source | Sequence[ExecutionRecord], ax: Axes | None = None) -> Axes:
    """Per model: LLM call latency and, for streamed calls, time to first token (boxes)."""
    latency: dict[str, list[float]] = {}
    ttft: dict[str, list[float]] = {}
    for execution in _all(source):
        for call in execution.llm_calls:
            model = call.model or "unknown"
            latency.setdefault(model, []).append(call.duration)
            if call.first_token is not None:
                ttft.setdefault(model, []).append(call.first_token)
    models = list(latency)
    ax = _axes(ax, (1.6 * len(models) + 3, 4))
    for offset, data, colour, label in ((-0.18, latency, WITHIN, "latency"),
                                        (0.18, ttft, "#e67e22", "time to first token")):
        present = [i for i, m in enumerate(models) if data.get(m)]
        if not present:
            continue
        parts = ax.boxplot([data[models[i]] for i in present],
                           positions=[i + offset for i in present], widths=0.3,
                           patch_artist=True)
        for box in parts["boxes"]:
            box.set_facecolor(colour)
        parts["boxes"][0].set_label(label)
    ax.set_xticks(range(len(models)), models)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylabel("seconds")
    ax.set_title("LLM latency by model")
    if models:
        ax.legend(loc="upper left", fontsize=8)
    return ax


def overview(source: RecorderSink) -> Figure:
    """The four main pictures of a recording in one figure."""
    fig, axes = plt.subplots(2, 2, figsize=(14, 8), layout="constrained")
    persona_timeline(source, axes[0][0])
    transition_matrix(source, axes[0][1])
    tokens_vs_budget(source, axes[1][0])
    stage_durations(source, axes[1][1])
    return fig
