"""Configuration: one frozen :class:`Config`, resolved once, from defaults < file < env < code.

Files: ``hypertool.toml`` (top-level keys) or ``[tool.hypertool]`` in ``pyproject.toml``, looked
up in the working directory unless a path is given (argument or ``HYPERTOOL_CONFIG``).
Env vars: ``HYPERTOOL_<KEY>`` for every scalar key, e.g. ``HYPERTOOL_LABEL_CAP=100``.
Every error names the file (or env var), the key and the reason.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hypertool_callbacks._env import ENV_ACTIVATE as ENV_ACTIVATE
from hypertool_callbacks.errors import ConfigError

_log = logging.getLogger(__name__)

ENV_PREFIX = "HYPERTOOL_"
ENV_CONFIG = "HYPERTOOL_CONFIG"
"""Path of a configuration file (TOML)."""

# Names that frameworks give to everything: never a persona, an agent or a stage.
DEFAULT_GENERIC_NAMES = (
    "LangGraph", "agent", "model", "tools", "call_model", "call_agent", "should_continue",
    "__start__", "__end__", "RunnableSequence", "RunnableLambda", "RunnableParallel",
    "RunnableAssign", "Prompt", "ChatPromptTemplate", "route_to_active_agent",
)

# Quality-gate verdict words: phrases matched at the start of a gate's text output (any case,
# ``_``/``-`` read as spaces; the longest match wins). See context/gates.py.
DEFAULT_GATE_FAIL_WORDS = (
    "fail", "fails", "failed", "failure", "failing", "reject", "rejects", "rejected",
    "rejection", "false", "blocked", "denied", "invalid", "incorrect", "unacceptable", "not",
    "revise", "revised", "revision", "revisions", "rework", "needs revision", "needs work",
    "needs changes", "needs improvement", "changes requested", "changes required",
    "request changes", "requested changes", "do not merge", "no go", "nogo",
)
DEFAULT_GATE_PASS_WORDS = (
    "pass", "passes", "passed", "passing", "approve", "approves", "approved", "approval",
    "accept", "accepts", "accepted", "lgtm", "sgtm", "ok", "okay", "true", "yes", "success",
    "successful", "succeeded", "valid", "correct", "good", "fine", "looks good", "looks fine",
    "all good", "no issues", "no problems", "no findings", "no blocking issues",
    "no changes needed", "ship it",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matcher(_Strict):
    """How a persona/stage/gate rule recognises a run. Any match wins."""

    names: list[str] = Field(default_factory=list, description="globs on run/agent/node name")
    regex: list[str] = Field(default_factory=list, description="regexes on run/agent/node name")
    nodes: list[str] = Field(default_factory=list, description="globs on LangGraph node")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from exc
        return patterns


class PersonaConfig(Matcher):
    prompt_keywords: list[str] = Field(
        default_factory=list, description="case-insensitive words in the system prompt"
    )
    tools: list[str] = Field(default_factory=list, description="globs on tool names it calls")
    budget_tokens: int | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                     description="USD budget, same scope as budget_tokens")
    budget_scope: Literal["workflow", "process"] = "workflow"
    budget_window_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _window_needs_process_scope(self) -> PersonaConfig:
        if self.budget_window_seconds is not None and self.budget_scope != "process":
            raise ValueError("budget_window_seconds needs budget_scope = 'process'")
        return self


class PriceOverride(_Strict):
    """USD per million tokens for one model (``[prices."<model>"]``), genai-prices' field
    names; wins over genai-prices' data. Input includes cache reads and writes: unset cache
    prices fall back to the input price, as in genai-prices."""

    input_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    output_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cache_read_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cache_write_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _complete(self) -> PriceOverride:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("a price override needs at least one of " + ", ".join(
                type(self).model_fields))
        if self.input_mtok is None and (self.cache_read_mtok is not None
                                        or self.cache_write_mtok is not None):
            # Cache tokens are input tokens: genai-prices refuses a cache price without one.
            raise ValueError("cache_read_mtok / cache_write_mtok need input_mtok")
        return self


class OtelSettings(_Strict):
    """OpenTelemetry spans (``[otel]``). Exporters come from the standard ``OTEL_*`` env vars."""

    enabled: bool | None = Field(
        default=None, description="None: on when the opentelemetry SDK is installed")
    capture_content: bool | None = Field(
        default=None,
        description="prompt/completion text in spans; None: follow "
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT (default off)")
    content_max_chars: int = Field(default=4096, ge=0)
    console: bool = Field(default=False, description="also print spans to stdout")
    jsonl_path: str | None = Field(default=None, description="also append spans to this file")
    jsonl_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=0,
        description="past this size the file moves to <path>.1 (one backup kept); 0: never")


class LangfuseSettings(_Strict):
    """Langfuse traces (``[langfuse]``). Keys and host come from ``LANGFUSE_*`` env vars."""

    enabled: bool | None = Field(
        default=None, description="None: on when LANGFUSE_PUBLIC_KEY and _SECRET_KEY are set")
    persona_as_user: bool = Field(
        default=False, description="use the persona as Langfuse user_id (per-persona analytics)")
    capture_content: bool = Field(default=True, description="send inputs/outputs")
    content_max_chars: int = Field(
        default=4096, ge=1, description="each input/output cut to this many characters")
    flush_timeout_seconds: float = Field(default=5.0, gt=0)


class Config(_Strict):
    """Everything hypertool-callbacks can be told. See README for each key."""

    personas: dict[str, PersonaConfig] = Field(default_factory=dict)
    stages: dict[str, Matcher] = Field(default_factory=dict)
    gates: dict[str, Matcher] = Field(default_factory=dict)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    label_cap: int = Field(default=50, ge=1, le=10_000)
    on_budget_exceeded: Literal["record", "warn", "raise"] = "record"
    strict: bool = False
    estimate_missing_usage: bool = False
    run_ttl_seconds: float = Field(default=3600.0, gt=0)
    max_runs: int = Field(default=10_000, ge=10)
    max_executions: int = Field(default=10_000, ge=10)
    extra_generic_names: list[str] = Field(default_factory=list)
    gate_pass_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GATE_PASS_WORDS),
        description="words/phrases a passing gate's text starts with (replaces the default)")
    gate_fail_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_GATE_FAIL_WORDS),
        description="words/phrases a failing gate's text starts with (replaces the default)")
    node_personas: bool = Field(
        default=True, description="a run nothing else names takes its LangGraph node's name")
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_addr: str = "127.0.0.1"
    metrics_created_series: bool = Field(
        default=False, description="expose the *_created series (twice the series count)")
    metrics_textfile: str | None = Field(
        default=None, description="write the metrics to this file (.prom) at exit")
    pushgateway_url: str | None = Field(
        default=None, description="push the metrics to this Pushgateway at exit")
    pushgateway_job: str = Field(default="hypertool", min_length=1,
                                 description="the Pushgateway job (grouping key)")
    exit_flush_seconds: float = Field(
        default=1.0, ge=0, allow_inf_nan=False,
        description="at exit, how long all backends together may take to send what is left")
    otel: OtelSettings = Field(default_factory=OtelSettings)
    langfuse: LangfuseSettings = Field(default_factory=LangfuseSettings)

    @field_validator("personas", "stages", "gates", "prices")
    @classmethod
    def _names_are_labels(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name or len(name) > 64 or not name.isprintable():
                raise ValueError(f"name {name!r} must be 1-64 printable characters")
        return value

    @field_validator("gate_pass_words", "gate_fail_words")
    @classmethod
    def _words_are_words(cls, value: list[str]) -> list[str]:
        for word in value:
            if not word.strip() or len(word) > 64 or not word.isprintable():
                raise ValueError(f"word {word!r} must be 1-64 printable characters")
        return value

    @property
    def generic_names(self) -> frozenset[str]:
        return frozenset(DEFAULT_GENERIC_NAMES) | frozenset(self.extra_generic_names)


_SCALAR_KEYS = {
    name: info for name, info in Config.model_fields.items()
    if name not in {"personas", "stages", "gates", "prices", "extra_generic_names",
                    "gate_pass_words", "gate_fail_words", "otel",
                    "langfuse"}
}


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model holding the last key of an error location (``personas.x.key``)."""
    model: type[BaseModel] = Config
    parts = list(loc[:-1])
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:  # a named table: the next part is the name
            annotation = typing.get_args(annotation)[1]
            if not parts:
                return None
            parts.pop(0)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def did_you_mean(loc: tuple[int | str, ...]) -> str:
    """`` (did you mean 'budget_tokens'?)`` for a misspelt key, else ``""``."""
    model = _model_at(loc)
    if model is None or not loc:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_errors(exc: ValidationError, origin: str, env: bool = False) -> str:
    lines = [f"invalid hypertool configuration in {origin}:"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "<root>"
        if env and err["loc"]:
            key = f"{ENV_PREFIX}{str(err['loc'][0]).upper()} ({key})"
        hint = did_you_mean(tuple(err["loc"])) if err["type"] == "extra_forbidden" else ""
        lines.append(f"  {key}: {err['msg']}{hint}")
    return "\n".join(lines)


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Raw settings from a TOML file (``[tool.hypertool]`` for ``pyproject.toml``)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read hypertool configuration {file}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"hypertool configuration {file} is not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {file}: {exc}") from exc
    if file.name == "pyproject.toml":
        section = data.get("tool", {}).get("hypertool", {})
        return dict(section) if isinstance(section, dict) else {}
    return data


