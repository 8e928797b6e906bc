"""hypertool-callbacks: persona- and stage-aware observability for multi-agent LLM apps.

Importing the package imports nothing else (no pydantic, no framework): every public name is
loaded on first use, so the start-up hook costs next to nothing in processes that never use a
framework. If ``HYPERTOOL_CALLBACKS`` is on, importing the package also starts activation (it
usually already ran at interpreter start-up).
"""

from __future__ import annotations

import sys

from hypertool_callbacks._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing would cost start-up time
if TYPE_CHECKING:
    from typing import Any

    from hypertool_callbacks.adapters.langchain import HypertoolCallbackHandler
    from hypertool_callbacks.config import Config, load_config
    from hypertool_callbacks.errors import ConfigError, CostBudgetExceeded, TokenBudgetExceeded
    from hypertool_callbacks.exposition import serve_metrics
    from hypertool_callbacks.runtime import (
        build_tracker,
        get_tracker,
        instrument,
        instrumented,
        record,
        set_tracker,
        uninstrument,
    )
    from hypertool_callbacks.runtime import (
        register_env_hook as register_env_hook,
    )
    from hypertool_callbacks.sinks.recorder import RecorderSink
    from hypertool_callbacks.summary import Summary


__all__ = [
    "Config",
    "ConfigError",
    "CostBudgetExceeded",
    "HypertoolCallbackHandler",
    "RecorderSink",
    "Summary",
    "TokenBudgetExceeded",
    "__version__",
    "build_tracker",
    "get_tracker",
    "instrument",
    "instrumented",
    "load_config",
    "record",
    "serve_metrics",
    "set_tracker",
    "uninstrument",
]

_LAZY = {
    "HypertoolCallbackHandler": "hypertool_callbacks.adapters.langchain",
    "Config": "hypertool_callbacks.config",
    "load_config": "hypertool_callbacks.config",
    "ConfigError": "hypertool_callbacks.errors",
    "TokenBudgetExceeded": "hypertool_callbacks.errors",
    "CostBudgetExceeded": "hypertool_callbacks.errors",
    "serve_metrics": "hypertool_callbacks.exposition",
    "build_tracker": "hypertool_callbacks.runtime",
    "get_tracker": "hypertool_callbacks.runtime",
    "instrument": "hypertool_callbacks.runtime",
    "instrumented": "hypertool_callbacks.runtime",
    "register_env_hook": "hypertool_callbacks.runtime",
    "set_tracker": "hypertool_callbacks.runtime",
    "uninstrument": "hypertool_callbacks.runtime",
    "record": "hypertool_callbacks.runtime",
    "RecorderSink": "hypertool_callbacks.sinks.recorder",
    "Summary": "hypertool_callbacks.summary",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hypertool_callbacks' has no attribute {name!r}")
    __import__(module)
    value = getattr(sys.modules[module], name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _activate_from_env() -> None:
    # An app that sets the variable itself before importing the package is activated too.
    from hypertool_callbacks import _autoload

    _autoload.activate()


_activate_from_env()
