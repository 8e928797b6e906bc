"""Langfuse's environment variables, readable without importing the Langfuse SDK.

Start-up decides from these whether a Langfuse sink is wanted at all: with no keys the SDK
(and its lazily built pydantic models) is never imported into the app's process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_PUBLIC_KEY = "LANGFUSE_PUBLIC_KEY"
ENV_SECRET_KEY = "LANGFUSE_SECRET_KEY"
LANGFUSE_NO_KEYS = ("hypertool: Langfuse traces off: set LANGFUSE_PUBLIC_KEY and "
                    "LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL) to send them")


def keys_configured(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(ENV_PUBLIC_KEY)) and bool(env.get(ENV_SECRET_KEY))
