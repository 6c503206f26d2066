"""Prompts are loaded by name, overridable by folder or environment, and fail loudly."""

from __future__ import annotations

import pytest

from apigen_mt.prompts import SHIPPED, PromptError, load_prompt, prompt_path, render_prompt


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A temporary stand-in for the shipped folder, so the test needs no real prompt file."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "greeter.md").write_text('Hello ${name}. JSON stays as is: {"a": 1}\n')
    monkeypatch.setattr("apigen_mt.prompts.SHIPPED", folder)
    monkeypatch.delenv("APIGEN_MT_PROMPTS_DIR", raising=False)
    return folder


def test_render_fills_placeholders_and_keeps_braces(shipped):
    assert render_prompt("greeter", name="Ada") == 'Hello Ada. JSON stays as is: {"a": 1}\n'


def test_missing_value_and_missing_prompt_are_clear_errors(shipped):
    with pytest.raises(PromptError, match=r"needs a value for \$\{name\}"):
        render_prompt("greeter")
    with pytest.raises(PromptError, match="no prompt 'nowhere'"):
        load_prompt("nowhere")
    with pytest.raises(PromptError, match="invalid prompt name"):
        load_prompt("../etc/passwd")


def test_override_folder_then_environment_then_shipped(shipped, tmp_path, monkeypatch):
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    env_dir.mkdir()
    arg_dir.mkdir()
    (env_dir / "greeter.md").write_text("env ${name}")
    (arg_dir / "greeter.md").write_text("arg ${name}")
    assert prompt_path("greeter") == shipped / "greeter.md"
    monkeypatch.setenv("APIGEN_MT_PROMPTS_DIR", str(env_dir))
    assert render_prompt("greeter", name="x") == "env x"
    assert render_prompt("greeter", prompts_dir=arg_dir, name="x") == "arg x"


def test_shipped_folder_is_the_package():
    assert (SHIPPED / "__init__.py").is_file()
