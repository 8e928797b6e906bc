"""hypertool-callbacks: persona- and stage-aware observability for multi-agent LLM apps.

Importing the package registers the ``HYPERTOOL_CALLBACKS`` env-var hook with LangChain (when
LangChain is installed); everything else is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypertool_callbacks._version import __version__
from hypertool_callbacks.config import Config, load_config
from hypertool_callbacks.errors import ConfigError, TokenBudgetExceeded
from hypertool_callbacks.exposition import serve_metrics
from hypertool_callbacks.runtime import (
    build_tracker,
    get_tracker,
    instrument,
    instrumented,
    register_env_hook,
    set_tracker,
    uninstrument,
)

if TYPE_CHECKING:
    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler


__all__ = [
    "Config",
    "ConfigError",
    "HypertoolCallbackHandler",
    "TokenBudgetExceeded",
    "__version__",
    "build_tracker",
    "get_tracker",
    "instrument",
    "instrumented",
    "load_config",
    "serve_metrics",
    "set_tracker",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    # The LangChain adapter imports langchain-core: only when asked for.
    if name == "HypertoolCallbackHandler":
        from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler

        return HypertoolCallbackHandler
    raise AttributeError(f"module 'hypertool_callbacks' has no attribute {name!r}")


register_env_hook()
