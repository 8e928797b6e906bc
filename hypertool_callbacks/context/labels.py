"""Bounded label values: what keeps a metric's cardinality under control."""

from __future__ import annotations

import threading
from collections.abc import Iterable

OTHER = "other"
MAX_LABEL_LENGTH = 64


# clean() runs several times per run on the same few names: remember its answers (bounded:
# past the cap, values are cleaned without being remembered).
_CLEANED: dict[str, str | None] = {}
_CLEANED_CAP = 4096


def clean(value: object) -> str | None:
    """A usable label value, or None: a non-empty, printable, short string."""
    if not isinstance(value, str):
        return None
    try:
        return _CLEANED[value]
    except KeyError:
        pass
    cleaned = _clean(value)
    if len(_CLEANED) < _CLEANED_CAP and len(value) <= 256:
        _CLEANED[value] = cleaned
    return cleaned


def _clean(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "_" for ch in text)
    return text[:MAX_LABEL_LENGTH]


class BoundedLabels:
    """Admits configured values always, and up to ``cap`` others; the rest become ``other``.

    Example::

        personas = BoundedLabels(cap=2, fixed=["reviewer"])
        personas.admit("reviewer")   # 'reviewer' (configured, never counts against the cap)
        personas.admit("a"), personas.admit("b"), personas.admit("c")   # 'a', 'b', 'other'
    """

    def __init__(self, cap: int, fixed: Iterable[str] = (), always: Iterable[str] = ()) -> None:
        self.cap = cap
        self._fixed = frozenset(fixed) | frozenset(always)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.overflowed = 0

    def admit(self, value: str) -> str:
        if value in self._fixed or value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.cap:
                self._seen.add(value)
                return value
            self.overflowed += 1
            return OTHER
