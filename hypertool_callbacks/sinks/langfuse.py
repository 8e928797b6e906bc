"""Langfuse sink: one Langfuse trace per workflow execution, one observation per run.

How runs become observations:
  * LLM runs are ``generation`` observations (model, parameters, usage details, completion
    start time of streams); tools ``tool``, retrievers ``retriever``, the graph run of a named
    agent ``agent``, other chains ``chain``.
  * Persona, stage, workflow, agent and gate go into each observation's metadata; user,
    session, tags (``persona:<p>``, ``workflow:<w>``) and trace name are set on every
    observation from the run itself, not from a context, so threads and asyncio cannot lose
    them (the Langfuse LangChain handler loses them in async runs).
  * The trace id is ``run.trace_id`` (set by the OTel sink, which comes first), so one id finds
    a run in Prometheus exemplars, the OTel backend and Langfuse. Without an OTel sink this
    sink makes one per root run and sets ``run.trace_id`` for the Prometheus exemplars.

Spans are opened at run start with the run's own start time, and typed and filled at run end:
only then is it known whether a chain is an agent's graph. The SDK's ``start_observation``
takes neither a start time nor a late type, so the span comes from the client's own tracer
and is wrapped in the SDK's public observation classes (which serialize and mask as usual).
"""

from __future__ import annotations

import atexit
import logging
import random
import re
import secrets
from collections.abc import Callable
from typing import Any

from langfuse import (
    Langfuse,
    LangfuseAgent,
    LangfuseChain,
    LangfuseEmbedding,
    LangfuseGeneration,
    LangfuseOtelSpanAttributes,
    LangfuseRetriever,
    LangfuseTool,
)
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from hypertool_callbacks.config import Config
from hypertool_callbacks.context.runs import Run
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.safety import RateLimitedLog
from hypertool_callbacks.sinks.langfuse_content import capped, text_mask
from hypertool_callbacks.sinks.langfuse_direct import OpenObservation, probe, root_attributes
from hypertool_callbacks.sinks.langfuse_env import LANGFUSE_NO_KEYS, keys_configured
from hypertool_callbacks.sinks.langfuse_export import connect, run_bounded
from hypertool_callbacks.sinks.langfuse_fields import SESSION_KEY as SESSION_KEY
from hypertool_callbacks.sinks.langfuse_fields import TAGS_KEY as TAGS_KEY
from hypertool_callbacks.sinks.langfuse_fields import USER_KEY as USER_KEY
from hypertool_callbacks.sinks.langfuse_fields import (
    metadata_attributes,
    observation_fields,
    sdk_json,
    trace_attributes,
    usage_details,
)
from hypertool_callbacks.sinks.langfuse_observation import AVAILABLE as OBSERVATION_ATTRIBUTES
from hypertool_callbacks.sinks.langfuse_observation import ObservationAttributes
from hypertool_callbacks.sinks.langfuse_wire import WireEncoder

_log = logging.getLogger(__name__)

_SPAN = "langfuse.span"  # our key in Run.extra
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
_JSON_FIELDS = ("usage_details", "cost_details", "model_parameters")
_CLASSES: dict[str, Callable[..., Any]] = {
    "generation": LangfuseGeneration, "embedding": LangfuseEmbedding, "tool": LangfuseTool,
    "retriever": LangfuseRetriever, "agent": LangfuseAgent, "chain": LangfuseChain,
}
Mask = Callable[[Any], Any]
A = LangfuseOtelSpanAttributes
try:  # the builders behind the SDK's observation wrappers (a private module of 5.x)
    from langfuse._client.attributes import (
        create_generation_attributes,
        create_span_attributes,
    )

    _ATTRIBUTES: tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]]] | None = (
        create_generation_attributes, create_span_attributes)
except ImportError:  # pragma: no cover - another SDK layout: the public wrappers instead
    _ATTRIBUTES = None


