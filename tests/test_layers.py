"""The context layer and the sinks are framework-neutral (issue 16: "nothing in ``context/`` or
``sinks/`` may import llama_index"): only the adapters know LangChain, LangGraph or LlamaIndex,
so a new framework reuses the tracker and every sink unchanged."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hypertool_callbacks"
NEUTRAL = sorted([*(PACKAGE / "context").glob("*.py"), *(PACKAGE / "sinks").glob("*.py"),
                  PACKAGE / "events.py"])
FRAMEWORKS = ("llama_index", "langchain", "langgraph")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_check_sees_imports_anywhere_in_a_module() -> None:
    assert NEUTRAL and all(path.is_file() for path in NEUTRAL)
    adapter = imported_modules(PACKAGE / "adapters" / "llamaindex_units.py")
    assert any(m.startswith("llama_index") for m in adapter)


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_framework_import(path: Path) -> None:
    framework = sorted(m for m in imported_modules(path) if m.startswith(FRAMEWORKS))
    assert framework == []
