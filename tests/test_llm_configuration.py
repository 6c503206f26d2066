"""Configuration: per-role model specs, defaults < TOML < environment < overrides, no secrets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from apigen_mt.configuration import (
    ROLES,
    Configuration,
    ConfigurationError,
    ModelSpec,
    add_config_arguments,
    clear_memo,
    config_from_args,
    redact_url,
)

SECRET = "sk-test-DO-NOT-LEAK-1234567890"


def load(tmp_path: Path, toml: str | None = None, env: dict | None = None, **kwargs) -> Configuration:
    path = None
    if toml is not None:
        path = tmp_path / "apigen-mt.toml"
        path.write_text(toml)
    return Configuration.load(path, env=env or {}, use_default_file=False, **kwargs)


# -- ModelSpec ---------------------------------------------------------------------------------


def test_spec_strings_and_providers():
    assert ModelSpec.model_validate("openai:gpt-4o").provider_and_name() == ("openai", "gpt-4o")
    assert ModelSpec.model_validate("ollama:qwen2.5:7b").provider_and_name() == ("ollama", "qwen2.5:7b")
    assert ModelSpec.model_validate("gpt-4o-mini").provider == "openai"  # inferred, like init_chat_model
    assert ModelSpec.model_validate("claude-sonnet-4-5").provider == "anthropic"
    local = ModelSpec()
    assert local.is_local and local.provider == "local" and local.key_env is None
    served = ModelSpec(model="qwen2.5:7b", base_url="http://127.0.0.1:8000/v1/")
    assert served.provider_and_name() == ("openai-compatible", "qwen2.5:7b")  # literal, not parsed
    assert served.base_url == "http://127.0.0.1:8000/v1"
    assert served.key_env is None  # no key is sent to an arbitrary server unless named
    assert ModelSpec.model_validate("openai:gpt-4o").key_env == "OPENAI_API_KEY"
    assert ModelSpec(model="openai:gpt-4o", api_key_env="MY_KEY").key_env == "MY_KEY"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("qwen2.5:7b", "ollama:qwen2.5:7b"),  # suggests the right spelling
        ("nonsense:model", "unknown provider 'nonsense'"),
        ("my-finetune", "cannot tell which provider"),
        ({"model": "local", "base_url": "http://127.0.0.1:1/v1"}, "takes no base_url"),
        ({"model": "x", "base_url": "127.0.0.1:8000"}, "http(s) URL"),
        ({"model": "local", "temperature": 3}, "temperature"),
        ({"model": "local", "tool_calling": "maybe"}, "tool_calling"),
    ],
)
def test_spec_errors_are_clear(tmp_path, value, needle):
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, overrides={"models": {"generator": value}})
    assert needle in str(info.value)


def test_tool_calling_and_cache_rules():
    assert ModelSpec().effective_tool_calling == "json_schema"  # SmolLM2 has no tool template
    assert ModelSpec.model_validate("openai:gpt-4o").effective_tool_calling == "auto"  # settled per model
    assert ModelSpec(model="local", tool_calling="native").effective_tool_calling == "native"
    assert ModelSpec(temperature=0).cache_enabled() is True
    assert ModelSpec(temperature=0.7).cache_enabled() is False
    assert ModelSpec(temperature=0.7, cache=True).cache_enabled() is True
    assert ModelSpec(temperature=0).cache_enabled(globally=False) is False


# -- defaults and layering -----------------------------------------------------------------------


def test_defaults_every_role_local(tmp_path):
    config = load(tmp_path)
    labels = [label for label, _ in config.models.items()]
    assert labels == ["generator", "reviewer[0]", "reviewer[1]", "reviewer[2]", "feedback",
                      "recombiner", "user", "user_critic", "assistant"]
    assert all(spec.is_local for _, spec in config.models.items())
    assert config.models.generator.temperature > 0 and config.models.user.temperature > 0
    assert config.models.assistant.temperature == 0 and config.models.reviewers[0].temperature == 0
    assert config.cache.enabled and config.cache_path == Path("runs/llm_cache.sqlite")
    assert config.budget.max_calls is None and config.budget.max_tokens is None
    assert config.sources == ("defaults",)
    assert set(ROLES) == set(config.public_dict()["models"])


TOML = """
run_dir = "out"
[models]
all = { timeout = 30 }
generator = "openai:gpt-4o"
reviewers = ["openai:gpt-4o-mini", "local", { model = "ollama:qwen2.5", temperature = 0.2 }]

