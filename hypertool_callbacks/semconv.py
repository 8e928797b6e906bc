"""Span attribute keys: the OpenTelemetry GenAI ones we use, and our own ``hypertool.*`` keys.

The ``gen_ai.*`` keys come from ``opentelemetry-semantic-conventions`` when it still ships them
(recent releases mark them deprecated: they moved to the separate GenAI conventions project);
the literal fallbacks are the same strings, so spans look identical either way.
"""

from __future__ import annotations

from typing import Final

try:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _upstream
except ImportError:  # not installed, or removed upstream
    _upstream = None  # type: ignore[assignment]


def _key(name: str, fallback: str) -> str:
    value = getattr(_upstream, name, None)
    return value if isinstance(value, str) else fallback


# -- OpenTelemetry GenAI semantic conventions ------------------------------------------------
GEN_AI_OPERATION_NAME: Final = _key("GEN_AI_OPERATION_NAME", "gen_ai.operation.name")
GEN_AI_PROVIDER_NAME: Final = _key("GEN_AI_PROVIDER_NAME", "gen_ai.provider.name")
GEN_AI_REQUEST_MODEL: Final = _key("GEN_AI_REQUEST_MODEL", "gen_ai.request.model")
GEN_AI_RESPONSE_MODEL: Final = _key("GEN_AI_RESPONSE_MODEL", "gen_ai.response.model")
GEN_AI_REQUEST_TEMPERATURE: Final = _key("GEN_AI_REQUEST_TEMPERATURE",
                                         "gen_ai.request.temperature")
GEN_AI_REQUEST_MAX_TOKENS: Final = _key("GEN_AI_REQUEST_MAX_TOKENS", "gen_ai.request.max_tokens")
GEN_AI_REQUEST_TOP_P: Final = _key("GEN_AI_REQUEST_TOP_P", "gen_ai.request.top_p")
GEN_AI_REQUEST_TOP_K: Final = _key("GEN_AI_REQUEST_TOP_K", "gen_ai.request.top_k")
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = _key("GEN_AI_REQUEST_FREQUENCY_PENALTY",
                                               "gen_ai.request.frequency_penalty")
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = _key("GEN_AI_REQUEST_PRESENCE_PENALTY",
                                              "gen_ai.request.presence_penalty")
GEN_AI_REQUEST_SEED: Final = _key("GEN_AI_REQUEST_SEED", "gen_ai.request.seed")
GEN_AI_REQUEST_STOP_SEQUENCES: Final = _key("GEN_AI_REQUEST_STOP_SEQUENCES",
                                            "gen_ai.request.stop_sequences")
