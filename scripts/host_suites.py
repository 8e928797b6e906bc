"""Run the frameworks' own unit suites with and without ``HYPERTOOL_CALLBACKS=true``.

"Never break the host application", measured the strongest way there is: fetch the installed
langchain-core's and langgraph's source distributions (they ship their unit tests), run the
tests twice in this interpreter — once plain, once with global activation inherited by every
test process — and list the tests that pass without the plugin and fail with it.

    python scripts/host_suites.py                      # full suites of both packages
    python scripts/host_suites.py --slice              # the CI-sized slice (langchain-core)
    python scripts/host_suites.py --package langgraph -n 2

The test dependencies each suite needs are installed into a private ``--target`` directory
(put on ``PYTHONPATH`` of the test processes only; packages this interpreter already has are
removed from it, so the versions under test are the installed ones). Exit status 1 when a test
is broken by activation (beyond the documented, inherent ones), 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = ROOT / ".cache" / "host-suites"


@dataclass(frozen=True)
class Suite:
    package: str
    paths: tuple[str, ...]  # the full suite
    slice: tuple[str, ...]  # the CI-sized part
    # Test dependencies that are not needed offline or cannot be installed here.
    skip_requirements: tuple[str, ...] = ()
    # Differences that are inherent to any global hook, documented in README.
    inherent: frozenset[str] = field(default_factory=frozenset)


SUITES = {
    "langchain-core": Suite(
        package="langchain-core",
        paths=("tests/unit_tests",),
        slice=(
            "tests/unit_tests/callbacks",
            "tests/unit_tests/tracers",
            "tests/unit_tests/language_models",
            "tests/unit_tests/runnables/test_runnable_events_v1.py",
            "tests/unit_tests/runnables/test_runnable_events_v2.py",
            "tests/unit_tests/runnables/test_config.py",
            "tests/unit_tests/runnables/test_runnable.py::test_prompt_with_llm",
            "tests/unit_tests/runnables/test_runnable.py::test_prompt_with_llm_parser",
            "tests/unit_tests/runnables/test_runnable.py::test_stream_log_retriever",
            "tests/unit_tests/runnables/test_runnable.py::test_higher_order_lambda_runnable_async",
            "tests/unit_tests/runnables/test_runnable.py::test_map_astream",
            "tests/unit_tests/_api/test_deprecation.py",
        ),
        skip_requirements=("pytest-watcher", "pytest-codspeed"),
        # A group manager's handler list shows the global handler: every global hook
        # (LangSmith's tracer too) does this.
        inherent=frozenset({"tests.unit_tests.runnables.test_config::test_merge_config_callbacks"}),
    ),
    "langgraph": Suite(
        package="langgraph",
        paths=("tests",),
        slice=("tests/test_runnable.py", "tests/test_messages_state.py"),
        skip_requirements=(
            # Its conftest imports the postgres and redis clients (no servers needed to
            # import them; the tests that need a server fail both ways and do not count).
            "pytest-watcher", "pytest-cov", "pytest-dotenv", "py-spy", "pyperf", "uvloop",
            "langgraph-cli",
        ),
    ),
}


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def fetch_source(package: str, version: str, workdir: Path) -> Path:
    """The package's source distribution, downloaded once and unpacked."""
    src = workdir / "src" / f"{package}-{version}"
    if src.is_dir():
        return src
    sdists = workdir / "sdist"
    sdists.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
          f"{package}=={version}", "-d", str(sdists)])
    prefix = f"{package.replace('-', '_')}-{version}"
    archive = next(p for p in sdists.iterdir() if p.name.lower().startswith(prefix.lower()))
    unpacked = workdir / "src" / ".unpack"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (top,) = list(unpacked.iterdir())
    top.rename(src)
    shutil.rmtree(unpacked)
    return src


def _requirement_name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def test_requirements(src: Path, suite: Suite) -> list[str]:
    """The suite's ``test`` dependency group, minus what is skipped or already installed."""
    groups = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8")).get(
        "dependency-groups", {})
    wanted: list[str] = []
    for item in groups.get("test", []):
        if not isinstance(item, str):
            continue  # {include-group = ...}: the test group of these packages has none
        name = _requirement_name(item)
        if name in suite.skip_requirements or name == suite.package:
            continue
        wanted.append(item)
    return wanted


def _installed_here(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def install_test_deps(src: Path, suite: Suite, workdir: Path) -> Path:
    """Install the suite's test dependencies into a private target directory."""
    target = workdir / "deps" / src.name
    marker = target / ".complete"
    if marker.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    requirements = test_requirements(src, suite)
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "--target", str(target),
          *requirements])
    # Keep only what this interpreter lacks: the versions under test are the installed ones.
    for dist in md.distributions(path=[str(target)]):
        name = dist.metadata["Name"]
        if name and _installed_here(name):
            for file in dist.files or ():
                path = target / file
                if path.is_file():
                    path.unlink()
    for directory in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    marker.write_text("ok\n", encoding="utf-8")
    return target