[models.assistant]
base_url = "http://127.0.0.1:8000/v1"
model = "Qwen/Qwen2.5-7B-Instruct"
api_key_env = "VLLM_KEY"
max_tokens = 300

[budget]
max_calls = 100

[cache]
path = "cache.sqlite"
"""


def test_toml_file(tmp_path):
    config = load(tmp_path, TOML)
    m = config.models
    assert m.generator.model == "openai:gpt-4o"
    assert m.generator.temperature == 0.7  # the role's default survives a model-only entry
    assert [r.model for r in m.reviewers] == ["openai:gpt-4o-mini", "local", "ollama:qwen2.5"]
    assert m.reviewers[2].temperature == 0.2 and m.reviewers[0].temperature == 0.0
    assert all(spec.timeout == 30 for _, spec in m.items())  # "all" reached every role
    assert (m.assistant.base_url, m.assistant.model, m.assistant.max_tokens) == (
        "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct", 300)
    assert config.budget.max_calls == 100
    assert config.run_dir == Path("out") and config.cache_path == Path("cache.sqlite")
    assert config.sources[0] == "defaults" and config.sources[1].startswith("file:")


def test_priority_defaults_toml_env_overrides(tmp_path):
    env = {
        "APIGEN_MT_GENERATOR_TEMPERATURE": "0.2",
        "APIGEN_MT_GENERATOR_MODEL": "openai:gpt-4.1",
        "APIGEN_MT_REVIEWERS_MODEL": "local,openai:o4-mini",
        "APIGEN_MT_REVIEWERS_MAX_TOKENS": "128",
        "APIGEN_MT_USER_CRITIC_MODEL": "ollama:llama3.2",  # longest role name wins over "user"
        "APIGEN_MT_BUDGET_MAX_TOKENS": "5000",
        "APIGEN_MT_CACHE": "off",
        "UNRELATED": "x",
    }
    config = load(tmp_path, TOML, env, overrides={"generator_model": "openai:gpt-4o-mini", "budget_max_calls": 7})
    m = config.models
    assert m.generator.model == "openai:gpt-4o-mini"  # overrides > env > file
    assert m.generator.temperature == 0.2  # env > default
    assert [r.model for r in m.reviewers] == ["local", "openai:o4-mini"]
    assert all(r.max_tokens == 128 and r.timeout == 30 for r in m.reviewers)  # file's "all" kept
    assert m.user_critic.model == "ollama:llama3.2" and m.user.model == "local"
    assert config.budget.max_calls == 7 and config.budget.max_tokens == 5000
    assert config.cache.enabled is False
    assert config.sources[-2:] == ("env", "overrides")


def test_every_role_keys_then_role_keys(tmp_path):
    env = {"APIGEN_MT_MODEL": "stub-model", "APIGEN_MT_BASE_URL": "http://127.0.0.1:9999/v1",
           "APIGEN_MT_ASSISTANT_MODEL": "local"}
    config = load(tmp_path, env=env)
    assert all(spec.base_url == "http://127.0.0.1:9999/v1" for label, spec in config.models.items() if label != "assistant")
    assert config.models.assistant.is_local  # "local" drops the base_url it would inherit


def test_model_with_provider_drops_inherited_endpoint(tmp_path):
    env = {"APIGEN_MT_ASSISTANT_MODEL": "openai:gpt-4o"}
    config = load(tmp_path, TOML, env)
    assert config.models.assistant.base_url is None and config.models.assistant.api_key_env is None
    # a bare name is another model on the same server
    config = load(tmp_path, TOML, {"APIGEN_MT_ASSISTANT_MODEL": "meta-llama/Llama-3.1-8B-Instruct"})
    assert config.models.assistant.base_url == "http://127.0.0.1:8000/v1"
    assert config.models.assistant.api_key_env == "VLLM_KEY"


def test_budget_none_words_and_bad_values(tmp_path):
    assert load(tmp_path, env={"APIGEN_MT_BUDGET_MAX_CALLS": "unlimited"}).budget.max_calls is None
    with pytest.raises(ConfigurationError, match="budget.max_calls"):
        load(tmp_path, env={"APIGEN_MT_BUDGET_MAX_CALLS": "-1"})
    with pytest.raises(ConfigurationError, match="models.generator.temperature"):
        load(tmp_path, env={"APIGEN_MT_GENERATOR_TEMPERATURE": "hot"})


def test_typo_in_a_role_variable_is_reported(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        config = load(tmp_path, env={"APIGEN_MT_GENERATOR_MODLE": "openai:gpt-4o", "APIGEN_MT_LOG_LEVEL": "debug"})
    assert config.models.generator.is_local
    assert "APIGEN_MT_GENERATOR_MODLE" in caplog.text and "LOG_LEVEL" not in caplog.text


def test_bad_toml_names_the_file(tmp_path):
    with pytest.raises(ConfigurationError, match="apigen-mt.toml: not valid TOML"):
        load(tmp_path, "[models\n")
    with pytest.raises(ConfigurationError, match="unknown role 'critic'"):
        load(tmp_path, "[models]\ncritic = 'local'\n")
    with pytest.raises(ConfigurationError, match="unknown model setting"):
        load(tmp_path, "[models.generator]\nmodle = 'local'\n")
    with pytest.raises(ConfigurationError, match="config file not found"):
        Configuration.load(tmp_path / "missing.toml", env={})


def test_default_file_and_config_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "apigen-mt.toml").write_text("[models]\nfeedback = 'openai:gpt-4o'\n")
    assert Configuration.load(env={}).models.feedback.model == "openai:gpt-4o"
    other = tmp_path / "other.toml"
    other.write_text("[models]\nfeedback = 'ollama:phi4'\n")
    assert Configuration.load(env={"APIGEN_MT_CONFIG": str(other)}).models.feedback.model == "ollama:phi4"


# -- secrets ---------------------------------------------------------------------------------------


def test_api_keys_are_refused_without_being_repeated(tmp_path):
    for toml in (f'[models.generator]\nmodel = "openai:gpt-4o"\napi_key = "{SECRET}"\n',
                 f'[models.generator]\nmodel = "openai:gpt-4o"\napi_key_env = "{SECRET}"\n'):
        with pytest.raises(ConfigurationError) as info:
            load(tmp_path, toml)
        assert SECRET not in str(info.value)
        assert "environment variable" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        load(tmp_path, overrides={"generator_api_key": SECRET})
    assert SECRET not in str(info.value)


def test_public_dict_has_no_secrets(tmp_path):
    config = load(tmp_path, overrides={
        "assistant_model": "m", "assistant_base_url": "https://user:pw@host.example/v1?token=abc",
        "assistant_api_key_env": "MY_KEY",
    })
    public = config.public_dict()
    text = json.dumps(public)
    assert "pw" not in text and "abc" not in text and "user:" not in text
    assert public["models"]["assistant"]["base_url"] == "https://***@host.example/v1?***"
    assert public["models"]["assistant"]["api_key_env"] == "MY_KEY"  # the NAME only
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


# -- LangGraph runnable config ----------------------------------------------------------------------


def test_from_runnable_config(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("APIGEN_MT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("APIGEN_MT_GENERATOR_MODEL", "openai:gpt-4o")
    clear_memo()
    config = Configuration.from_runnable_config({"configurable": {
        "thread_id": "t1",  # not ours: ignored
        "generator_temperature": 0.1,
        "reviewers_model": ["local", "ollama:qwen2.5"],
        "budget_max_calls": 3,
    }})
    assert config.models.generator.model == "openai:gpt-4o"  # from the environment
    assert config.models.generator.temperature == 0.1  # configurable on top
    assert [r.model for r in config.models.reviewers] == ["local", "ollama:qwen2.5"]
    assert config.budget.max_calls == 3 and config.sources[-1] == "configurable"
    assert Configuration.from_runnable_config(None).models.generator.model == "openai:gpt-4o"
    clear_memo()

    resolved = Configuration.load(env={}, use_default_file=False, overrides={"user_model": "openai:gpt-4o"})
    got = Configuration.from_runnable_config({"configurable": {**resolved.to_configurable(), "user_temperature": 0.9}})
    assert got.models.generator.is_local  # the runner's config wins over the environment
    assert (got.models.user.model, got.models.user.temperature) == ("openai:gpt-4o", 0.9)
    as_dict = Configuration.from_runnable_config({"configurable": {"apigen_mt": resolved.model_dump(mode="json")}})
    assert as_dict.models == resolved.models


def test_flat_configurable_keys_build_on_the_file_templates(tmp_path):
    """Studio's flat keys (the runner's path too) are one more layer, as load(overrides=...) is:
    a new committee gets the file's every-role and every-reviewer settings."""
    path = tmp_path / "apigen-mt.toml"
    path.write_text('[models]\nall = {base_url = "http://127.0.0.1:8000/v1", model = "m0", timeout = 7}\n'
                    '[models.reviewers]\nmax_tokens = 99\n')
    resolved = Configuration.load(path, env={})
    for config in (
        Configuration.from_runnable_config({"configurable": {**resolved.to_configurable(), "reviewers_model": "m1,m2"}}),
        Configuration.from_runnable_config({"configurable": {"apigen_mt": resolved.model_dump(mode="json"), "reviewers_model": "m1,m2"}}),
        Configuration.load(path, env={}, overrides={"reviewers_model": "m1,m2"}),
    ):
        assert [(r.model, r.base_url, r.timeout, r.max_tokens) for r in config.models.reviewers] == [
            ("m1", "http://127.0.0.1:8000/v1", 7, 99), ("m2", "http://127.0.0.1:8000/v1", 7, 99)]
    assert "templates" not in resolved.public_dict()


