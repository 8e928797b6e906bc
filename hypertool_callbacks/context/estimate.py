"""Token counts the tracker derives: an estimate for a call whose provider reported no usage
(``estimate_missing_usage``), and which call of a nested pair counts the tokens."""

from __future__ import annotations

from typing import Any

from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.events import RunKind, Usage

_LLM = RunKind.LLM  # read once: an enum class attribute is slow on Python 3.11


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


def estimate_usage(inputs: Any, outputs: Any) -> Usage:
    """~4 characters a token: rough, and labelled as estimated wherever it is exported."""
    prompt = text_size(inputs) // 4
    completion = text_size(outputs) // 4
    return Usage(prompt, completion, prompt + completion, estimated=True)


def mark_enclosing_llm(run: Run) -> None:
    """An LLM call made inside another (a router or gateway model delegating): its tokens are
    the outer call's tokens, so only the inner one counts them."""
    ancestor = run.parent
    while ancestor is not None:
        if ancestor.kind is _LLM:
            ancestor.usage_in_child = True
            return
        ancestor = ancestor.parent


def total_tokens(usage: Usage) -> int:
    return usage.total_tokens or usage.input_tokens + usage.output_tokens
