"""Inputs and outputs for Langfuse: serialised once here and cut to a size.

The SDK passes a string through as is and JSON-encodes anything else (then scans it for
media); handing it a size-capped string bounds what it does per observation, and what goes
over the wire, whatever the app's prompts weigh. Langfuse parses a string that is JSON, so
content that fits is shown as structure, as before; cut content is shown as text.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Callable
from typing import Any

MARKER = "...[truncated by hypertool: {total} chars, first {kept} kept]"


def _plain(value: Any) -> Any:
    """``json.dumps`` fallback for what it cannot encode: close to the SDK's own serializer
    (pydantic models, LangChain messages and documents as their fields)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def as_text(value: Any) -> str:
    """The JSON text of ``value`` (a string stays itself)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError, RecursionError):  # circular, or a model_dump that fails
        return str(value)


def capped(value: Any, max_chars: int) -> str:
    """``value`` as text of at most ``max_chars`` characters, plus a marker when cut.

    Example::

        capped({"q": "x" * 10_000}, 20)
        # '{"q": "xxxxxxxxxxxxx...[truncated by hypertool: 10009 chars, first 20 kept]'
    """
    text = as_text(value)
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + MARKER.format(total=len(text), kept=max_chars)


def text_mask(mask: Callable[[str], str]) -> Callable[[Any], Any]:
    """A Langfuse mask from a text mask (the one ``instrument(mask=...)`` takes for spans):
    structured content is masked as its JSON text."""

    def apply(value: Any) -> Any:
        return mask(as_text(value))

    return apply
