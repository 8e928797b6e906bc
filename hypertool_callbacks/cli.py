"""``hypertool-callbacks``: demo, config check, metric catalog, and the zero-code launcher."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from hypertool_callbacks._env import ENV_ACTIVATE
from hypertool_callbacks.config import config_warnings, load_config, read_file
from hypertool_callbacks.errors import ConfigError


def _config_check(path: str) -> int:
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{path}: OK")
    for warning in config_warnings(read_file(path)):
        print(f"  warning: {warning}")
    for name, persona in config.personas.items():
        budget = (f", budget {persona.budget_tokens} tokens per {persona.budget_scope}"
                  if persona.budget_tokens else "")
        print(f"  persona {name}{budget}")
    for name in config.stages:
        print(f"  stage {name}")
    for name in config.gates:
        print(f"  gate {name}")
    return 0


def _run(command: Sequence[str]) -> int:
    """Run an unmodified program with hypertool-callbacks active (like opentelemetry-instrument)."""
    if not command:
        print("usage: hypertool-callbacks run [--] PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    if command[0] == "--":
        command = command[1:]
    env = dict(os.environ)
    env.setdefault(ENV_ACTIVATE, "true")
    bootstrap = str(Path(__file__).parent / "_bootstrap")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (bootstrap, env.get("PYTHONPATH")) if p)
    program = command[0]
    if os.sep not in program and shutil.which(program, path=env.get("PATH")) is None:
        print(f"hypertool-callbacks run: {program}: command not found", file=sys.stderr)
        return 127
    try:
        os.execvpe(program, list(command), env)
    except OSError as exc:
        print(f"hypertool-callbacks run: cannot run {program}: {exc.strerror or exc}",
              file=sys.stderr)
        return 126 if isinstance(exc, PermissionError) else 127
    return 0  # not reached


def _generate(out: Path, check: bool, pairs: Sequence[str]) -> int:
    from hypertool_callbacks import generate
    from hypertool_callbacks.alerts import settings_from

    try:
        settings = settings_from(pairs)
    except ValueError as exc:
        print(f"hypertool-callbacks generate: {exc}", file=sys.stderr)
        return 2
    if check:
        stale = generate.stale(out, settings)
        for relative in stale:
            print(f"{out / relative}: differs from the generator (run without --check)")
        return 1 if stale else 0
    for path in generate.write(out, settings):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hypertool-callbacks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the offline multi-persona demo, serving /metrics")
    demo.add_argument("--port", type=int, default=None,
                      help="metrics port (default 9464, a free one if that is busy; 0: any)")
    demo.add_argument("--addr", default="127.0.0.1", help="metrics bind address")
    demo.add_argument("--iterations", type=int, default=0, help="workflow runs (0: forever)")
    demo.add_argument("--keep-serving", action="store_true",
                      help="after --iterations N, keep serving /metrics until Ctrl-C")
    demo.add_argument("--interval", type=float, default=2.0, help="seconds between runs")
    demo.add_argument("--scenario", choices=["all", "pipeline", "team"], default="all")
    demo.add_argument("--spans", choices=["file", "console", "none"], default="file",
                      help="where OpenTelemetry spans go (default: a JSON-lines file)")
    demo.add_argument("--spans-file", default=None,
                      help="JSON-lines file for spans (default: hypertool-spans.jsonl under "
                      "$XDG_STATE_HOME/hypertool-callbacks, ~/.local/state by default)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file")

    sub.add_parser("metrics", help="print the metric catalog (Markdown)")
    sub.add_parser("status", help="what activation would do here: resolved settings and where "
                   "each comes from, frameworks found, backends reachable")

    gen = sub.add_parser("generate", help="write dashboards/*.json, alerts/hypertool-rules.yml "
                         "and alerts/RUNBOOK.md from the metric catalog")
    gen.add_argument("--out", default=".", help="directory to write into (default: here)")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if the files differ from the generator's")
    gen.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="alert threshold/window, e.g. gate_failure_ratio=0.3 job=my-app")

    run = sub.add_parser("run", help="run a program with hypertool-callbacks active")
    run.add_argument("program", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.command == "config":
        return _config_check(args.file)
    if args.command == "metrics":
        from hypertool_callbacks.catalog import markdown_table

        print(markdown_table())
        return 0
    if args.command == "run":
        return _run(args.program)
    if args.command == "status":
        from hypertool_callbacks.status import report

        return report(sys.stdout)
    if args.command == "generate":
        return _generate(Path(args.out), args.check, args.set)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hypertool_callbacks.demo.main import run_demo

    return run_demo(
        port=args.port, addr=args.addr, iterations=args.iterations, interval=args.interval,
        scenario=args.scenario, spans=args.spans, spans_file=args.spans_file,
        keep_serving=args.keep_serving,
    )


if __name__ == "__main__":
    sys.exit(main())
