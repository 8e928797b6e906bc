"""Configuration: where it is read from, in which order, and how bad input is reported."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from hypertool_callbacks.config import Config, load_config
from hypertool_callbacks.errors import ConfigError

HYPERTOOL_TOML = """
label_cap = 3
on_budget_exceeded = "warn"

[personas.reviewer]
names = ["review*"]
budget_tokens = 1000

[stages.testing]
nodes = ["test"]

[gates.review]
names = ["review"]
"""

PYPROJECT = """
[project]
name = "someapp"

[tool.hypertool]
label_cap = 4

[tool.hypertool.personas.planner]
prompt_keywords = ["plan"]
budget_tokens = 50
budget_scope = "process"
budget_window_seconds = 60
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- sources -------------------------------------------------------------------------------


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    config = load_config(environ={}, cwd=tmp_path)
    assert config == Config()
    assert config.label_cap == 50
    assert config.on_budget_exceeded == "record"
    assert config.strict is False
    assert config.personas == {}


def test_hypertool_toml_in_working_directory(tmp_path: Path) -> None:
    write(tmp_path, "hypertool.toml", HYPERTOOL_TOML)
    config = load_config(environ={}, cwd=tmp_path)
    assert config.label_cap == 3
    assert config.on_budget_exceeded == "warn"
    assert list(config.personas) == ["reviewer"]
    assert config.personas["reviewer"].names == ["review*"]
    assert config.personas["reviewer"].budget_tokens == 1000
    assert config.personas["reviewer"].budget_scope == "workflow"
    assert config.stages["testing"].nodes == ["test"]
    assert config.gates["review"].names == ["review"]


def test_tool_hypertool_section_of_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", PYPROJECT)
    config = load_config(environ={}, cwd=tmp_path)
    assert config.label_cap == 4
    planner = config.personas["planner"]
    assert planner.prompt_keywords == ["plan"]
    assert (planner.budget_tokens, planner.budget_scope, planner.budget_window_seconds) == (
        50, "process", 60.0)


def test_pyproject_without_hypertool_section_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 99\n')
    assert load_config(environ={}, cwd=tmp_path) == Config()


def test_hypertool_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", PYPROJECT)
    write(tmp_path, "hypertool.toml", HYPERTOOL_TOML)
    config = load_config(environ={}, cwd=tmp_path)
    assert config.label_cap == 3
    assert list(config.personas) == ["reviewer"]


def test_hypertool_config_env_names_the_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "conf"
    elsewhere.mkdir()
    path = write(elsewhere, "team.toml", "label_cap = 11\n")
    write(tmp_path, "hypertool.toml", "label_cap = 3\n")  # ignored: the env var names a file
    config = load_config(environ={"HYPERTOOL_CONFIG": str(path)}, cwd=tmp_path)
    assert config.label_cap == 11


def test_path_argument_wins_over_hypertool_config(tmp_path: Path) -> None:
    given = write(tmp_path, "given.toml", "label_cap = 12\n")
    named = write(tmp_path, "named.toml", "label_cap = 13\n")
    config = load_config(given, environ={"HYPERTOOL_CONFIG": str(named)}, cwd=tmp_path)
    assert config.label_cap == 12


def test_path_argument_may_be_a_pyproject(tmp_path: Path) -> None:
    sub = tmp_path / "app"
    sub.mkdir()
    path = write(sub, "pyproject.toml", PYPROJECT)
    assert load_config(path, environ={}, cwd=tmp_path).label_cap == 4


def test_env_scalars(tmp_path: Path) -> None:
    environ = {
        "HYPERTOOL_LABEL_CAP": "7",
        "HYPERTOOL_ON_BUDGET_EXCEEDED": "raise",
        "HYPERTOOL_STRICT": "true",
        "HYPERTOOL_ESTIMATE_MISSING_USAGE": "1",
        "HYPERTOOL_RUN_TTL_SECONDS": "12.5",
        "HYPERTOOL_METRICS_PORT": "9100",
    }
    config = load_config(environ=environ, cwd=tmp_path)
    assert config.label_cap == 7
    assert config.on_budget_exceeded == "raise"
    assert config.strict is True
    assert config.estimate_missing_usage is True
    assert config.run_ttl_seconds == 12.5
    assert config.metrics_port == 9100


def test_activation_and_path_variables_are_not_settings(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "x.toml", "")
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks.config"):
        config = load_config(environ={"HYPERTOOL_CALLBACKS": "true",
                                      "HYPERTOOL_CONFIG": str(path)}, cwd=tmp_path)
    assert config == Config()
    assert caplog.records == []


def test_unknown_env_variable_is_logged_not_fatal(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hypertool_callbacks.config"):
        config = load_config(environ={"HYPERTOOL_LABLE_CAP": "7", "PATH": "/bin"}, cwd=tmp_path)
    assert config.label_cap == 50
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring unknown environment variable HYPERTOOL_LABLE_CAP"]


def test_non_scalar_keys_are_not_read_from_env(tmp_path: Path) -> None:
    config = load_config(environ={"HYPERTOOL_PERSONAS": "{}", "HYPERTOOL_OTEL": "x"},
                         cwd=tmp_path)
    assert config == Config()


# -- precedence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_file", "in_env", "in_kwargs", "expected"),
    [
        (False, False, False, 50),  # default
        (True, False, False, 3),  # file over default
        (True, True, False, 7),  # env over file
        (False, True, False, 7),  # env over default
        (True, True, True, 9),  # kwargs over env
        (True, False, True, 9),  # kwargs over file
    ],
)
def test_precedence_defaults_file_env_kwargs(tmp_path: Path, in_file: bool, in_env: bool,
                                             in_kwargs: bool, expected: int) -> None:
    if in_file:
        write(tmp_path, "hypertool.toml", "label_cap = 3\n")
    environ = {"HYPERTOOL_LABEL_CAP": "7"} if in_env else {}
    kwargs: dict[str, Any] = {"label_cap": 9} if in_kwargs else {}
    assert load_config(environ=environ, cwd=tmp_path, **kwargs).label_cap == expected


