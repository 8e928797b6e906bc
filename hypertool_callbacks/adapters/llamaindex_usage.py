"""Token usage, model and provider of a LlamaIndex LLM response, from the provider's own shape.

LlamaIndex has no usage field of its own: each LLM integration leaves the provider's response in
``ChatResponse.raw`` (a dict, or the provider SDK's object) and sometimes copies counts into
``additional_kwargs``. The shapes read here:

* OpenAI chat: ``usage.prompt_tokens`` / ``completion_tokens`` / ``total_tokens``,
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``;
  OpenAI responses: ``input_tokens`` / ``output_tokens`` with ``input_tokens_details`` /
  ``output_tokens_details``; llama-index-llms-openai copies the three counts into
  ``additional_kwargs``.
* Anthropic: ``usage.input_tokens`` / ``output_tokens`` plus ``cache_read_input_tokens`` /
  ``cache_creation_input_tokens``, which Anthropic does *not* include in ``input_tokens``
  (ours are subsets of input, so they are added to it).
* Gemini: ``usage_metadata.prompt_token_count`` / ``candidates_token_count`` /
  ``cached_content_token_count`` / ``thoughts_token_count`` (thoughts are billed as output but
  not included in the candidates count).
* Bedrock Converse: ``usage.inputTokens`` / ``outputTokens`` / ``cacheReadInputTokens`` /
  ``cacheWriteInputTokens``; Bedrock invoke: the ``x-amzn-bedrock-*-token-count`` headers.
* Ollama: ``prompt_eval_count`` / ``eval_count``.

Everything is read duck-typed (mapping keys or attributes, never a method call), so a provider
object of any SDK version works and nothing here imports a provider package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from hypertool_callbacks.events import Usage

_MAPPING, _SCALAR = 0, 1
_SCALARS = (str, bytes, int, float, list, tuple)
# Per class: a mapping, a scalar (no keys), or an object: then {key: whether no instance of
# the class has it as an attribute} (one lookup a read, no tuple key).
_SHAPES: dict[type, int | dict[str, bool]] = {}
_READABLE: dict[tuple[type, tuple[str, ...]], tuple[str, ...]] = {}  # see readable()
# Every key usage_of() reads at the top level of a source: a dict with none of them (most
# often an empty ``additional_kwargs``) holds no usage.
_USAGE_KEYS = frozenset({
    "usage", "usage_metadata", "token_usage", "prompt_tokens", "completion_tokens",
    "input_tokens", "output_tokens", "prompt_token_count", "candidates_token_count",
    "inputTokens", "outputTokens", "prompt_eval_count", "eval_count", "ResponseMetadata"})
_NESTED = ("usage", "usage_metadata", "token_usage")  # a usage block inside the source
_NESTED_KEYS = frozenset(_NESTED)
_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name")
_ANSWER_KEYS = ("model", "model_version", "modelVersion", "model_name")  # in a response's raw
_ANSWER_KEY_SET = frozenset(_ANSWER_KEYS)


def _shape(cls: type) -> int | dict[str, bool]:
    shape: int | dict[str, bool] = (
        _MAPPING if issubclass(cls, Mapping) else _SCALAR if issubclass(cls, _SCALARS) else {})
    if len(_SHAPES) < 1_000:
        _SHAPES[cls] = shape
    return shape


def _absent(cls: type, key: str) -> bool:
    """Whether no instance of ``cls`` can have attribute ``key``: a pydantic model without
    such a field, class attribute or extras. Reading one would raise inside pydantic's
    ``__getattr__`` (an exception per miss, and most keys read here miss)."""
    return (issubclass(cls, BaseModel) and key not in cls.model_fields
            and not hasattr(cls, key) and cls.model_config.get("extra") != "allow"
            and getattr(cls, "__getattr__", None) is getattr(BaseModel, "__getattr__", None))


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for an object (a plain attribute only)."""
    if obj is None:
        return None
    cls = type(obj)
    if cls is dict:
        return obj.get(key)
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _shape(cls)
    if type(shape) is not dict:
        return obj.get(key) if shape is _MAPPING else None
    try:
        absent = shape[key]
    except KeyError:
        absent = _absent(cls, key)
        if len(shape) < 1_000:
            shape[key] = absent
    if absent:
        return None
    try:
        value = getattr(obj, key, None)
    except Exception:  # a property that raises
        return None
    return None if callable(value) else value

lookup = _get  # for the other LlamaIndex modules


