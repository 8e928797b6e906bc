"""The run tree of one execution as text (``repr``) or HTML (``_repr_html_``): no matplotlib."""

from __future__ import annotations

import html
from dataclasses import dataclass

from hypertool_callbacks.sinks.recorder import ExecutionRecord, RecorderSink, RunRecord

# Plumbing runs LangChain reports inside every chain: hidden unless asked for.
PLUMBING = frozenset({"RunnableSequence", "ChatPromptTemplate", "RunnableCallable",
                      "RunnableLambda", "RunnableParallel", "StrOutputParser", "ChannelWrite",
                      "ChannelRead", "RunnableAssign", "PromptTemplate"})


def _execution(source: RecorderSink | ExecutionRecord) -> ExecutionRecord:
    return source.last() if isinstance(source, RecorderSink) else source


@dataclass(frozen=True, slots=True)
class SpanTree:
    """One execution's runs as an indented tree: name, kind, persona/stage, model, tokens,
    duration, status, gate result."""

    execution: ExecutionRecord
    plumbing: bool = False

    def _visible(self, run: RunRecord) -> bool:
        return self.plumbing or run.name not in PLUMBING or run.kind != "chain"

    def lines(self) -> list[tuple[int, RunRecord]]:
        """(depth, run) in tree order; hidden plumbing runs lift their children up a level."""
        out: list[tuple[int, RunRecord]] = []
        kids: dict[int | None, list[RunRecord]] = {}
        for run in self.execution.runs:
            kids.setdefault(run.parent, []).append(run)

        def walk(run: RunRecord, depth: int) -> None:
            visible = self._visible(run)
            if visible:
                out.append((depth, run))
            for child in kids.get(run.index, []):
                walk(child, depth + 1 if visible else depth)

        if self.execution.runs:
            walk(self.execution.root, 0)
        return out

    @staticmethod
    def describe(run: RunRecord) -> str:
        parts = [f"{run.name} [{run.kind}]"]
        if run.persona != "unknown":
            parts.append(f"persona={run.persona}")
        if run.stage != "unknown" and run.introduces_stage:
            parts.append(f"stage={run.stage}")
        if run.kind == "llm" and run.model:
            parts.append(f"model={run.model}")
        if run.tokens_counted:
            parts.append(f"tokens={run.input_tokens}+{run.output_tokens}")
        if run.first_token is not None:
            parts.append(f"ttft={run.first_token:.2f}s")
        if run.gate is not None and run.gate_result is not None:
            parts.append(f"gate {run.gate}={run.gate_result}")
        if run.handoff_to:
            parts.append("handoff->" + ",".join(run.handoff_to))
        parts.append(f"{run.duration:.2f}s")
        if run.status != "ok":
            parts.append(run.status.upper())
        return "  ".join(parts)

    def __repr__(self) -> str:
        return "\n".join("  " * depth + self.describe(run) for depth, run in self.lines())

    __str__ = __repr__

    def _repr_html_(self) -> str:
        rows = []
        for depth, run in self.lines():
            colour = "#c0392b" if run.status not in ("ok", "running") or run.gate_result == "fail" \
                else "inherit"
            rows.append(f'<div style="padding-left:{depth * 1.5}em;color:{colour}">'
                        f"{html.escape(self.describe(run))}</div>")
        return '<div style="font-family:monospace;white-space:pre">' + "".join(rows) + "</div>"


def span_tree(source: RecorderSink | ExecutionRecord, *, plumbing: bool = False) -> SpanTree:
    """The run tree of one execution (the recorder's last one); ``plumbing=True`` keeps
    LangChain's internal runs (prompt templates, sequences)."""
    return SpanTree(_execution(source), plumbing)
