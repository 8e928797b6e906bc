"""Fixtures shared by the Langfuse tests (registered from conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