def readable(cls: type, keys: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``keys`` that :func:`_get` may find on an instance of ``cls`` (the others it
    answers None for without looking), cached per class: an LLM's start reads a dozen keys,
    most of which its class does not have."""
    cache_key = (cls, keys)
    found = _READABLE.get(cache_key)
    if found is None:
        shape = _SHAPES.get(cls)
        if shape is None:
            shape = _shape(cls)
        found = tuple(k for k in keys if not _absent(cls, k)) if type(shape) is dict else keys
        if len(_READABLE) < 1_000:
            _READABLE[cache_key] = found
    return found


def _int(value: Any) -> int:
    if type(value) is int:  # the usual count (a bool is not one: its type is bool)
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    if isinstance(value, str) and value.isdigit():  # HTTP headers
        return int(value)
    return 0


def usage_of(source: Any) -> Usage | None:
    """Usage in one provider-shaped container (a usage block or the response holding it)."""
    if source is None:
        return None
    if type(source) is dict:
        if _USAGE_KEYS.isdisjoint(source):
            return None
        get: Callable[[str], Any] = source.get  # what _get does for a dict, minus a frame a key
        nested = not _NESTED_KEYS.isdisjoint(source)  # (one C call, not three gets)
    else:
        get, nested = functools.partial(_get, source), True
    if nested:
        for key in _NESTED:
            inner = get(key)
            if inner is not None and inner is not source:
                found = usage_of(inner)
                if found is not None:
                    return found
    prompt, completion = get("prompt_tokens"), get("completion_tokens")
    if prompt is not None or completion is not None:  # OpenAI chat
        # _int() inline for the usual positive int: this runs once per LLM call.
        prompt = prompt if type(prompt) is int and prompt > 0 else _int(prompt)
        completion = (completion if type(completion) is int and completion > 0
                      else _int(completion))
        total = get("total_tokens")
        total = total if type(total) is int and total > 0 else _int(total)
        details_in, details_out = get("prompt_tokens_details"), get("completion_tokens_details")
        return Usage(prompt, completion, total or prompt + completion,
                     0 if details_in is None else _int(_get(details_in, "cached_tokens")), 0,
                     0 if details_out is None else _int(_get(details_out, "reasoning_tokens")))
    if get("input_tokens") is not None or get("output_tokens") is not None:
        cache_read = _int(get("cache_read_input_tokens"))
        cache_creation = _int(get("cache_creation_input_tokens"))
        inputs = _int(get("input_tokens")) + cache_read + cache_creation  # Anthropic
        outputs = _int(get("output_tokens"))
        details_in = get("input_tokens_details")  # OpenAI responses API
        details_out = get("output_tokens_details")
        cache_read = cache_read or _int(_get(details_in, "cached_tokens"))
        total = _int(get("total_tokens"))
        return Usage(inputs, outputs, max(total, inputs + outputs),
                     cache_read_tokens=cache_read, cache_creation_tokens=cache_creation,
                     reasoning_tokens=_int(_get(details_out, "reasoning_tokens")))
    if get("prompt_token_count") is not None or get("candidates_token_count") is not None:
        prompt = _int(get("prompt_token_count"))  # Gemini
        thoughts = _int(get("thoughts_token_count"))
        completion = _int(get("candidates_token_count")) + thoughts
        return Usage(prompt, completion,
                     _int(get("total_token_count")) or prompt + completion,
                     cache_read_tokens=_int(get("cached_content_token_count")),
                     reasoning_tokens=thoughts)
    if get("inputTokens") is not None or get("outputTokens") is not None:  # Bedrock Converse
        prompt, completion = _int(get("inputTokens")), _int(get("outputTokens"))
        return Usage(prompt, completion, _int(get("totalTokens")) or prompt + completion,
                     cache_read_tokens=_int(get("cacheReadInputTokens")),
                     cache_creation_tokens=_int(get("cacheWriteInputTokens")))
    if get("prompt_eval_count") is not None or get("eval_count") is not None:  # Ollama
        prompt = _int(get("prompt_eval_count"))
        completion = _int(get("eval_count"))
        return Usage(prompt, completion, prompt + completion)
    headers = _get(get("ResponseMetadata"), "HTTPHeaders")  # Bedrock invoke
    if _get(headers, "x-amzn-bedrock-input-token-count") is not None:
        prompt = _int(_get(headers, "x-amzn-bedrock-input-token-count"))
        completion = _int(_get(headers, "x-amzn-bedrock-output-token-count"))
        return Usage(prompt, completion, prompt + completion)
    return None


def response_usage(response: Any) -> Usage | None:
    """Usage of a ``ChatResponse`` / ``CompletionResponse``: ``raw`` first, then
    ``additional_kwargs`` (the response's, then its message's); None when none reports any."""
    if response is None:
        return None
    return _usage(response, _get(response, "raw"))


def _usage(response: Any, raw: Any) -> Usage | None:
    """:func:`response_usage`, ``raw`` (the response's) read already."""
    # (No call for what is None: a mock's response has no raw, a completion no message.)
    found = usage_of(raw) if raw is not None else None
    if found is not None and (found.input_tokens or found.output_tokens):
        return found
    # The next places are read only when raw reported nothing.
    extra = _get(response, "additional_kwargs")
    found = usage_of(extra) if extra is not None else None
    if found is None or not (found.input_tokens or found.output_tokens):
        message = _get(response, "message")
        extra = _get(message, "additional_kwargs") if message is not None else None
        found = usage_of(extra) if extra is not None else None
    return found if found is not None and (found.input_tokens or found.output_tokens) else None


def response_model(response: Any) -> str | None:
    """The model the provider says answered (``raw.model`` / ``raw.model_version``...)."""
    return _model(_get(response, "raw"))


def _model(raw: Any) -> str | None:
    if raw is None:
        return None
    if type(raw) is dict:  # the usual raw: no _get frame a key, and most often no such key
        if _ANSWER_KEY_SET.isdisjoint(raw):
            return None
        for key in _ANSWER_KEYS:
            value = raw.get(key)
            if isinstance(value, str) and value:
                return value
        return None
    for key in _ANSWER_KEYS:
        value = _get(raw, key)
        if isinstance(value, str) and value:
            return value
    return None


def usage_and_model(response: Any) -> tuple[Usage | None, str | None]:
    """:func:`response_usage` and :func:`response_model` of an LLM end event's response,
    ``raw`` read once."""
    if response is None:
        return None, None
    raw = _get(response, "raw")
    return _usage(response, raw), _model(raw)


_MODEL_KEYS_OF: dict[type, tuple[str, ...]] = {}  # class -> readable(class, _MODEL_KEYS)


def request_model(llm: Any) -> str | None:
    """The model an LLM or embedding object is configured with."""
    cls = type(llm)
    keys = _MODEL_KEYS_OF.get(cls)  # (readable() keys its cache by a tuple: one more alloc)
    if keys is None:
        keys = readable(cls, _MODEL_KEYS)
        if len(_MODEL_KEYS_OF) < 1_000:
            _MODEL_KEYS_OF[cls] = keys
    for key in keys:
        value = _get(llm, key)
        if isinstance(value, str) and value:
            return value
    try:
        value = llm.metadata.model_name
    except Exception:  # metadata is a property on every LLM; a broken one must not matter
        return None
    return value if isinstance(value, str) and value and value != "unknown" else None


# Package of the LLM class (``llama_index.llms.<package>``) -> provider name (LangChain's
# ``ls_provider`` spelling, which the OTel sink maps to the GenAI convention's names).
_PROVIDERS = {
    "openai": "openai", "azure_openai": "azure", "openai_like": "openai",
    "anthropic": "anthropic", "gemini": "google_genai", "google_genai": "google_genai",
    "vertex": "google_vertexai", "bedrock": "amazon_bedrock", "bedrock_converse": "amazon_bedrock",
    "ollama": "ollama", "mistralai": "mistralai", "groq": "groq", "cohere": "cohere",
    "huggingface": "huggingface", "deepseek": "deepseek", "fireworks": "fireworks",
    "together": "together", "ibm": "ibm", "watsonx": "ibm",
}


_PROVIDER_OF: dict[type, str | None] = {}


def provider_of(llm: Any) -> str | None:
    """The provider, when the LLM's integration package says it (``llama_index.llms.openai``);
    cached per class (it depends on the class's module only)."""
    cls = type(llm)
    try:
        return _PROVIDER_OF[cls]
    except KeyError:
        pass
    module = cls.__module__ or ""
    found = None
    for prefix in ("llama_index.llms.", "llama_index.embeddings."):
        if module.startswith(prefix):
            found = _PROVIDERS.get(module[len(prefix):].split(".", 1)[0])
            break
    if len(_PROVIDER_OF) < 1_000:
        _PROVIDER_OF[cls] = found
    return found