# -- command-line flags ----------------------------------------------------------------------------


def test_cli_flags_are_the_top_layer(tmp_path):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    args = parser.parse_args([
        "--config", str(path), "--model", "generator=ollama:llama3.2", "--model", "reviewers=local,local",
        "--base-url", "user=http://127.0.0.1:8001/v1", "--model", "user=tiny",
        "--set", "assistant_temperature=0.5", "--budget-calls", "9", "--no-cache", "--run-dir", str(tmp_path / "r"),
    ])
    config = config_from_args(args, env={"APIGEN_MT_GENERATOR_MODEL": "openai:gpt-4o"})
    m = config.models
    assert m.generator.model == "ollama:llama3.2" and len(m.reviewers) == 2
    assert (m.user.model, m.user.base_url) == ("tiny", "http://127.0.0.1:8001/v1")
    assert m.assistant.temperature == 0.5 and m.assistant.base_url == "http://127.0.0.1:8000/v1"
    assert config.budget.max_calls == 9 and not config.cache.enabled and config.run_dir == tmp_path / "r"
    with pytest.raises(ConfigurationError, match="unknown role"):
        config_from_args(parser.parse_args(["--model", "critic=local"]), env={})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        config_from_args(parser.parse_args(["--set", "generator_colour=red"]), env={})


def test_the_database_url_comes_from_the_toml_file_or_the_environment_and_is_written_without_its_password(tmp_path):
    toml = 'database_url = "postgresql://ann:s3cret@db.example:5432/runs"\n'
    config = load(tmp_path, toml)
    assert config.database_url == "postgresql://ann:s3cret@db.example:5432/runs"
    assert config.public_dict()["database_url"] == "postgresql://ann@db.example:5432/runs"
    assert "s3cret" not in json.dumps(config.public_dict())
    env = {"APIGEN_MT_DATABASE_URL": "postgresql://127.0.0.1/other?password=pw"}
    config = load(tmp_path, toml, env)
    assert config.database_url == env["APIGEN_MT_DATABASE_URL"]  # the environment > the file
    assert config.public_dict()["database_url"] == "postgresql://127.0.0.1/other"
    assert load(tmp_path, "").database_url is None and load(tmp_path, "").public_dict()["database_url"] is None
