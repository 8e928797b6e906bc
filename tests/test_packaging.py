"""The extras users install (issue 16: ``[llamaindex]``, and ``[all]`` with every framework and
backend), read from the installed distribution's metadata, as pip reads them."""

from __future__ import annotations

import importlib.metadata as md
import re

# Extras that are not a framework or backend of the user's app.
NOT_FOR_USERS = {"all", "bench", "demo", "test"}


def _requirements(extra: str) -> set[str]:
    found = set()
    for requirement in md.metadata("hypertool-callbacks").get_all("Requires-Dist") or []:
        name, _, marker = requirement.partition(";")
        if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", marker):
            found.add(re.split(r"[<>=!~\[ ]", name.strip(), maxsplit=1)[0].lower())
    return found


def test_llamaindex_extra_installs_llama_index_core() -> None:
    assert _requirements("llamaindex") == {"llama-index-core"}


def test_all_extra_is_every_framework_and_backend() -> None:
    extras = set(md.metadata("hypertool-callbacks").get_all("Provides-Extra") or [])
    assert {"all", "llamaindex", "langchain", "langgraph", "otel", "langfuse"} <= extras
    everything = set().union(*(_requirements(e) for e in extras - NOT_FOR_USERS))
    assert {"langchain-core", "langgraph", "llama-index-core", "opentelemetry-sdk",
            "langfuse"} <= everything
    assert _requirements("all") == everything
