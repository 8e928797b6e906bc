"""OpenTelemetry sink: every run becomes a span, following the GenAI semantic conventions.

Spans are parented like the run tree; a root run's span is nested under whatever span is
current in the application when the run starts (LangChain calls our handler inline, on the
caller's thread or task, so ``context.get_current()`` there is the app's context). The sink never
attaches contexts itself: a missed detach would corrupt the app's context for good.

Export is the OpenTelemetry SDK's job: the app's own provider, or the one that
``opentelemetry-instrument`` builds from the standard ``OTEL_*`` variables (e.g.
``OTEL_TRACES_EXPORTER=otlp``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` or ``grpc``). ``[otel] console`` / ``jsonl_path``
give a provider of our own only when the app has none.

Needs ``opentelemetry-sdk`` (the ``otel`` extra): without it this module does not import and
the process-wide tracker simply has no OTel sink.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import ProxyTracer, Span, SpanKind, Status, StatusCode

from hypertool_callbacks import semconv as sc
from hypertool_callbacks._version import __version__
from hypertool_callbacks.config import Config, OtelSettings
from hypertool_callbacks.context.records import Handoff, PersonaSwitch
from hypertool_callbacks.context.runs import Run, Source
from hypertool_callbacks.context.runs import Status as RunStatus
from hypertool_callbacks.context.sink import Sink
from hypertool_callbacks.events import RunKind
from hypertool_callbacks.safety import RateLimitedLog
from hypertool_callbacks.sinks.otel_content import content_in, content_out, to_plain
from hypertool_callbacks.sinks.otel_direct import DirectSpan
from hypertool_callbacks.sinks.otel_env import (
    AppOrEnvProvider,
    _FollowingTracer,
    current_provider,
    propagated_trace_id,
)
from hypertool_callbacks.sinks.otel_export import JsonLinesSpanExporter, flush, local_provider
from hypertool_callbacks.sinks.otel_probe import DirectPaths

__all__ = ["JsonLinesSpanExporter", "OtelSink", "capture_content_enabled", "default_sinks",
           "local_provider"]

_log = logging.getLogger(__name__)

ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""``true`` puts prompt/completion text in spans (default off); used when the configuration
leaves ``otel.capture_content`` unset."""
SCOPE = "hypertool_callbacks"
_SPAN = "otel_span"  # key of a run's live span in ``run.extra``

Mask = Callable[[str], str]
# Providers whose spans never record: the API's default (no SDK set up yet) and the no-op one.
_NO_RECORDING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
# Module constants: on Python 3.11 reading ``RunKind.LLM`` or ``member.value`` runs Python code
# in ``enum`` (about 1k instructions each), several times per span otherwise.
_CHAIN, _LLM, _TOOL = RunKind.CHAIN, RunKind.LLM, RunKind.TOOL
_RETRIEVER, _EMBEDDING = RunKind.RETRIEVER, RunKind.EMBEDDING
_OK, _EVICTED = RunStatus.OK, RunStatus.EVICTED
_CLIENT, _INTERNAL = SpanKind.CLIENT, SpanKind.INTERNAL
_ERROR = StatusCode.ERROR
_NUMBER, _SEQUENCE = (int, float), (list, tuple)  # ``int | float`` builds a union per call
_VALUE: dict[Any, str] = {member: member.value for enum in (RunKind, RunStatus, Source)
                          for member in enum}  # a member's value, as a plain str


def _operation(run: Run) -> tuple[str, str | None]:
    """Span name and ``gen_ai.operation.name`` (None for a plain chain)."""
    kind = run.kind
    if kind is _CHAIN:
        if run.is_agent:
            return f"{sc.OP_INVOKE_AGENT} {run.agent}", sc.OP_INVOKE_AGENT
        if run.parent is None:
            return f"{sc.OP_INVOKE_WORKFLOW} {run.workflow}", sc.OP_INVOKE_WORKFLOW
        return f"chain {run.name}", None
    if kind is _LLM:
        prompts = isinstance(run.inputs, list) and run.inputs and isinstance(run.inputs[0], str)
        op = sc.OP_TEXT_COMPLETION if prompts else sc.OP_CHAT
        return (f"{op} {run.model}" if run.model else op), op
    if kind is _TOOL:
        return f"{sc.OP_EXECUTE_TOOL} {run.name}", sc.OP_EXECUTE_TOOL
    if kind is _RETRIEVER:
        return f"{sc.OP_RETRIEVAL} {run.name}", sc.OP_RETRIEVAL
    if kind is _EMBEDDING:
        return (f"{sc.OP_EMBEDDINGS} {run.model}" if run.model else sc.OP_EMBEDDINGS,
                sc.OP_EMBEDDINGS)
    if run.is_agent:
        return f"{sc.OP_INVOKE_AGENT} {run.agent}", sc.OP_INVOKE_AGENT
    if run.parent is None:
        return f"{sc.OP_INVOKE_WORKFLOW} {run.workflow}", sc.OP_INVOKE_WORKFLOW
    return f"chain {run.name}", None


