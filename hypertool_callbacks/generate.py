"""Writes (or checks) the generated files: ``alerts/`` and ``dashboards/`` from the catalog."""

from __future__ import annotations

from pathlib import Path

from hypertool_callbacks.alerts import DEFAULTS, AlertSettings, rules_yaml
from hypertool_callbacks.runbook import runbook_markdown


def outputs(settings: AlertSettings = DEFAULTS) -> dict[str, str]:
    """Relative path -> content of every generated file."""
    from hypertool_callbacks.dashboards_panels import dashboard_files

    files = {"alerts/hypertool-rules.yml": rules_yaml(settings),
             "alerts/RUNBOOK.md": runbook_markdown(settings)}
    files.update(dashboard_files())
    return files


def write(root: Path, settings: AlertSettings = DEFAULTS) -> list[Path]:
    written = []
    for relative, text in outputs(settings).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(root: Path, settings: AlertSettings = DEFAULTS) -> list[str]:
    """Generated files under ``root`` that differ from the generator's output."""
    return [relative for relative, text in outputs(settings).items()
            if not (root / relative).is_file()
            or (root / relative).read_text(encoding="utf-8") != text]
