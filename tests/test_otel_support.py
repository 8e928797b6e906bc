"""Helpers shared by the ``test_otel_*`` modules (no tests here).

Every test gets a private SDK ``TracerProvider`` writing to an in-memory exporter; the global
provider is never set in-process (subprocess tests do that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable


class Spans:
    """A private tracer provider and what it recorded."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        found = [s for s in self.finished if s.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {self.names()}"
        return found[0]

    def all_named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished if s.name == name]

    def names(self) -> list[str]:
        return [s.name for s in self.finished]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        matches = [s for s in self.finished if s.context.span_id == span.parent.span_id]
        return matches[0] if matches else None

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.finished
                if s.parent is not None and s.parent.span_id == span.context.span_id]

    def descendants(self, span: ReadableSpan) -> list[ReadableSpan]:
        found: list[ReadableSpan] = []
        todo = [span]
        while todo:
            kids = self.children(todo.pop())
            found.extend(kids)
            todo.extend(kids)
        return found


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def run_python(code_or_args: str | Sequence[str], env: dict[str, str] | None = None,
               timeout: float = 60.0, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` (or ``python *args``) in a clean-ish environment."""
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("OTEL_", "HYPERTOOL_", "LANGFUSE_"))}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run([PYTHON, *args], env=full_env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)
