"""Quality-gate verdicts: did a gate run pass, fail, or say nothing we recognise?

The exact rule (also in README):
  * the run ended with an error -> ``fail``;
  * otherwise the output decides, looked at up to 4 levels deep:
    - ``None``, empty strings/containers, ``False``, ``0`` -> ``fail``; other numbers and
      ``True`` -> ``pass``;
    - a string: its opening words (any case; ``_``/``-`` read as spaces; leading punctuation
      and a ``verdict:``-style label skipped) are matched against the fail words and the pass
      words (config ``gate_fail_words`` / ``gate_pass_words``; the longest match wins):
      ``"FAIL: no tests"``, ``"Not approved"``, ``"REVISE: ..."``, ``"Changes requested"``
      fail; ``"PASS"``, ``"LGTM"``, ``"No issues found"`` pass; anything else is
      ``unrecognised``;
    - a mapping (or object) with a boolean ``passed``/``pass``/``ok``/``approved``/``success``/
      ``valid`` -> that boolean; else with a ``verdict``/``result``/``status``/``decision``/
      ``outcome``/``review``/``grade``/``evaluation`` that is a string, a boolean, a mapping or
      an object (not a number or list) -> that value's verdict;
      else a mapping with one entry -> that entry's verdict; a text content block -> its text;
    - a message-like object -> its ``content``; a LangGraph ``Command`` -> its ``update``
      (a routing-only ``Command`` without update passes);
    - a list/tuple -> its last element;
    - anything else (several entries none of which is a verdict, an opaque object, deeper than
      4 levels) -> ``unrecognised``.
``unrecognised`` is neither a pass nor a fail: it is counted on its own, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from hypertool_callbacks.config import DEFAULT_GATE_FAIL_WORDS, DEFAULT_GATE_PASS_WORDS

PASS = "pass"
FAIL = "fail"
UNRECOGNISED = "unrecognised"

BOOLEAN_KEYS = ("passed", "pass", "ok", "approved", "success", "valid")
VERDICT_KEYS = ("verdict", "result", "status", "decision", "outcome", "review", "grade",
                "evaluation")
_MAX_DEPTH = 4
# Leading punctuation/markup, then an optional "Verdict:"-style label.
_LABELS = "|".join(VERDICT_KEYS)
_LEAD = re.compile(rf"[\W_]*(?:(?:{_LABELS})\s*[:=-]\s*[\W_]*)?", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s_-]+")


def _phrases(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``words`` at the start of a normalised text, on word
    boundaries (``pass`` does not match ``passport``)."""
    parts = sorted({_SEPARATORS.sub(" ", w.strip().lower()) for w in words if w.strip()},
                   key=len, reverse=True)
    if not parts:
        return None
    alternatives = "|".join(re.escape(p) for p in parts)
    return re.compile(rf"(?:{alternatives})(?![a-z0-9])")


class Verdicts:
    """The verdict rule with its pass/fail words compiled once.

    Example::

        Verdicts(fail_words=["revise"], pass_words=["lgtm"])(None, "REVISE: naming")  # 'fail'
    """

    def __init__(self, pass_words: Iterable[str] = DEFAULT_GATE_PASS_WORDS,
                 fail_words: Iterable[str] = DEFAULT_GATE_FAIL_WORDS) -> None:
        self._pass = _phrases(pass_words)
        self._fail = _phrases(fail_words)

    def __call__(self, error: BaseException | None, output: Any) -> str:
        if error is not None:
            return FAIL
        try:
            found = self._passes(output, 0)
        except Exception:  # an output object whose attributes raise: we cannot tell
            return UNRECOGNISED
        return UNRECOGNISED if found is None else PASS if found else FAIL

    def text(self, value: str) -> bool | None:
        if not value.strip():
            return False
        lead = _LEAD.match(value)
        text = _SEPARATORS.sub(" ", value[lead.end() if lead else 0:].lower())
        passed = self._pass.match(text) if self._pass else None
        failed = self._fail.match(text) if self._fail else None
        if passed and failed:  # e.g. "not" vs "not bad": the longer, more specific match
            return len(passed.group()) > len(failed.group())
        return True if passed else False if failed else None

    def _passes(self, value: Any, depth: int) -> bool | None:
        if depth > _MAX_DEPTH:
            return None
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            if value.get("type") == "text" and isinstance(value.get("text"), str):
                return self.text(value["text"])  # a content block of a message
            return self._fields(value.get, len(value), list(value.values()), depth)
        if isinstance(value, list | tuple):
            return self._passes(value[-1], depth + 1) if value else False
        if hasattr(value, "content"):  # a chat message
            return self._passes(value.content, depth + 1)
        if type(value).__name__ == "Command" and hasattr(value, "update"):
            # A routing-only Command (no update) moved on: that is not a failure.
            return True if value.update is None else self._passes(value.update, depth + 1)
        return self._fields(lambda key: getattr(value, key, None), -1, [], depth)

    def _fields(self, get: Any, size: int, values: list[Any], depth: int) -> bool | None:
        for key in BOOLEAN_KEYS:
            flag = get(key)
            if isinstance(flag, bool):
                return flag
        for key in VERDICT_KEYS:
            found = get(key)
            # A text, a flag, or a structured verdict (e.g. from with_structured_output); a
            # number or a list under such a key is data, not a verdict.
            if isinstance(found, bool) or (
                    found is not None and not isinstance(found, int | float | list | tuple)):
                return self._passes(found, depth + 1)
        if size == 1:
            return self._passes(values[0], depth + 1)
        return False if size == 0 else None


_DEFAULT = Verdicts()


def verdict(error: BaseException | None, output: Any) -> str:
    """The verdict with the default words (see :class:`Verdicts` for configured ones)."""
    return _DEFAULT(error, output)
