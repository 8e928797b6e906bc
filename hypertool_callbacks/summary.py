"""A per-persona table of a recording: the notebook equivalent of reading ``/metrics``.

``Summary`` renders as an HTML table when a notebook cell evaluates it (``_repr_html_``) and
as aligned plain text elsewhere (``repr``/``str``). No dependency beyond the standard library.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from hypertool_callbacks.context.records import BudgetStatus
from hypertool_callbacks.sinks.recorded import ExecutionRecord


class Recording(Protocol):
    """What a summary reads from a recorder (``sinks/recorder.py``'s ``RecorderSink``)."""

    @property
    def executions(self) -> list[ExecutionRecord]: ...

    @property
    def budgets(self) -> dict[str, BudgetStatus]: ...

_COLUMNS = ("persona", "llm calls", "tool calls", "errors", "input tokens", "output tokens",
            "cost usd", "seconds", "budget", "remaining")


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
    cost_usd: float | None = None  # None: no priced call

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def overrun(self) -> bool:
        return self.remaining is not None and self.remaining < 0

    def cells(self) -> tuple[str, ...]:
        return (self.persona, str(self.llm_calls), str(self.tool_calls), str(self.errors),
                str(self.input_tokens), str(self.output_tokens),
                "" if self.cost_usd is None else f"{self.cost_usd:.4f}", f"{self.seconds:.2f}",
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
    def of(cls, source: Recording | ExecutionRecord | Iterable[ExecutionRecord]) -> Summary:
        budgets: dict[str, Any] = {}
        if isinstance(source, ExecutionRecord):
            executions, budgets = [source], source.budgets
        elif hasattr(source, "executions"):  # a recorder (not imported: it imports us)
            recorder = cast(Recording, source)
            executions, budgets = recorder.executions, recorder.budgets
        else:
            executions = list(source)
            for execution in executions:
                budgets = {**budgets, **execution.budgets}
        acc: dict[str, dict[str, float]] = {}

        def row(persona: str) -> dict[str, float]:
            return acc.setdefault(persona, dict.fromkeys(
                ("llm", "tool", "errors", "input", "output", "seconds"), 0.0))

        costs: dict[str, float] = {}

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
                if run.cost_usd is not None:
                    costs[run.persona] = costs.get(run.persona, 0.0) + run.cost_usd
        for persona in budgets:
            row(persona)
        rows = []
        for persona, r in acc.items():
            status = budgets.get(persona)
            rows.append(PersonaRow(
                persona, int(r["llm"]), int(r["tool"]), int(r["errors"]), int(r["input"]),
                int(r["output"]), r["seconds"],
                None if status is None else int(status.limit),
                None if status is None else int(status.remaining), costs.get(persona)))
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


@dataclass(frozen=True, slots=True)
class MetricsTable:
    """The non-zero ``hypertool_*`` samples of a registry (histograms as ``_count``/``_sum``):
    what a scrape of ``/metrics`` would show, as a table.

    Example::

        MetricsTable.of(registry)                       # every hypertool series
        MetricsTable.of(registry, "hypertool_persona")  # names starting with a prefix (or any
                                                        # of a tuple of prefixes)
    """

    rows: tuple[tuple[str, str, float], ...]  # (sample name, labels, value)

    @classmethod
    def of(cls, registry: Any, prefix: str | tuple[str, ...] = "hypertool_") -> MetricsTable:
        rows = []
        for family in registry.collect():
            for sample in family.samples:
                name = sample.name
                if (not name.startswith(prefix) or not sample.value
                        or name.endswith(("_bucket", "_created"))):
                    continue
                labels = ", ".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                rows.append((name, labels, float(sample.value)))
        return cls(tuple(sorted(rows)))

    def value(self, name: str, **labels: str) -> float:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return sum(v for n, lab, v in self.rows if n == name and lab == wanted)

    @staticmethod
    def _number(value: float) -> str:
        return str(int(value)) if value == int(value) else f"{value:.6g}"

    def __repr__(self) -> str:
        width = max((len(n) for n, _, _ in self.rows), default=0)
        return "\n".join(f"{n.ljust(width)}  {self._number(v):>8}  {{{lab}}}"
                         for n, lab, v in self.rows)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td><code>{html.escape(n)}</code></td><td>{html.escape(lab)}</td>"
                       f"<td>{self._number(v)}</td></tr>" for n, lab, v in self.rows)
        return ("<table><thead><tr><th>sample</th><th>labels</th><th>value</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")