def run_suite(src: Path, deps: Path, paths: tuple[str, ...], activated: bool, report: Path,
              workers: int, timeout: int) -> dict[str, str]:
    """Outcome per test id (``module::name``): passed, failed, error or skipped."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "LANGFUSE_", "OTEL_", "LANGSMITH_",
                                "LANGCHAIN_"))}
    env["PYTHONPATH"] = str(deps)
    if activated:
        env["HYPERTOOL_CALLBACKS"] = "true"
    cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
           f"--junitxml={report}", f"--timeout={timeout}", "-o", "junit_family=xunit1"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    print("+", ("HYPERTOOL_CALLBACKS=true " if activated else "") + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    if not report.exists():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"pytest wrote no report (exit {done.returncode})")
    return parse_junit(report)


def parse_junit(report: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        outcomes[test_id] = outcome
    return outcomes


def compare(plain: dict[str, str], activated: dict[str, str]) -> list[str]:
    """Tests that pass without the plugin and do not pass with it."""
    return sorted(test for test, outcome in plain.items()
                  if outcome == "passed" and activated.get(test, "missing") != "passed"
                  and activated.get(test) != "skipped")


def node_id(test_id: str, src: Path) -> str:
    """``a.b.test_m.TestC::name`` back to pytest's ``a/b/test_m.py::TestC::name``."""
    classname, name = test_id.split("::", 1)
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = Path(*parts[:cut]).with_suffix(".py")
        if (src / module).is_file():
            return "::".join([module.as_posix(), *parts[cut:], name])
    return test_id


def confirm(src: Path, deps: Path, broken: list[str], report: Path, timeout: int,
            attempts: int = 3) -> list[str]:
    """Run the differing tests again, alone and serially: a break is a test that passes without
    the plugin and fails with it every time. A timing test that lost its race on a loaded
    machine (``assert 0.1 < elapsed < 0.2``) is not one."""
    for attempt in range(attempts):
        if not broken:
            break
        ids = tuple(node_id(test, src) for test in broken)
        stem = f"{report.name}-{attempt}"
        plain = run_suite(src, deps, ids, False, report.with_name(stem + ".plain.xml"), 1,
                          timeout)
        active = run_suite(src, deps, ids, True, report.with_name(stem + ".activated.xml"), 1,
                           timeout)
        broken = [test for test in broken if test in compare(plain, active)]
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", action="append", choices=sorted(SUITES),
                        help="suite to run (repeatable; default: langchain-core, langgraph; "
                             "with --slice: langchain-core)")
    parser.add_argument("--slice", action="store_true", help="the CI-sized part only")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("-n", "--workers", type=int, default=1, help="pytest-xdist workers")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per test")
    args = parser.parse_args(argv)
    packages = args.package or (["langchain-core"] if args.slice else sorted(SUITES))
    broken_total = 0
    for package in packages:
        suite = SUITES[package]
        version = md.version(package)
        try:
            src = fetch_source(package, version, args.workdir)
            deps = install_test_deps(src, suite, args.workdir)
            paths = suite.slice if args.slice else suite.paths
            reports = args.workdir / "reports"
            reports.mkdir(parents=True, exist_ok=True)
            base = reports / f"{package}-{'slice' if args.slice else 'full'}"
            plain = run_suite(src, deps, paths, False, base.with_suffix(".plain.xml"),
                              args.workers, args.timeout)
            active = run_suite(src, deps, paths, True, base.with_suffix(".activated.xml"),
                               args.workers, args.timeout)
            broken = compare(plain, active)
            flaky = []
            if broken:
                confirmed = confirm(src, deps, broken, base.with_name(base.name + "-rerun"),
                                    args.timeout)
                flaky = [test for test in broken if test not in confirmed]
                broken = confirmed
        except (subprocess.CalledProcessError, RuntimeError, StopIteration, OSError) as exc:
            print(f"{package} {version}: the run failed: {exc}", file=sys.stderr)
            return 2
        unexpected = [t for t in broken if t not in suite.inherent]
        passed = sum(1 for o in plain.values() if o == "passed")
        print(f"\n{package} {version}: {len(plain)} tests, {passed} pass without the plugin; "
              f"broken by HYPERTOOL_CALLBACKS=true: {len(unexpected)}"
              + (f" (+{len(broken) - len(unexpected)} inherent, documented)"
                 if len(broken) > len(unexpected) else ""))
        for test in broken:
            note = "  (inherent)" if test in suite.inherent else ""
            print(f"  BROKEN {test}: {active.get(test, 'missing')}{note}")
        for test in flaky:
            print(f"  differed once, passed both ways when run again: {test}")
        broken_total += len(unexpected)
    return 1 if broken_total else 0


if __name__ == "__main__":
    sys.exit(main())
