"""Quality-gate verdicts: did a gate run pass?

The exact rule (also in README):
  * the run ended with an error -> ``fail``;
  * otherwise the output decides, looked at up to 4 levels deep:
    - ``None``, empty strings/containers, ``False``, ``0`` -> ``fail``;
    - a string whose first word is a failure word (``fail``, ``failed``, ``failure``, ``reject``,
      ``rejected``, ``false``, ``blocked``, ``denied``, ``invalid``, ``not``; any case) ->
      ``fail`` (``"FAIL: no tests"`` and ``"Not approved"`` fail, ``"No issues found"`` passes);
    - a mapping (or object) with a boolean ``passed``/``pass``/``ok``/``approved``/``success``/
      ``valid`` -> that boolean; else with a ``verdict``/``result``/``status``/``decision``/
      ``outcome``/``review``/``grade``/``evaluation`` that is a string, a boolean, a mapping or
      an object (not a number or list) -> that value's verdict;
      else a mapping with one entry -> that entry's verdict;
    - a message-like object -> its ``content``; a LangGraph ``Command`` -> its ``update``
      (a routing-only ``Command`` without update passes);
    - a list/tuple -> its last element;
    - anything else -> ``pass``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PASS = "pass"
FAIL = "fail"

FAILURE_WORDS = frozenset({
    "fail", "failed", "failure", "failing", "reject", "rejected", "false", "blocked", "denied",
    "invalid", "not",
})
BOOLEAN_KEYS = ("passed", "pass", "ok", "approved", "success", "valid")
VERDICT_KEYS = ("verdict", "result", "status", "decision", "outcome", "review", "grade",
                "evaluation")
_FIRST_WORD = re.compile(r"\W*([A-Za-z]+)")
_MAX_DEPTH = 4


def verdict(error: BaseException | None, output: Any) -> str:
    if error is not None:
        return FAIL
    try:
        return PASS if _passes(output, 0) else FAIL
    except Exception:  # an output object whose attributes raise: it did not fail the run
        return PASS


def _passes(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return True
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        match = _FIRST_WORD.match(value)
        if not value.strip():
            return False
        return not (match and match.group(1).lower() in FAILURE_WORDS)
    if isinstance(value, Mapping):
        return _passes_fields(value.get, len(value), list(value.values()), depth)
    if isinstance(value, list | tuple):
        return _passes(value[-1], depth + 1) if value else False
    if hasattr(value, "content"):  # a chat message
        return _passes(value.content, depth + 1)
    if type(value).__name__ == "Command" and hasattr(value, "update"):
        # A routing-only Command (no update) moved on: that is not a failure.
        return value.update is None or _passes(value.update, depth + 1)
    return _passes_fields(lambda key: getattr(value, key, None), -1, [], depth)


def _passes_fields(get: Any, size: int, values: list[Any], depth: int) -> bool:
    for key in BOOLEAN_KEYS:
        flag = get(key)
        if isinstance(flag, bool):
            return flag
    for key in VERDICT_KEYS:
        found = get(key)
        # A text, a flag, or a structured verdict (e.g. from with_structured_output); a number
        # or a list under such a key is data, not a verdict.
        if isinstance(found, bool) or (
                found is not None and not isinstance(found, int | float | list | tuple)):
            return _passes(found, depth + 1)
    if size == 1:
        return _passes(values[0], depth + 1)
    return size != 0
