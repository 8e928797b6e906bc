"""How much text a prompt or completion holds, for estimating the tokens of a call whose
provider reported no usage (``estimate_missing_usage``)."""

from __future__ import annotations

from typing import Any


def text_size(value: Any, depth: int = 0) -> int:
    """Characters of text in a prompt/completion structure, bounded in depth and size."""
    if depth > 4:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_size(v, depth + 1) for v in list(value.values())[:100])
    if isinstance(value, list | tuple):
        return sum(text_size(v, depth + 1) for v in value[:100])
    generations = getattr(value, "generations", None)  # an LLM result
    if isinstance(generations, list):
        return text_size(generations, depth + 1)
    content = getattr(value, "content", None)
    if content is not None:
        return text_size(content, depth + 1)
    text = getattr(value, "text", None)
    return len(text) if isinstance(text, str) else 0