def _request_parameters(attrs: dict[str, Any], parameters: Mapping[str, Any]) -> None:
    names = sc.REQUEST_PARAMETERS
    for key, value in parameters.items():
        attr = names.get(key)
        if attr is not None and isinstance(value, _NUMBER) and not isinstance(value, bool):
            attrs[attr] = value
    stop = parameters.get("stop")
    if stop is None:
        return
    if isinstance(stop, str):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, _SEQUENCE) and all(isinstance(s, str) for s in stop):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)


def _error_type(error: BaseException) -> str:
    cls = type(error)
    module = "" if cls.__module__ == "builtins" else cls.__module__ + "."
    return module + cls.__qualname__


class OtelSink(Sink):
    """One OpenTelemetry span per run, with persona/stage/workflow attributes.

    Example::

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        tracker = Tracker(config, sinks=[OtelSink(provider), PrometheusSink(registry)])

    Without ``tracer_provider`` the global provider is used, resolved lazily (a provider the
    app sets later is picked up). ``capture_content`` adds inputs/outputs as span attributes,
    passed through ``mask`` and cut to ``content_max_chars``.
    """

    name = "otel"

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        capture_content: bool = False,
        content_max_chars: int = 4096,
        mask: Mask | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        # With no provider this is a ProxyTracer: it follows the global provider once set.
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self.capture_content = capture_content and content_max_chars > 0
        self.content_max_chars = content_max_chars
        self.mask = mask
        self._warn = RateLimitedLog(_log)
        # Finished spans built directly where that provably equals live spans
        # (sinks/otel_direct, otel_probe); None: always live spans.
        self._direct: DirectPaths | None = DirectPaths()
        self._asked: tuple[object, bool] = (None, False)  # see _records()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush finished spans (the provider itself belongs to the app or to the SDK's exit
        hook, and is not shut down here)."""
        flush(self.tracer_provider or trace.get_tracer_provider(), timeout)

    # -- runs ------------------------------------------------------------------------------

    def _records(self) -> bool:
        """Whether spans would be recorded: false while no SDK (or other real) provider is
        set. Asked once per root run, so a provider the app sets later is used from its next
        workflow on, and a run tree never mixes recorded and unrecorded spans."""
        # The answer follows from the global provider alone (ours, or an AppOrEnvProvider's
        # own, is fixed once built): asked again with the same one, the same answer.
        current = current_provider()
        if current is self._asked[0]:
            return self._asked[1]
        provider = self.tracer_provider if self.tracer_provider is not None else current
        if isinstance(provider, AppOrEnvProvider):
            provider = provider.resolve()
        records = not isinstance(provider, _NO_RECORDING)
        self._asked = (current, records)
        return records

    def takes_tree(self, root: Run) -> bool:
        """No recording provider: no span for any run of this tree, so none of its notes
        need to reach us (LangChain's dispatch to an idle sink was ~5% of the metrics-only
        cost). A trace the app propagated (a W3C traceparent it extracted) still names the
        runs, as a no-op span would, for the exemplars: children inherit the root's id."""
        if self._records():
            return True
        trace_id = propagated_trace_id()
        if trace_id is not None:
            root.trace_id = trace_id
        return False

    def needs_run(self, parent: Run) -> bool:
        # Spans mirror the run tree; a tree that got no span (nothing recording) needs nothing.
        return _SPAN in parent.extra

    def _sdk_tracer(self) -> Any:
        """The tracer ``self._tracer.start_span`` would start this span with."""
        tracer: Any = self._tracer
        kind = type(tracer)
        if kind is ProxyTracer:
            return tracer._tracer  # the global provider's, once the app has set one
        if kind is _FollowingTracer:
            return tracer._current()
        return tracer

    def on_run_start(self, run: Run) -> None:
        parent_run = run.parent
        parent: Span | None = None
        if parent_run is None:
            if not self._records():
                # No spans to build, but a trace the app propagated (a W3C traceparent it
                # extracted) still names the run, as a no-op span would, for the exemplars.
                trace_id = propagated_trace_id()
                if trace_id is not None:
                    run.trace_id = trace_id
                return
        else:
            parent = parent_run.extra.get(_SPAN)
            if parent is None:  # the root got no span: neither does anything under it
                run.trace_id = parent_run.trace_id
                return
        name, op = _operation(run)
        kind = run.kind
        span_kind = _CLIENT if kind is _LLM or kind is _EMBEDDING else _INTERNAL
        attributes = self._start_attributes(run, op)
        span: Span | None = None
        direct = self._direct.get(self._sdk_tracer()) if self._direct is not None else None
        if direct is not None:
            # The parent span context start_span would read from the context it is given.
            parent_context = (trace.get_current_span() if parent is None
                              else parent).get_span_context()
            span = direct.start(name, parent_context, span_kind, attributes, run.start_ns)
        if span is None:  # live: another setup, or a span the SDK would not record
            ctx = (otel_context.get_current() if parent is None
                   else trace.set_span_in_context(parent))
            span = self._tracer.start_span(name, context=ctx, kind=span_kind,
                                           attributes=attributes, start_time=run.start_ns)
        run.extra[_SPAN] = span
        if type(span) is DirectSpan:
            if span.trace_hex is not None:
                run.trace_id = span.trace_hex
        else:
            span_context = span.get_span_context()
            if span_context.is_valid:
                run.trace_id = format(span_context.trace_id, "032x")
        if self.capture_content and span.is_recording():
            content_in(partial(self._put, span), run)

    def _start_attributes(self, run: Run, op: str | None) -> dict[str, Any]:
        kind, parent = run.kind, run.parent
        attrs: dict[str, Any] = {
            sc.HT_RUN_KIND: _VALUE[kind],
            sc.HT_PERSONA: run.persona,
            sc.HT_PERSONA_SOURCE: _VALUE[run.persona_source],
            sc.HT_STAGE: run.stage,
            sc.HT_WORKFLOW: run.workflow,
        }
        if op is not None:
            attrs[sc.GEN_AI_OPERATION_NAME] = op
        if run.gate is not None:
            attrs[sc.HT_GATE_NAME] = run.gate
        if run.agent:
            attrs[sc.GEN_AI_AGENT_NAME] = run.agent
        if parent is None:
            attrs[sc.GEN_AI_WORKFLOW_NAME] = run.workflow
        remote = kind is _LLM or kind is _EMBEDDING
        if run.thread_id and (parent is None or remote):
            attrs[sc.GEN_AI_CONVERSATION_ID] = run.thread_id
        if kind is _TOOL:
            attrs[sc.GEN_AI_TOOL_NAME] = run.name
        elif remote:
            if run.model:
                attrs[sc.GEN_AI_REQUEST_MODEL] = run.model
            if run.provider:
                attrs[sc.GEN_AI_PROVIDER_NAME] = sc.PROVIDER_NAMES.get(run.provider, run.provider)
            if run.parameters:
                _request_parameters(attrs, run.parameters)
        return attrs

    def on_run_end(self, run: Run) -> None:
        span: Span | None = run.extra.pop(_SPAN, None)
        if span is None:
            return
        try:
            if span.is_recording():
                self._finish(span, run)
        finally:
            span.end(end_time=run.end_ns)

    def _finish(self, span: Span, run: Run) -> None:
        status = run.status
        attrs: dict[str, Any] = {sc.HT_RUN_STATUS: _VALUE[status]}
        if run.kind is _CHAIN:
            # Graphs and their agent names are learned only once their first node starts.
            name, op = _operation(run)
            span.update_name(name)
            if op is not None:
                attrs[sc.GEN_AI_OPERATION_NAME] = op
            if run.agent:
                attrs[sc.GEN_AI_AGENT_NAME] = run.agent
            attrs[sc.HT_PERSONA] = run.persona  # an agent's graph learns its persona late
            attrs[sc.HT_PERSONA_SOURCE] = _VALUE[run.persona_source]
            if op == sc.OP_INVOKE_AGENT and run.thread_id:
                attrs[sc.GEN_AI_CONVERSATION_ID] = run.thread_id
        if run.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = run.response_model
        usage = run.usage
        if usage is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens:
                attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_creation_tokens:
                attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_tokens
            if usage.reasoning_tokens:
                attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            if usage.estimated:
                attrs[sc.HT_USAGE_ESTIMATED] = True
        cost = run.cost
        if cost is not None:
            attrs[sc.HT_COST_USD] = cost.total_usd
            attrs[sc.HT_COST_INPUT_USD] = cost.input_usd
            attrs[sc.HT_COST_OUTPUT_USD] = cost.output_usd
            attrs[sc.HT_COST_SOURCE] = cost.source
        elif run.unpriced:
            attrs[sc.HT_COST_UNPRICED] = True
        if run.first_token_mono is not None:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = max(
                0.0, run.first_token_mono - run.start_mono)
        if run.gate_result is not None:
            attrs[sc.HT_GATE_RESULT] = run.gate_result
        if status is _EVICTED:
            attrs[sc.ERROR_TYPE] = "evicted"
            span.set_status(Status(_ERROR, "run never ended: evicted from the run tree"))
        elif run.error is not None:
            attrs[sc.ERROR_TYPE] = _error_type(run.error)
            span.set_status(Status(_ERROR, f"{type(run.error).__name__}: {run.error}"[:1024]))
            span.record_exception(run.error, timestamp=run.end_ns, escaped=True)
        span.set_attributes(attrs)
        if self.capture_content and status is _OK:
            content_out(partial(self._put, span), run)

    # -- derived facts: events on the workflow span -----------------------------------------

    def on_switch(self, switch: PersonaSwitch) -> None:
        _root_event(switch.run, sc.EVENT_PERSONA_SWITCH, switch.from_persona,
                    switch.to_persona, switch.time_ns)

    def on_handoff(self, handoff: Handoff) -> None:
        _root_event(handoff.run, sc.EVENT_HANDOFF, handoff.from_persona, handoff.to_persona,
                    handoff.run.end_ns)

    # -- content (opt-in) ------------------------------------------------------------------

    def _put(self, span: Span, key: str, value: Any) -> None:
        if value is None:
            return
        stage = "encode_error"
        try:
            plain = to_plain(value)
            text = plain if isinstance(plain, str) else json.dumps(
                plain, ensure_ascii=False, default=str)
            if self.mask is not None:
                stage = "mask_error"
                text = self.mask(text)
                if not isinstance(text, str):
                    raise TypeError(f"mask returned {type(text).__name__}, not str")
        except Exception as exc:
            # Content we could not encode or mask must never leave the process: drop it.
            self._warn.warning(stage, "hypertool: content dropped (%s): %r", stage, exc)
            span.set_attribute(sc.HT_CONTENT_DROPPED, stage)
            return
        span.set_attribute(key, text[:self.content_max_chars])


