"""Fixtures shared by the Langfuse tests (registered from conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langfuse._client.resource_manager import LangfuseResourceManager

from tests.otlp_receiver import OTLPReceiver

SECRET = "sk-test"


@pytest.fixture
def reset_langfuse() -> Iterator[None]:
    yield
    # Langfuse keeps one client per public key for the whole process.
    LangfuseResourceManager.reset()


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def use_live_path(sink: Any) -> None:
    """Put a LangfuseSink on the live path: SDK spans, each through the SDK's own media
    check and exporter (the path the direct one is compared with, byte for byte)."""
    from hypertool_callbacks.sinks.langfuse_media import MediaSkippingExporter

    sink._direct = None
    batch = sink.client._resources.tracer_provider._active_span_processor \
        ._span_processors[0]._batch_processor
    assert isinstance(batch._exporter, MediaSkippingExporter)
    batch._exporter = batch._exporter._sdk


def langfuse_env(monkeypatch: pytest.MonkeyPatch, url: str, timeout: str | None = None) -> str:
    """The standard env vars pointing at ``url``, with a fresh key (one client per key)."""
    key = f"pk-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    monkeypatch.setenv("LANGFUSE_BASE_URL", url)
    monkeypatch.delenv("LANGFUSE_HOST", raising=False)
    if timeout is not None:
        monkeypatch.setenv("LANGFUSE_TIMEOUT", timeout)
    return key


@pytest.fixture
def public_key(monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver) -> str:
    return langfuse_env(monkeypatch, receiver.url, timeout="2")
