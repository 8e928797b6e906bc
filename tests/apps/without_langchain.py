"""Runs a script as if LangChain were not installed: ``python without_langchain.py [--otel]
script.py``. Its imports fail and its distributions are not found (as in a venv that has only
llama-index-core); ``--otel`` first does what ``opentelemetry-instrument`` does at start-up
(``initialize()``: the SDK from OTEL_* variables, then every instrumentor entry point)."""

import importlib.abc
import importlib.metadata
import runpy
import sys

HIDDEN = ("langchain", "langgraph")


class _NoLangChain(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname.split(".")[0].startswith(HIDDEN):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _hide(function):  # type: ignore[no-untyped-def]
    def wrapper(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(name).replace("_", "-").startswith(HIDDEN):
            raise importlib.metadata.PackageNotFoundError(name)
        return function(name, *args, **kwargs)
    return wrapper


for loaded in [m for m in sys.modules if m.split(".")[0].startswith(HIDDEN)]:
    raise SystemExit(f"{loaded} was imported before the app started")
sys.meta_path.insert(0, _NoLangChain())
importlib.metadata.version = _hide(importlib.metadata.version)
importlib.metadata.distribution = _hide(importlib.metadata.distribution)
args = sys.argv[1:]
if args[0] == "--otel":
    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize()
    args = args[1:]
sys.argv = args
runpy.run_path(args[0], run_name="__main__")