def _root_event(run: Run, name: str, from_persona: str, to_persona: str,
                time_ns: int | None) -> None:
    span: Span | None = run.root.extra.get(_SPAN)
    if span is not None and span.is_recording():
        span.add_event(name, {sc.HT_PERSONA_FROM: from_persona, sc.HT_PERSONA_TO: to_persona,
                              sc.HT_WORKFLOW: run.workflow, sc.HT_RUN_NAME: run.name},
                       timestamp=time_ns)


def capture_content_enabled(settings: OtelSettings,
                            environ: Mapping[str, str] | None = None) -> bool:
    """``settings.capture_content``, else ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    (``true``/``false``; anything else logs a warning and means off)."""
    if settings.capture_content is not None:
        return settings.capture_content
    raw = (os.environ if environ is None else environ).get(ENV_CAPTURE_CONTENT, "").strip()
    value = raw.lower()
    if value in ("true", "span_only", "span_and_event"):
        return True
    if value not in ("", "false", "no_content", "event_only"):
        _log.warning("%s=%r is not true or false; message content is not captured",
                     ENV_CAPTURE_CONTENT, raw)
    return False


def default_sinks(config: Config, *, tracer_provider: trace.TracerProvider | None = None,
                  environ: Mapping[str, str] | None = None,
                  mask: Mask | None = None) -> list[Sink]:
    """The OTel sink for the process-wide tracker (none when ``otel.enabled`` is false).

    ``tracer_provider`` defaults to the global one (or a console/JSON-lines provider of our
    own, see :func:`local_provider`, or one built from the ``OTEL_*`` variables when the app
    has none, see ``otel_env``); ``environ`` defaults to ``os.environ``.
    """
    settings = config.otel
    if settings.enabled is False:
        return []
    # Neither given nor local: the app's SDK provider, else one from the OTEL_* variables.
    provider = tracer_provider or local_provider(settings) or AppOrEnvProvider(environ)
    return [OtelSink(provider, capture_content=capture_content_enabled(settings, environ),
                     content_max_chars=settings.content_max_chars, mask=mask)]
