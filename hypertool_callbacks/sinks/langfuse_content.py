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
import threading
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from pydantic import BaseModel

MARKER = "...[truncated by hypertool: {total} chars, first {kept} kept]"


def _plain(value: Any) -> Any:
    """``json.dumps`` fallback for what it cannot encode: close to the SDK's own serializer
    (pydantic models, LangChain messages and documents as their fields)."""
    kind = type(value)
    if getattr(kind, "model_dump", None) is _MODEL_DUMP:
        # model_dump() itself, without its Python frame: the same serializer and defaults.
        return kind.__pydantic_serializer__.to_python(value, mode="python")
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


_MODEL_DUMP = BaseModel.model_dump
c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # CPython's C scanner
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_plain)
_local = threading.local()


def _encode(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, default=_plain)``. That builds an encoder and
    its C scanner per call (non-default arguments); the scanner ``JSONEncoder.iterencode``
    builds is kept here per thread instead (its circular-reference marks are per call, so
    never shared), and rebuilt after a failure, which may leave marks behind."""
    scan = getattr(_local, "scan", None)
    if scan is None:
        if c_make_encoder is None:  # pragma: no cover - no C accelerator: the plain way
            return _ENCODER.encode(value)
        scan = _local.scan = c_make_encoder(
            {}, _plain, encode_basestring, None, _ENCODER.key_separator,
            _ENCODER.item_separator, False, False, True)
    try:
        return "".join(scan(value, 0))
    except BaseException:
        _local.scan = None
        raise


def dumps(value: Any) -> str:
    """``json.dumps(value)``, with its C scanner kept per thread (as :func:`_encode` does):
    ``json.dumps`` builds one per call."""
    scan = getattr(_local, "dumps", None)
    if scan is None:
        if c_make_encoder is None:  # pragma: no cover - no C accelerator: the plain way
            return json.dumps(value)
        plain = json.JSONEncoder()  # json.dumps's own settings
        scan = _local.dumps = c_make_encoder(
            {}, plain.default, encode_basestring_ascii, None, plain.key_separator,
            plain.item_separator, False, False, True)
    try:
        return "".join(scan(value, 0))
    except BaseException:
        _local.dumps = None
        raise


def as_text(value: Any) -> str:
    """The JSON text of ``value`` (a string stays itself)."""
    if isinstance(value, str):
        return value
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):  # circular, or a model_dump that fails
        return str(value)


def capped(value: Any, max_chars: int) -> str:
    """``value`` as text of at most ``max_chars`` characters, plus a marker when cut.

    Example::

        capped({"q": "x" * 10_000}, 20)
        # '{"q": "xxxxxxxxxxxxx...[truncated by hypertool: 10009 chars, first 20 kept]'
    """
    # as_text and _encode inline: this runs twice per observation.
    if isinstance(value, str):
        text = value
    else:
        try:
            scan = getattr(_local, "scan", None)
            if scan is None:
                text = _encode(value)
            else:
                try:
                    text = "".join(scan(value, 0))
                except BaseException:
                    _local.scan = None  # as _encode: its marks may be left behind
                    raise
        except (TypeError, ValueError, RecursionError):
            text = str(value)
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + MARKER.format(total=len(text), kept=max_chars)


def text_mask(mask: Callable[[str], str]) -> Callable[[Any], Any]:
    """A Langfuse mask from a text mask (the one ``instrument(mask=...)`` takes for spans):
    structured content is masked as its JSON text."""

    def apply(value: Any) -> Any:
        return mask(as_text(value))

    return apply
