"""A per-persona table of a recording: the notebook equivalent of reading ``/metrics``.

``Summary`` renders as an HTML table when a notebook cell evaluates it (``_repr_html_``) and
as aligned plain text elsewhere (``repr``/``str``). No dependency beyond the standard library.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from hypertool_callbacks.sinks.recorder import ExecutionRecord, RecorderSink

_COLUMNS = ("persona", "llm calls", "tool calls", "errors", "input tokens", "output tokens",
            "seconds", "budget", "remaining")


@dataclass(frozen=True, slots=True)
class PersonaRow:
    persona: str
    llm_calls: int = 0
    tool_calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    budget: int | None = None
    remaining: int | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def overrun(self) -> bool:
        return self.remaining is not None and self.remaining < 0

    def cells(self) -> tuple[str, ...]:
        return (self.persona, str(self.llm_calls), str(self.tool_calls), str(self.errors),
                str(self.input_tokens), str(self.output_tokens), f"{self.seconds:.2f}",
                "" if self.budget is None else str(self.budget),
                "" if self.remaining is None else str(self.remaining))


@dataclass(frozen=True, slots=True)
class Summary:
    """Personas x calls / tokens / acting time / budget over some recorded executions.

    Example::

        with hypertool_callbacks.record() as rec:
            app.invoke(...)
        rec.summary()            # a table in Jupyter
        rec.summary().rows[0]    # PersonaRow(persona='planner', llm_calls=1, ...)
    """

    rows: tuple[PersonaRow, ...]
    executions: int

    @classmethod
    def of(cls, source: RecorderSink | ExecutionRecord | Iterable[ExecutionRecord]) -> Summary:
        budgets = source.budgets if isinstance(source, RecorderSink | ExecutionRecord) else {}
        if isinstance(source, RecorderSink):
            executions = source.executions
        elif isinstance(source, ExecutionRecord):
            executions = [source]
        else:
            executions = list(source)
            for execution in executions:
                budgets = {**budgets, **execution.budgets}
        acc: dict[str, dict[str, float]] = {}

        def row(persona: str) -> dict[str, float]:
            return acc.setdefault(persona, dict.fromkeys(
                ("llm", "tool", "errors", "input", "output", "seconds"), 0.0))

        for execution in executions:
            for interval in execution.intervals:
                row(interval.persona)["seconds"] += interval.seconds
            for run in execution.runs:
                if run.kind not in ("llm", "tool") or run.persona == "unknown":
                    continue
                r = row(run.persona)
                r["llm" if run.kind == "llm" else "tool"] += 1
                r["errors"] += run.status == "error"
                r["input"] += run.input_tokens
                r["output"] += run.output_tokens
        for persona in budgets:
            row(persona)
        rows = []
        for persona, r in acc.items():
            status = budgets.get(persona)
            rows.append(PersonaRow(
                persona, int(r["llm"]), int(r["tool"]), int(r["errors"]), int(r["input"]),
                int(r["output"]), r["seconds"],
                None if status is None else int(status.limit),
                None if status is None else int(status.remaining)))
        return cls(tuple(rows), len(executions))

    def row(self, persona: str) -> PersonaRow:
        for row in self.rows:
            if row.persona == persona:
                return row
        raise KeyError(persona)

    def __repr__(self) -> str:
        table = [_COLUMNS, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
        lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                           for i, cell in enumerate(line)).rstrip() for line in table]
        return f"Summary of {self.executions} execution(s)\n" + "\n".join(lines)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
        body = []
        for row in self.rows:
            style = ' style="color:#c0392b;font-weight:bold"' if row.overrun else ""
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in row.cells())
            body.append(f"<tr{style}>{cells}</tr>")
        return (f"<table><caption>Summary of {self.executions} execution(s)</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
