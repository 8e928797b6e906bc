"""``hypertool-callbacks status``: what activation would do here, where each setting comes from,
and whether each backend answers.

Resolved exactly as the app would resolve it (same working directory, same environment):
activation switch, configuration file, every setting with its origin (``file``, ``env``
naming the variable, or ``default``), the frameworks installed, and for each backend whether
it is reachable now: the metrics port (something serving ``/metrics`` there, or free for
activation to take), the OTLP endpoint, the Langfuse host (a TCP connection, 1 s at most;
no data is sent, no secret printed).
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any, TextIO
from urllib.parse import urlparse

from pydantic import BaseModel

from hypertool_callbacks import _env, frameworks
from hypertool_callbacks._version import __version__
from hypertool_callbacks.config import (
    ENV_PREFIX,
    Config,
    config_file,
    load_config,
    read_env,
    read_file,
)
from hypertool_callbacks.errors import ConfigError

TIMEOUT = 1.0


def origins(config: Config, file_data: Mapping[str, Any], env_values: Mapping[str, str],
            ) -> Iterator[tuple[str, Any, str]]:
    """``(dotted key, value, origin)`` for every setting of ``config``."""
    yield from _walk(config, (), file_data, env_values)


def _walk(model: BaseModel, prefix: tuple[str, ...], data: Any,
          env_values: Mapping[str, str]) -> Iterator[tuple[str, Any, str]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = (*prefix, name)
        raw = data.get(name) if isinstance(data, Mapping) else None
        if isinstance(value, BaseModel):
            yield from _walk(value, key, raw, env_values)
            continue
        if not prefix and name in env_values:
            origin = f"env {ENV_PREFIX}{name.upper()}"
        elif isinstance(data, Mapping) and name in data:
            origin = "file"
        else:
            origin = "default"
        if isinstance(value, dict):  # named tables: list the names, not every rule
            value = ", ".join(value) or "(none)"
        yield ".".join(key), value, origin


def _reachable(url: str) -> str:
    parsed = urlparse(url if "//" in url else f"//{url}")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return f"invalid URL {url!r}"
    if not parsed.hostname:
        return f"invalid URL {url!r}"
    try:
        with socket.create_connection((parsed.hostname, port), timeout=TIMEOUT):
            return "reachable"
    except OSError as exc:
        return f"UNREACHABLE ({exc.strerror or exc})"


def _metrics(config: Config) -> str:
    if config.metrics_port is None:
        return "not served on activation (metrics_port unset; serve_metrics() in code works)"
    where = f"{config.metrics_addr}:{config.metrics_port}"
    host = "127.0.0.1" if config.metrics_addr in ("", "0.0.0.0") else config.metrics_addr
    url = f"http://{host}:{config.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return f"{where}: BUSY (something else answers there: HTTP {exc.code})"
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            return f"{where}: free (activation will serve {url})"
        return f"{where}: UNREACHABLE ({reason})"
    # Prometheus' text format says version=0.0.4; OpenMetrics names itself.
    serving = "version=0.0.4" in kind or "openmetrics" in kind
    return (f"{where}: serving ({url} answers)" if serving
            else f"{where}: BUSY (something that is not /metrics answers)")


def _otel(config: Config, environ: Mapping[str, str]) -> list[str]:
    if config.otel.enabled is False:
        return ["off (otel.enabled = false)"]
    try:
        from hypertool_callbacks.sinks import otel_env
    except ImportError:
        return ["off (the OpenTelemetry SDK is not installed: pip install "
                "'hypertool-callbacks[otel]')"]
    lines = []
    if config.otel.console or config.otel.jsonl_path:
        lines.append(f"local spans: console={config.otel.console}, "
                     f"jsonl_path={config.otel.jsonl_path}")
    names = otel_env.exporter_names(environ)
    if not names:
        lines.append("no exporter configured: spans go to the app's own SDK provider, if it sets "
                     "one (or set OTEL_EXPORTER_OTLP_ENDPOINT, or use opentelemetry-instrument)")
    for name in names:
        if name != "otlp":
            lines.append(f"exporter {name}")
            continue
        protocol = otel_env.otlp_protocol(environ)
        endpoint = next((environ[v] for v in otel_env.ENDPOINT_VARS if environ.get(v)),
                        "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318")
        lines.append(f"exporter otlp ({protocol}) {endpoint}: {_reachable(endpoint)}")
    return lines


def _langfuse(config: Config, environ: Mapping[str, str]) -> str:
    from hypertool_callbacks.sinks.langfuse_env import keys_configured

    if config.langfuse.enabled is False:
        return "off (langfuse.enabled = false)"
    if not keys_configured(environ):
        return "off (LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are not both set)"
    host = (environ.get("LANGFUSE_BASE_URL") or environ.get("LANGFUSE_HOST")
            or "https://cloud.langfuse.com")
    return f"keys set; host {host}: {_reachable(host)}"


def _pricing(config: Config) -> str:
    from hypertool_callbacks.context.cost import price_data_version

    version = price_data_version()
    data = (f"genai-prices {version} (its bundled data, offline)" if version
            else "genai-prices not installed: only [prices] overrides are priced")
    if config.prices:
        data += f"; overrides: {', '.join(sorted(config.prices))}"
    return data


def report(out: TextIO, *, environ: Mapping[str, str] | None = None,
           cwd: str | os.PathLike[str] | None = None) -> int:
    """Print the status; 1 when the configuration is invalid (the error names file and key)."""
    env = os.environ if environ is None else environ
    raw = env.get(_env.ENV_ACTIVATE)
    active = _env.flag(raw)
    print(f"hypertool-callbacks {__version__}", file=out)
    if raw is None:
        switch = "unset: off (set HYPERTOOL_CALLBACKS=true, or use hypertool-callbacks run)"
    else:
        switch = f"{raw!r}: {'on' if active else 'off'}"
    print(f"activation  {_env.ENV_ACTIVATE}={switch}", file=out)
    try:
        file = config_file(environ=env, cwd=cwd)
        file_data = read_file(file) if file else {}
        config = load_config(environ=env, cwd=cwd)
    except ConfigError as exc:
        print(f"config      INVALID: {exc}", file=out)
        return 1
    print(f"config      {file if file else 'no file (defaults)'}", file=out)
    installed = [f"{f.name} ({'installed' if f.installed() else 'not installed'})"
                 for f in frameworks.registered()]
    print(f"frameworks  {', '.join(installed)}", file=out)
    print(f"pricing     {_pricing(config)}", file=out)
    print("settings", file=out)
    for key, value, origin in origins(config, file_data, read_env(env)):
        text = str(value)
        if len(text) > 40:  # long word lists: their size is what matters here
            text = f"{text[:28]}... ({len(value)} items)" if isinstance(value, list) else (
                text[:37] + "...")
        print(f"  {key:<34} {text:<40} {origin}", file=out)
    print("backends", file=out)
    print(f"  prometheus  {_metrics(config)}", file=out)
    for line in _otel(config, env):
        print(f"  otel        {line}", file=out)
    print(f"  langfuse    {_langfuse(config, env)}", file=out)
    return 0


__all__ = ["origins", "report"]
