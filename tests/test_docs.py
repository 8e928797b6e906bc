"""The README's promises that code can check."""

from __future__ import annotations

import re
from pathlib import Path

from hypertool_callbacks.catalog import CATALOG, markdown_table

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_metric_table_is_the_catalog() -> None:
    block = re.search(r"<!-- metrics:start -->\n(.*?)\n<!-- metrics:end -->", README, re.S)
    assert block is not None
    assert block.group(1) == markdown_table()
    assert len(CATALOG) == len({spec.name for spec in CATALOG})


def test_ci_runs_the_readme_test_command() -> None:
    assert "| set up and run the whole test suite | `bash .ci/run` |" in README
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111
    assert "| set up and run the demo | `bash scripts/demo.sh` |" in README
