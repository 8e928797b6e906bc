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


def test_readme_configuration_example_is_valid(tmp_path: Path) -> None:
    from hypertool_callbacks.config import load_config

    block = re.search(r"## Configuration.*?```toml\n(.*?)```", README, re.S)
    assert block is not None
    (tmp_path / "hypertool.toml").write_text(block.group(1))
    config = load_config(environ={}, cwd=tmp_path)
    assert config.personas["reviewer"].budget_tokens == 50000
    assert set(config.stages) == {"verification"} and set(config.gates) == {"code-review"}
