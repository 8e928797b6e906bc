#!/usr/bin/env bash
# One command from a fresh clone to a running demo: creates .venv, installs, runs the demo.
# Extra arguments go to `hypertool-callbacks demo` (e.g. --iterations 3 --port 0).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[demo,otel]'
exec .venv/bin/hypertool-callbacks demo "$@"