GEN_AI_USAGE_INPUT_TOKENS: Final = _key("GEN_AI_USAGE_INPUT_TOKENS", "gen_ai.usage.input_tokens")
GEN_AI_USAGE_OUTPUT_TOKENS: Final = _key("GEN_AI_USAGE_OUTPUT_TOKENS",
                                         "gen_ai.usage.output_tokens")
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = _key("GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
                                                   "gen_ai.usage.cache_read.input_tokens")
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _key(
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS", "gen_ai.usage.cache_creation.input_tokens")
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = _key("GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
                                                   "gen_ai.usage.reasoning.output_tokens")
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = _key("GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
                                                  "gen_ai.response.time_to_first_chunk")
GEN_AI_TOOL_NAME: Final = _key("GEN_AI_TOOL_NAME", "gen_ai.tool.name")
GEN_AI_AGENT_NAME: Final = _key("GEN_AI_AGENT_NAME", "gen_ai.agent.name")
GEN_AI_WORKFLOW_NAME: Final = _key("GEN_AI_WORKFLOW_NAME", "gen_ai.workflow.name")
GEN_AI_CONVERSATION_ID: Final = _key("GEN_AI_CONVERSATION_ID", "gen_ai.conversation.id")
# Content (only with content capture on).
GEN_AI_INPUT_MESSAGES: Final = _key("GEN_AI_INPUT_MESSAGES", "gen_ai.input.messages")
GEN_AI_OUTPUT_MESSAGES: Final = _key("GEN_AI_OUTPUT_MESSAGES", "gen_ai.output.messages")
GEN_AI_TOOL_CALL_ARGUMENTS: Final = _key("GEN_AI_TOOL_CALL_ARGUMENTS",
                                         "gen_ai.tool.call.arguments")
GEN_AI_TOOL_CALL_RESULT: Final = _key("GEN_AI_TOOL_CALL_RESULT", "gen_ai.tool.call.result")
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = _key("GEN_AI_RETRIEVAL_QUERY_TEXT",
                                          "gen_ai.retrieval.query.text")
GEN_AI_RETRIEVAL_DOCUMENTS: Final = _key("GEN_AI_RETRIEVAL_DOCUMENTS",
                                         "gen_ai.retrieval.documents")
# Request parameters as the LangChain adapter names them (``run.parameters``) -> attribute.
REQUEST_PARAMETERS: Final = {
    "temperature": GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": GEN_AI_REQUEST_TOP_P,
    "top_k": GEN_AI_REQUEST_TOP_K,
    "frequency_penalty": GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": GEN_AI_REQUEST_SEED,
}
# General (stable) conventions.
ERROR_TYPE: Final = "error.type"

# gen_ai.operation.name values.
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_RETRIEVAL: Final = "retrieval"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"

# -- hypertool ----------------------------------------------------------------------------
HT_PERSONA: Final = "hypertool.persona"
HT_PERSONA_SOURCE: Final = "hypertool.persona.source"
HT_STAGE: Final = "hypertool.stage"
HT_WORKFLOW: Final = "hypertool.workflow"
HT_GATE_NAME: Final = "hypertool.gate.name"
HT_GATE_RESULT: Final = "hypertool.gate.result"
HT_RUN_KIND: Final = "hypertool.run.kind"
HT_RUN_STATUS: Final = "hypertool.run.status"
"""``ok``, ``error`` or ``evicted`` (the run never ended and was dropped from the run tree)."""
HT_USAGE_ESTIMATED: Final = "hypertool.usage.estimated"
"""True when token counts were estimated from text length (the provider reported none)."""
# There is no semconv cost attribute (yet): ours, in USD, on LLM spans whose call was priced.
HT_COST_USD: Final = "hypertool.cost.usd"
"""Price of the LLM call in USD (input + output), see README "Cost"."""
HT_COST_INPUT_USD: Final = "hypertool.cost.input_usd"
HT_COST_OUTPUT_USD: Final = "hypertool.cost.output_usd"
HT_COST_SOURCE: Final = "hypertool.cost.source"
"""Where the price came from: ``genai-prices`` or ``override`` (``[prices]`` in the config)."""
HT_COST_UNPRICED: Final = "hypertool.cost.unpriced"
"""True on an LLM span whose call reported usage but whose model has no known price."""
HT_INPUT: Final = "hypertool.input"
"""Chain input (content capture only; LLM and tool runs use the ``gen_ai.*`` content keys)."""
HT_OUTPUT: Final = "hypertool.output"
HT_CONTENT_DROPPED: Final = "hypertool.content.dropped"
"""Set to the reason when captured content was dropped (e.g. ``mask_error``)."""

# Span events on the workflow (root) span.
EVENT_PERSONA_SWITCH: Final = "hypertool.persona.switch"
EVENT_HANDOFF: Final = "hypertool.handoff"
HT_PERSONA_FROM: Final = "hypertool.persona.from"
HT_PERSONA_TO: Final = "hypertool.persona.to"
HT_RUN_NAME: Final = "hypertool.run.name"

# LangChain's ``ls_provider`` -> the semconv well-known ``gen_ai.provider.name`` values
# (others pass through unchanged: ``openai``, ``anthropic``, ``groq``, ...).
PROVIDER_NAMES: Final[dict[str, str]] = {
    "amazon_bedrock": "aws.bedrock", "bedrock": "aws.bedrock",
    "google_vertexai": "gcp.vertex_ai", "google_genai": "gcp.gen_ai",
    "azure": "azure.ai.openai", "azure_openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference", "mistral": "mistral_ai", "mistralai": "mistral_ai",
    "xai": "x_ai", "ibm": "ibm.watsonx.ai", "watsonx": "ibm.watsonx.ai",
}
