"""langchain-core's own tests, run with and without global activation (issue 15).

The CI-sized slice of ``scripts/host_suites.py``: the callback, tracer, streaming and
language-model modules of the installed langchain-core's unit suite plus the tests that
activation once broke. Every test that passes without the plugin must pass with it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "host_suites.py"


def _script() -> object:
    spec = importlib.util.spec_from_file_location("host_suites", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_test_broken_by_activation_is_one_that_passed_without_it() -> None:
    hs = _script()
    plain = {"m::a": "passed", "m::b": "passed", "m::c": "failed", "m::d": "passed",
             "m::e": "passed"}
    active = {"m::a": "passed", "m::b": "failed", "m::c": "failed", "m::d": "error",
              "m::e": "skipped"}
    assert hs.compare(plain, active) == ["m::b", "m::d"]  # type: ignore[attr-defined]
    assert hs.compare(plain, {}) == ["m::a", "m::b", "m::d", "m::e"]  # type: ignore[attr-defined]


def test_junit_ids_map_back_to_pytest_node_ids(tmp_path: Path) -> None:
    hs = _script()
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_x.py").write_text("", encoding="utf-8")
    node_id = hs.node_id  # type: ignore[attr-defined]
    assert node_id("tests.unit.test_x::test_y[a-b]", tmp_path) == \
        "tests/unit/test_x.py::test_y[a-b]"
    assert node_id("tests.unit.test_x.TestZ::test_y", tmp_path) == \
        "tests/unit/test_x.py::TestZ::test_y"


@pytest.mark.timeout(1200)
def test_langchain_core_slice_passes_with_activation() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--slice", "-n", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1150)
    summary = [line for line in done.stdout.splitlines() if line.startswith("langchain-core")]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert summary, done.stdout[-3000:]
    tests = int(summary[0].split(": ", 1)[1].split(" tests", 1)[0])
    assert tests > 500  # the slice really ran
    assert "broken by HYPERTOOL_CALLBACKS=true: 0" in summary[0]
