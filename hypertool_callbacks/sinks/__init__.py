"""Sinks turn tracked runs into one backend's data. They know nothing about frameworks."""

from hypertool_callbacks.context.sink import Sink

__all__ = ["Sink"]
