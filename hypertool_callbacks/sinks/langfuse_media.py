"""The SDK's export-stage media handling, skipped for spans it provably leaves unchanged.

Why: the SDK wraps our exporter in ``LangfuseTransformingSpanExporter``, which looks for media
(base64 data URIs, inline data) in every string attribute of every span and then clones every
span, re-cleaning all its attributes: as much CPU as encoding the batch. A string without
``data:``, ``inline_data``, ``inlineData`` or ``"data"`` in it is returned unchanged by the
SDK's media check (:func:`may_hold_media` is the SDK's own first test, widened), and a clone
of an unchanged span encodes to the same bytes as the span. So spans whose strings are all
free of those markers go to the exporter as they are; the others go through the SDK's
transformer, in their place in the batch, and the batch is exported in one call as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hypertool_callbacks.sinks.langfuse_ready import WireReadySpan

_log = logging.getLogger(__name__)
_MARKERS = ("data:", "inline_data", "inlineData", '"data"')

try:  # the SDK's wrapper (a private module of 5.x): without it, nothing is replaced
    from langfuse._client.span_exporter import LangfuseTransformingSpanExporter
except ImportError:  # pragma: no cover - another SDK layout
    LangfuseTransformingSpanExporter = None  # type: ignore[assignment,misc]


def may_hold_media(value: Any) -> bool:
    """False only for values the SDK's media handling provably returns unchanged."""
    if isinstance(value, str):
        # Every marker holds "data" but "inlineData": two scans instead of four.
        return ("data" in value and any(marker in value for marker in _MARKERS)) or (
            "inlineData" in value)
    if isinstance(value, bool | int | float) or value is None:
        return False
    if isinstance(value, tuple | list):
        return any(may_hold_media(item) for item in value)
    return True  # anything else: let the SDK look


def attributes_may_hold_media(attributes: Mapping[str, Any]) -> bool:
    """``any(may_hold_media(v) for v in attributes.values())``, the strings (lists of them
    too) scanned at once: joined by a NUL, which no marker holds, so a marker is found in
    the joined text exactly when one of the strings holds it."""
    texts: list[str] = []
    for value in attributes.values():
        value_type = type(value)
        if value_type is str:
            texts.append(value)
        elif value_type is tuple or value_type is list:
            texts += value
        elif value_type is not bool and may_hold_media(value):
            return True
    try:
        text = "\x00".join(texts)
    except TypeError:  # a list of something else than strings: one value at a time
        return any(may_hold_media(value) for value in attributes.values())
    # may_hold_media(text), without a generator: four scans cost less than its frame.
    return "inlineData" in text or ("data" in text and (
        "data:" in text or "inline_data" in text or '"data"' in text))


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class MediaSkippingExporter(SpanExporter):
    """Stands in for the SDK's transforming exporter ``sdk`` (media manager, no span mask)."""

    def __init__(self, sdk: Any) -> None:
        self._sdk = sdk
        self._exporter: SpanExporter = sdk._exporter
        self._media_manager = sdk._media_manager

    def _transformed(self, spans: list[ReadableSpan]) -> list[ReadableSpan]:
        # A transformer of our own per call: its output is collected, not exported.
        collect = _Collect()
        transformer = LangfuseTransformingSpanExporter(
            exporter=collect, media_manager=self._media_manager, mask_otel_spans=None)
        transformer.export(spans)
        return collect.spans

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            # The sink's own spans were checked when they were made (the same check).
            marked = [i for i, span in enumerate(spans)
                      if (span.media if type(span) is WireReadySpan
                          else attributes_may_hold_media(span.attributes or {}))]
            batch = list(spans)
            if marked:
                transformed = self._transformed([batch[i] for i in marked])
                if len(transformed) != len(marked):  # not one span out per span in
                    return self._sdk.export(spans)  # type: ignore[no-any-return]
                for i, span in zip(marked, transformed, strict=True):
                    batch[i] = span
        except Exception as exc:  # never lose a batch to this shortcut: the SDK's path
            _log.debug("hypertool: Langfuse media check fell back to the SDK's: %r", exc)
            return self._sdk.export(spans)  # type: ignore[no-any-return]
        return self._exporter.export(batch)

    def shutdown(self) -> None:
        self._sdk.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._sdk.force_flush(timeout_millis))


def skip_unneeded_media_checks(processor: Any) -> bool:
    """Put a :class:`MediaSkippingExporter` in ``processor``'s batch processor when it
    exports through the SDK's transforming exporter without a span mask. True if done."""
    if LangfuseTransformingSpanExporter is None:
        return False
    batch = getattr(processor, "_batch_processor", None)
    sdk = getattr(batch, "_exporter", None)
    if type(sdk) is not LangfuseTransformingSpanExporter or getattr(
            sdk, "_mask_otel_spans", True) is not None:
        return False
    if getattr(sdk, "_exporter", None) is None or not hasattr(sdk, "_media_manager"):
        return False
    batch._exporter = MediaSkippingExporter(sdk)  # type: ignore[union-attr]
    return True