def test_layers_merge_per_key(tmp_path: Path) -> None:
    write(tmp_path, "hypertool.toml", HYPERTOOL_TOML)
    config = load_config(environ={"HYPERTOOL_ON_BUDGET_EXCEEDED": "raise"}, cwd=tmp_path,
                         strict=True)
    assert config.label_cap == 3  # file, untouched by env and kwargs
    assert config.on_budget_exceeded == "raise"  # env over file
    assert config.strict is True  # kwargs
    assert config.personas["reviewer"].budget_tokens == 1000  # file


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(environ={}, cwd=tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        config.label_cap = 3


# -- errors: file (or env), key and reason --------------------------------------------------


def test_unknown_nested_key_names_file_key_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "hypertool.toml", "[personas.x]\nbudjet_tokens = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "personas.x.budjet_tokens" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_key_in_pyproject_names_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.hypertool]\nlabel_capp = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    assert str(path) in str(info.value)
    assert "label_capp" in str(info.value)


def test_bad_regex_names_key_and_pattern(tmp_path: Path) -> None:
    path = write(tmp_path, "hypertool.toml", '[stages.build]\nregex = ["ok", "(unclosed"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "stages.build.regex" in message
    assert "invalid regex '(unclosed'" in message


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "hypertool.toml", "label_cap = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    assert str(info.value).startswith(f"invalid TOML in {path}")
    assert "line 1" in str(info.value)


def test_missing_file_named_by_env_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(environ={"HYPERTOOL_CONFIG": str(missing)}, cwd=tmp_path)
    assert str(missing) in str(info.value)


def test_bad_value_in_file_names_key_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "hypertool.toml", '[personas.coder]\nbudget_tokens = -5\n')
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "personas.coder.budget_tokens" in message
    assert "greater than 0" in message


def test_window_without_process_scope_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "hypertool.toml", '[personas.coder]\nbudget_tokens = 5\n'
          "budget_window_seconds = 60\n")
    with pytest.raises(ConfigError, match="budget_window_seconds needs budget_scope"):
        load_config(environ={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("HYPERTOOL_LABEL_CAP", "seven", "label_cap"),
        ("HYPERTOOL_LABEL_CAP", "0", "label_cap"),
        ("HYPERTOOL_ON_BUDGET_EXCEEDED", "explode", "on_budget_exceeded"),
        ("HYPERTOOL_STRICT", "maybe", "strict"),
    ],
)
def test_bad_env_value_names_the_environment(tmp_path: Path, var: str, value: str,
                                             key: str) -> None:
    write(tmp_path, "hypertool.toml", "label_cap = 3\n")  # the file itself is fine
    with pytest.raises(ConfigError) as info:
        load_config(environ={var: value}, cwd=tmp_path)
    message = str(info.value)
    assert "in environment:" in message
    assert f"  {var} ({key}): " in message  # the variable to fix, and the key it sets
    assert "hypertool.toml" not in message


def test_bad_keyword_argument_names_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, cwd=tmp_path, label_cap=0)
    assert "invalid hypertool configuration in arguments" in str(info.value)
    assert "label_cap" in str(info.value)


@pytest.mark.parametrize("name", ["", "a" * 65, "tab\there"])
def test_persona_names_must_be_usable_labels(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="1-64 printable characters"):
        load_config(environ={}, cwd=tmp_path, personas={name: {}})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_config_check_warns_on_empty_sections(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from hypertool_callbacks.cli import main

    path = tmp_path / "hypertool.toml"
    path.write_text('[personas.reviewer]\n[personas.coder]\nnames = ["code*"]\n[otel]\n')
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  warning: [personas.reviewer] is empty" in out
    assert "  warning: [otel] is empty" in out
    assert "coder] is empty" not in out


@pytest.mark.parametrize(("toml", "key", "hint"), [
    ("lable_cap = 3\n", "lable_cap", "label_cap"),
    ("[personas.r]\nnode = ['x']\n", "personas.r.node", "nodes"),
    ("[otel]\ncapture_contents = true\n", "otel.capture_contents", "capture_content"),
    ("[stages.s]\nregexp = ['x']\n", "stages.s.regexp", "regex"),
])
def test_a_misspelt_key_gets_a_did_you_mean(tmp_path: Path, toml: str, key: str,
                                             hint: str) -> None:
    path = tmp_path / "hypertool.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    message = str(raised.value)
    assert str(path) in message
    assert f"{key}: Extra inputs are not permitted (did you mean {hint!r}?)" in message


def test_an_unknown_key_far_from_any_gets_no_guess(tmp_path: Path) -> None:
    path = tmp_path / "hypertool.toml"
    path.write_text("zzzzzz = 1\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert "zzzzzz: Extra inputs are not permitted" in str(raised.value)
    assert "did you mean" not in str(raised.value)