def observation_type(run: Run) -> str:
    """The Langfuse observation type of a run (valid once the run has ended)."""
    if run.kind is RunKind.LLM:
        return "generation"
    if run.kind is RunKind.EMBEDDING:
        return "embedding"
    if run.kind is RunKind.TOOL:
        return "tool"
    if run.kind is RunKind.RETRIEVER:
        return "retriever"
    if run.is_agent:
        return "agent"
    return "chain"


def _new_trace_id() -> str:
    return secrets.token_hex(16)


class LangfuseSink(Sink):
    """Sends every run to Langfuse as an observation of its workflow's trace.

    Example::

        sink = LangfuseSink()                       # client from the LANGFUSE_* env vars
        tracker = Tracker(config, sinks=[otel_sink, sink, PrometheusSink(registry)])
        ...
        tracker.shutdown(timeout=5.0)               # bounded flush

    ``client``: an existing ``langfuse.Langfuse`` client (flushed, never shut down, by this
    sink; export failures are counted only for the client this sink builds itself). Without
    it the client comes from the ``LANGFUSE_*`` env vars (:class:`ConfigError` without keys).
    ``mask(value) -> value`` is applied to every input and output; if it raises, the content
    is dropped. Each input and output is then sent as text of at most ``content_max_chars``
    characters (JSON for structures; longer ones cut, with a marker saying so).
    ``registry`` receives ``hypertool_langfuse_export_failures_total``.
    """

    name = "langfuse"

    def __init__(
        self,
        client: Langfuse | None = None,
        *,
        persona_as_user: bool = False,
        capture_content: bool = True,
        content_max_chars: int = 4096,
        mask: Mask | None = None,
        registry: CollectorRegistry | None = None,
        flush_timeout: float = 5.0,
    ) -> None:
        # What we own: a client (and provider) we built, never a client the app gave us.
        self._provider: TracerProvider | None = None
        self._owned = client is None
        if client is None:
            connection = connect(registry=registry)
            client, self._provider = connection.client, connection.provider
            self._tracer: trace.Tracer = connection.tracer
        else:
            tracer = getattr(client, "_otel_tracer", None)  # private in 5.x: checked
            if tracer is None or not hasattr(tracer, "start_span"):
                raise TypeError(f"unsupported Langfuse client {type(client).__name__}")
            self._tracer = tracer
        self.client = client
        self.persona_as_user = persona_as_user
        self.capture_content = capture_content
        self.content_max_chars = content_max_chars
        self.mask = mask
        self.flush_timeout = flush_timeout
        self._closed = False
        self._warn = RateLimitedLog(_log)
        # Finished spans straight to the SDK's processor, where provably the same (see
        # langfuse_direct), on our own provider only; live SDK spans otherwise.
        self._direct = (probe(self._tracer) if self._owned and _ATTRIBUTES is not None
                        and OBSERVATION_ATTRIBUTES else None)
        if self._direct is not None:
            if self._owned and connection.wire:  # our exporter joins pre-encoded spans
                self._direct.encoder = WireEncoder()
            self._build = ObservationAttributes(
                persona_as_user, getattr(client, "_environment", None),
                getattr(client, "_release", None), self._content, self._direct.encoder).build
        if self._owned:
            atexit.register(self._at_exit)

    # -- runs --------------------------------------------------------------------------------

    def on_run_start(self, run: Run) -> None:
        if self._closed:
            return
        root = run.root
        if root.trace_id is None:  # no OTel sink before us: the exemplars still get one
            root.trace_id = _new_trace_id()
        if run.trace_id is None:
            run.trace_id = root.trace_id
        direct = self._direct
        if direct is not None:
            ancestor = run.parent  # _parent_span, for the observations of direct mode
            while ancestor is not None:
                parent = ancestor.extra.get(_SPAN)
                if type(parent) is OpenObservation:
                    observation = direct.start(parent.context, False)
                    break
                if parent is not None and isinstance(parent, trace.Span | OpenObservation):
                    observation = (direct.start(parent.context, False)
                                   if isinstance(parent, OpenObservation)
                                   else direct.start(self._remote(root.trace_id), True))
                    break
                ancestor = ancestor.parent
            else:
                observation = direct.start(self._remote(root.trace_id), True)
            if observation is not None:
                run.extra[_SPAN] = observation
            return
        parent = self._parent_span(run)
        attributes: dict[str, Any] = {}
        if not isinstance(parent, trace.Span):  # None (direct mode is for the sink's life)
            parent = self._trace_parent(root.trace_id)
            attributes[A.AS_ROOT] = True
        # A fresh context: the app's current span and baggage must not leak in.
        context = trace.set_span_in_context(parent, Context())
        span = self._tracer.start_span(run.name, context=context, start_time=run.start_ns,
                                       attributes=attributes or None)
        run.extra[_SPAN] = span

    def on_run_end(self, run: Run) -> None:
        span = run.extra.pop(_SPAN, None)
        if span is None or self._closed:
            return
        if isinstance(span, OpenObservation):
            self._end_direct(run, span)
            return
        try:
            # Set at the end: a graph run learns its agent persona after it started.
            attributes = self._trace_attributes(run)
            kind = observation_type(run)
            fields = self._fields(run, kind)
            if _ATTRIBUTES is None:  # an SDK without the attribute builders: its wrappers
                span.set_attributes(attributes)
                _CLASSES[kind](otel_span=span, langfuse_client=self.client, **fields)
            else:
                self._observation(span, kind, fields, attributes)
        finally:
            # End it even if filling it failed: an unended span is never exported.
            span.end(end_time=run.end_ns)

    def _end_direct(self, run: Run, observation: OpenObservation) -> None:
        # The attributes the live path sets (_trace_attributes, _observation_attributes),
        # built in one pass (langfuse_observation; the tests compare both paths' spans).
        assert self._direct is not None
        status = wire = media = None
        plain = False
        try:
            attributes, message, wire, media, plain = self._build(
                run, observation_type(run), observation.root)
            if message is not None:  # level ERROR
                status = trace.Status(trace.StatusCode.ERROR, message)
        except Exception:
            # As a live span that failed to fill: ended with what it had at start.
            attributes, wire, media, plain = root_attributes(observation.root), None, None, False
            raise
        finally:
            self._direct.end(observation, run.name, run.start_ns, run.end_ns, attributes,
                             status, wire, media, plain)

    def _observation(self, span: trace.Span, kind: str, fields: dict[str, Any],
                     attributes: dict[str, Any]) -> None:
        span.set_attributes(self._observation_attributes(kind, fields, attributes))
        if fields.get("level") == "ERROR":
            span.set_status(trace.Status(trace.StatusCode.ERROR, fields.get("status_message")))

    def _observation_attributes(self, kind: str, fields: dict[str, Any],
                                attributes: dict[str, Any]) -> dict[str, Any]:
        """The attributes the SDK's observation wrapper would set, at once. The wrapper
        itself also scans every value for media and re-serialises it, which costs more than
        the rest of the run's bookkeeping; our input/output are already capped strings."""
        assert _ATTRIBUTES is not None
        build = _ATTRIBUTES[0] if kind in ("generation", "embedding") else _ATTRIBUTES[1]
        meta, fields["metadata"] = metadata_attributes(fields["metadata"])
        for name in _JSON_FIELDS:  # plain dicts as the SDK's JSON text: its encoder is slow
            if name in fields:
                fields[name] = sdk_json(fields[name])
        observation = build(observation_type=kind, **fields)
        observation.update(meta)
        environment = getattr(self.client, "_environment", None)
        release = getattr(self.client, "_release", None)
        if environment:
            attributes[A.ENVIRONMENT] = environment
        if release:
            attributes[A.RELEASE] = release
        attributes.update(observation)
        return attributes

    def _trace_parent(self, trace_id: str) -> trace.Span:
        """The SDK's own way to start a trace with a given id: a sampled, non-recording parent
        carrying it (the observation is then marked as the trace's root)."""
        return trace.NonRecordingSpan(self._remote(trace_id))

    def _remote(self, trace_id: str) -> trace.SpanContext:
        # An earlier sink may hand over anything (or the all-zero, invalid id).
        if not isinstance(trace_id, str) or not _TRACE_ID.match(trace_id) or not int(trace_id, 16):
            self._warn.warning("trace_id", "hypertool: invalid trace id %r; Langfuse gets "
                               "another one", trace_id)
            trace_id = _new_trace_id()
        return trace.SpanContext(int(trace_id, 16), random.getrandbits(64) or 1, False,
                                 _SAMPLED)

    @staticmethod
    def _parent_span(run: Run) -> trace.Span | OpenObservation | None:
        ancestor = run.parent
        while ancestor is not None:
            span = ancestor.extra.get(_SPAN)
            if isinstance(span, trace.Span | OpenObservation):
                return span
            ancestor = ancestor.parent
        return None

    def _trace_attributes(self, run: Run) -> dict[str, Any]:
        return trace_attributes(run, self.persona_as_user)

    def _fields(self, run: Run, kind: str) -> dict[str, Any]:
        return observation_fields(run, kind, self._content)

    def _content(self, value: Any) -> str | None:
        if not self.capture_content or value is None:
            return None
        if self.mask is not None:  # on the whole value: a cut must not split a secret
            try:
                value = self.mask(value)
            except Exception as exc:
                self._warn.warning("mask", "hypertool: Langfuse mask failed (%r); content "
                                   "dropped", exc)
                return None
        return None if value is None else capped(value, self.content_max_chars)

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is buffered; True if done within ``timeout`` (default flush_timeout)."""
        return run_bounded(self.client.flush, self._timeout(timeout), "flush")

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush (and, for a client built here, shut it down) within ``timeout`` seconds.
        Unsent observations are then dropped; the tracker's shutdown names the sinks it cut
        off in one warning, so this says it only at debug level."""
        if not self._close_within(timeout):
            _log.debug("hypertool: Langfuse did not finish sending within %.1fs", timeout)

    def _close_within(self, timeout: float) -> bool:
        if self._closed:
            return True
        self._closed = True
        if self._owned:
            atexit.unregister(self._at_exit)
        return run_bounded(self._close, timeout, "shutdown")

    def _close(self) -> None:
        if not self._owned:  # the app's client, given to us: flush only
            self.client.flush()
            return
        self.client.shutdown()
        if self._provider is not None:
            self._provider.shutdown()

    def _at_exit(self) -> None:  # no tracker shut this sink down: say what is lost here
        if not self._close_within(self.flush_timeout):
            _log.warning("hypertool: Langfuse did not finish sending within %.1fs; "
                         "unsent observations are dropped", self.flush_timeout)

    def _timeout(self, timeout: float | None) -> float:
        return self.flush_timeout if timeout is None else timeout


def default_sinks(config: Config, registry: CollectorRegistry | None = None,
                  mask: Callable[[str], str] | None = None) -> list[Sink]:
    """[LangfuseSink] when enabled and the keys are set; [] (one info line) otherwise.
    ``mask`` is the text mask the OTel sink gets too (see :func:`text_mask`)."""
    settings = config.langfuse
    if settings.enabled is False:
        _log.info("hypertool: Langfuse traces off (langfuse.enabled = false)")
        return []
    if not keys_configured():
        _log.info(LANGFUSE_NO_KEYS)
        return []
    try:
        sink = LangfuseSink(persona_as_user=settings.persona_as_user,
                            capture_content=settings.capture_content,
                            content_max_chars=settings.content_max_chars, registry=registry,
                            flush_timeout=settings.flush_timeout_seconds,
                            mask=text_mask(mask) if mask is not None else None)
    except Exception as exc:  # a broken optional backend must not stop the app
        _log.warning("hypertool: Langfuse traces off: %r", exc)
        return []
    return [sink]


__all__ = ["LangfuseSink", "default_sinks", "observation_type", "usage_details"]