def _find_file(cwd: Path) -> Path | None:
    candidate = cwd / "hypertool.toml"
    if candidate.is_file():
        return candidate
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and read_file(pyproject):
        return pyproject
    return None


def read_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Scalar settings from ``HYPERTOOL_<KEY>`` variables.

    Unknown ``HYPERTOOL_*`` variables are logged, not fatal: other tools of the hypertool
    family share the prefix, and an env var must not stop an app from starting.
    """
    values: dict[str, str] = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in (ENV_ACTIVATE, ENV_CONFIG):
            continue
        key = var[len(ENV_PREFIX):].lower()
        if key not in _SCALAR_KEYS:
            _log.warning("ignoring unknown environment variable %s", var)
            continue
        values[key] = raw
    return values


def config_warnings(data: Mapping[str, Any]) -> list[str]:
    """What a valid file probably did not mean: empty tables (a ``[personas.x]`` with nothing
    under it only declares the name; a misplaced key often leaves its table empty)."""
    warnings: list[str] = []

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, Mapping):
                if value:
                    walk(value, f"{prefix}{key}.")
                else:
                    warnings.append(f"[{prefix}{key}] is empty")

    walk(data, "")
    return warnings


def config_file(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The file :func:`load_config` reads: ``path``, else ``HYPERTOOL_CONFIG``, else
    ``hypertool.toml`` / ``pyproject.toml`` (with ``[tool.hypertool]``) in ``cwd``."""
    env = os.environ if environ is None else environ
    if path:
        return Path(path)
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    try:
        return _find_file(Path(cwd) if cwd else Path.cwd())
    except FileNotFoundError:  # the working directory was deleted: no file to find
        return None
    except ConfigError:  # an unreadable pyproject.toml: load_config reports it
        return Path(cwd or Path.cwd()) / "pyproject.toml"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Config:
    """Resolve the configuration once: defaults < file < ``HYPERTOOL_*`` env < ``overrides``."""
    env = os.environ if environ is None else environ
    file = config_file(path, environ=env, cwd=cwd)
    data: dict[str, Any] = read_file(file) if file else {}
    origin = str(file) if file else "defaults"
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, origin)) from None
    env_values = read_env(env)
    if env_values:
        try:
            Config.model_validate({**data, **env_values})
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, "environment", env=True)) from None
    try:
        return Config.model_validate({**data, **env_values, **overrides})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, "arguments")) from None
