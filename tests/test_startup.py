"""Start-up activation, in real subprocesses: what the ``.pth`` hook and the launcher import,
which values of ``HYPERTOOL_CALLBACKS`` turn it on, and what they say."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "hypertool-callbacks"
FRAMEWORK_MODULES = ("langchain_core", "pydantic", "pydantic.v1", "langsmith", "anyio",
                     "prometheus_client", "opentelemetry", "langfuse", "llama_index")

# An unmodified app: one LangChain call, then what the default registry recorded.
APP = textwrap.dedent("""
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from prometheus_client import REGISTRY

    usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    model = FakeMessagesListChatModel(responses=[AIMessage("ok", usage_metadata=usage)] * 2)
    print(model.invoke("hi", config={"tags": ["persona:p"]}).content)
    print("tokens", REGISTRY.get_sample_value("hypertool_persona_tokens_used_total", {
        "persona": "p", "model": "fake-messages-list-chat-model", "token_type": "input"}))
""")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HYPERTOOL_", "PROMETHEUS_", "OTEL_", "LANGFUSE_"))}
    env.update(extra)
    return env


def _python(code: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args, "-c", code], env=_env(**env), cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_activation_imports_no_framework_until_the_app_does(tmp_path: Path) -> None:
    """Issue 15.2: with the variable inherited, a process that never imports a framework
    gets none of them (nor pydantic) from us."""
    code = (f"import sys, json; print(json.dumps([m for m in {FRAMEWORK_MODULES!r} "
            "if m in sys.modules]), 'hypertool_callbacks.frameworks' in sys.modules)")
    done = _python(code, tmp_path, HYPERTOOL_CALLBACKS="true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]  # nothing loaded, yet activation is on
    assert done.stderr == ""


def test_importing_the_package_imports_no_framework(tmp_path: Path) -> None:
    code = ("import sys, hypertool_callbacks as ht; print(ht.__version__, "
            f"[m for m in {FRAMEWORK_MODULES!r} if m in sys.modules])")
    for value in ("", "true"):
        done = _python(code, tmp_path, HYPERTOOL_CALLBACKS=value)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split(None, 1)[1].strip() == "[]"


def test_framework_imported_after_start_up_is_attached(tmp_path: Path) -> None:
    done = _python(APP, tmp_path, HYPERTOOL_CALLBACKS="true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "3.0"]


def test_framework_imported_before_the_package_is_attached(tmp_path: Path) -> None:
    """An app that imports LangChain first and sets the variable itself, then imports us."""
    code = ("import os, langchain_core\nos.environ['HYPERTOOL_CALLBACKS'] = '1'\n"
            "import hypertool_callbacks\n" + APP)
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "3.0"]


@pytest.mark.parametrize("value", ["off", "no", "false", "0", "FALSE", " Off "])
def test_false_values_do_not_activate(tmp_path: Path, value: str) -> None:
    """Issue 14.2: LangChain's own truthiness counts "off" as on; ours does not."""
    done = _python(APP, tmp_path, HYPERTOOL_CALLBACKS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "None"]
    assert done.stderr == ""


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_true_values_activate(tmp_path: Path, value: str) -> None:
    done = _python(APP, tmp_path, HYPERTOOL_CALLBACKS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "3.0"]


def test_an_unknown_value_is_off_with_one_warning(tmp_path: Path) -> None:
    code = "import hypertool_callbacks._env as e; e.flag('maybe'); e.flag('maybe')\n" + APP
    done = _python(code, tmp_path, HYPERTOOL_CALLBACKS="maybe")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "None"]
    assert done.stderr.count("HYPERTOOL_CALLBACKS='maybe' is neither") == 1


def test_uninstrument_detaches_what_the_env_var_attached(tmp_path: Path) -> None:
    code = APP + textwrap.dedent("""
        import hypertool_callbacks
        hypertool_callbacks.uninstrument()
        model.invoke("hi", config={"tags": ["persona:p"]})
        print("after", REGISTRY.get_sample_value("hypertool_persona_tokens_used_total", {
            "persona": "p", "model": "fake-messages-list-chat-model", "token_type": "input"}))
    """)
    done = _python(code, tmp_path, HYPERTOOL_CALLBACKS="true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "3.0", "after", "3.0"]


def test_env_activation_logs_one_info_line_when_logging_is_on(tmp_path: Path) -> None:
    (tmp_path / "hypertool.toml").write_text("label_cap = 20\n")
    code = "import logging\nlogging.basicConfig(level=logging.INFO)\n" + APP
    done = _python(code, tmp_path, HYPERTOOL_CALLBACKS="true")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "hypertool-callbacks active" in line]
    assert len(lines) == 1, done.stderr
    assert "prometheus" in lines[0] and "metrics off" in lines[0]
    assert lines[0].endswith(f"; config {tmp_path / 'hypertool.toml'}")


def test_start_up_config_error_is_logged_and_the_app_runs(tmp_path: Path) -> None:
    (tmp_path / "hypertool.toml").write_text("[personas.p]\nbudjet_tokens = 5\n")
    done = _python(APP, tmp_path, HYPERTOOL_CALLBACKS="true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "None"]
    assert "personas.p.budjet_tokens" in done.stderr
    assert "did you mean 'budget_tokens'?" in done.stderr


# -- the launcher -----------------------------------------------------------------------


def _launch(*command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "run", *command], env=_env(**env), cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_launcher_prints_no_sitecustomize_error_and_says_what_is_active(tmp_path: Path) -> None:
    """Issue 14.1: no ``Error in sitecustomize ... KeyError``; one line says what is on."""
    (tmp_path / "app.py").write_text(APP)
    done = _launch(sys.executable, "app.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "tokens", "3.0"]
    assert "Error in sitecustomize" not in done.stderr
    assert done.stderr.count("hypertool-callbacks active: sinks ") == 1, done.stderr


def test_launcher_chains_to_the_environment_s_own_sitecustomize(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("print('their sitecustomize')\n")
    done = _launch(sys.executable, "-c", "import sitecustomize; print(sitecustomize.__file__)",
                   cwd=tmp_path, PYTHONPATH=str(other))
    assert done.returncode == 0, done.stderr
    # (the launcher's own interpreter runs it too, before it execs the program)
    assert done.stdout.splitlines()[-2:] == ["their sitecustomize",
                                             str(other / "sitecustomize.py")]
    assert "Error in sitecustomize" not in done.stderr


def test_launcher_with_an_interpreter_lacking_the_package_says_so(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    python = bare / "bin" / "python"
    done = _launch(str(python), "-c", "print('app ran')", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "app ran\n"
    assert done.stderr.splitlines() == [
        f"hypertool-callbacks: not active: {python} cannot import hypertool_callbacks; "
        "install hypertool-callbacks in that environment"]


def test_launcher_names_a_program_it_cannot_find(tmp_path: Path) -> None:
    done = _launch("nosuchprog-hypertool", cwd=tmp_path)
    assert done.returncode == 127
    assert done.stderr == "hypertool-callbacks run: nosuchprog-hypertool: command not found\n"
