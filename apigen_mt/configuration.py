"""Run configuration: which model plays each role, plus the LLM budget, cache and run directory.

Seven roles talk to models: ``generator``, ``reviewers`` (a list: a committee may mix models),
``feedback``, ``recombiner``, ``user``, ``user_critic`` and ``assistant``. Each gets a
:class:`ModelSpec`: an ``init_chat_model``-style string (``"local"``, ``"openai:gpt-4o"``,
``"ollama:qwen2.5"``) or an OpenAI-compatible ``base_url`` + model name (vLLM, llama.cpp,
LM Studio), with its own temperature, max tokens, timeout and retries.

Where values come from, lowest to highest priority::

    defaults  <  TOML file  <  APIGEN_MT_* environment variables  <  explicit overrides
                                                                     (CLI flags, the runnable
                                                                      config's "configurable")

The TOML file is ``--config FILE``, else ``$APIGEN_MT_CONFIG``, else ``./apigen-mt.toml`` when
it exists::

    run_dir = "runs"
    database_url = "postgresql://db.example:5432/apigen"   # optional: cluster mode (see apigen_mt.cluster)

    [models]
    all = "local"                       # optional: every role, before the entries below
    generator = "openai:gpt-4o"
    reviewers = ["openai:gpt-4o-mini", "local", { model = "ollama:qwen2.5", temperature = 0.2 }]

    [models.assistant]                  # an OpenAI-compatible server (vLLM, llama.cpp, ...)
    base_url = "http://127.0.0.1:8000/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
    api_key_env = "VLLM_API_KEY"        # the NAME of the variable holding the key; optional
    temperature = 0.0
    max_tokens = 1024

    [budget]
    max_calls = 5000
    max_tokens = 2_000_000

    [cache]
    enabled = true                      # only ever used for roles at temperature 0
    path = "runs/llm_cache.sqlite"

Environment variables (and the same names, lower-case without the prefix, as ``configurable``
keys or ``--set`` flags)::

    APIGEN_MT_CONFIG                          the TOML file
    APIGEN_MT_<ROLE>_<FIELD>                  ROLE: GENERATOR, REVIEWERS, FEEDBACK, RECOMBINER,
                                              USER, USER_CRITIC, ASSISTANT; FIELD: MODEL,
                                              BASE_URL, TEMPERATURE, MAX_TOKENS, TIMEOUT,
                                              MAX_RETRIES, TOOL_CALLING, API_KEY_ENV, CACHE
    APIGEN_MT_REVIEWERS_MODEL=a,b,c           the committee (one reviewer per entry); the other
                                              APIGEN_MT_REVIEWERS_* fields apply to each one
    APIGEN_MT_<FIELD>                         that field for every role (e.g. APIGEN_MT_MODEL)
    APIGEN_MT_BUDGET_MAX_CALLS / _MAX_TOKENS  the per-run LLM budget ("none": unlimited)
    APIGEN_MT_CACHE=0|1, APIGEN_MT_CACHE_PATH the response cache
    APIGEN_MT_RUN_DIR                         where runs (and by default the cache) live
    APIGEN_MT_DATABASE_URL                    a Postgres database: run in cluster mode

An unknown ``APIGEN_MT_<ROLE>_...`` variable (a typo such as ``APIGEN_MT_GENERATOR_MODLE``) is
logged as a warning, not an error: other parts of apigen-mt may define their own variables.

Within one source, "every role" values apply first and per-role values after them. Setting a
role's model to ``local`` or ``provider:name`` drops a ``base_url``/``api_key_env`` inherited
from a lower-priority source (a bare name keeps them: it names another model on that server).

Secrets: API keys are read only from the environment, at the moment a model is built, through
the variable a spec names (``api_key_env``, else the provider's usual one such as
``OPENAI_API_KEY``). A config never holds a key, so :meth:`Configuration.public_dict` (the
resolved configuration a run may write down) cannot leak one; a key pasted into the TOML file
is refused with an error that does not repeat it.

LangGraph: :meth:`Configuration.from_runnable_config` reads ``config["configurable"]`` the way
open_deep_research does, so LangGraph Studio (or a runner) can set any of the flat keys above;
``configurable["apigen_mt"]`` may carry a whole resolved :class:`Configuration` (what the
runner passes, so no file is read inside a graph node).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import threading
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ConfigurationError",
    "ModelSpec",
    "RoleModels",
    "BudgetSettings",
    "CacheSettings",
    "Configuration",
    "ConfigurableFields",
    "ROLES",
    "SINGLE_ROLES",
    "SPEC_FIELDS",
    "KNOWN_PROVIDERS",
    "ENV_PREFIX",
    "LOCAL",
    "add_config_arguments",
    "config_from_args",
    "redact_url",
    "role_label",
]

ENV_PREFIX = "APIGEN_MT_"
CONFIG_ENV = "APIGEN_MT_CONFIG"
DEFAULT_CONFIG_FILE = "apigen-mt.toml"
LOCAL = "local"

ROLES = ("generator", "reviewers", "feedback", "recombiner", "user", "user_critic", "assistant")
SINGLE_ROLES = tuple(role for role in ROLES if role != "reviewers")
SPEC_FIELDS = (
    "model", "base_url", "temperature", "max_tokens", "timeout",
    "max_retries", "tool_calling", "api_key_env", "cache",
)
# Fields that "every role" keys (APIGEN_MT_MODEL, [models] all = ...) may set. ``cache`` is left
# out on purpose: APIGEN_MT_CACHE is the global cache switch.
ALL_ROLE_FIELDS = tuple(f for f in SPEC_FIELDS if f != "cache")

# Providers a "provider:model" string may name, with the environment variable holding the key.
# "local" (the embedded model) needs none; ollama needs none either.
KNOWN_PROVIDERS: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "ollama": None,
    "anthropic": "ANTHROPIC_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "google_vertexai": None,
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together": "TOGETHER_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "bedrock_converse": None,
}
# Like init_chat_model: a bare, well-known model name implies its provider.
_INFERRED_PROVIDERS = (
    (("gpt-", "o1", "o3", "o4", "chatgpt"), "openai"),
    (("claude",), "anthropic"),
    (("gemini",), "google_genai"),
    (("mistral", "mixtral", "codestral"), "mistralai"),
    (("deepseek",), "deepseek"),
    (("grok",), "xai"),
)

# Per-role defaults. Generator and simulated user sample (diversity is their point); judges,
# feedback and the assistant are deterministic, which also makes their replies cacheable.
# The embedded 135M model is slow per token on 2 cores, so completions are sized per role.
ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "generator": {"temperature": 0.7, "max_tokens": 1024},
    "reviewers": {"temperature": 0.0, "max_tokens": 512},
    "feedback": {"temperature": 0.0, "max_tokens": 512},
    "recombiner": {"temperature": 0.3, "max_tokens": 1024},
    "user": {"temperature": 0.7, "max_tokens": 256},
    "user_critic": {"temperature": 0.0, "max_tokens": 256},
    "assistant": {"temperature": 0.0, "max_tokens": 512},
}
DEFAULT_REVIEWERS = 3

_WARNED: set[tuple[str, str]] = set()
log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NONE_WORDS = {"", "none", "null", "unlimited", "off"}


class ConfigurationError(ValueError):
    """A configuration value is wrong; the message names where it came from and what to do."""


def role_label(role: str, index: int | None = None) -> str:
    """The name a role's calls are recorded and traced under: ``generator``, ``reviewer[1]``."""
    if role in ("reviewers", "reviewer"):
        return f"reviewer[{index or 0}]"
    return role


def redact_url(url: str | None) -> str | None:
    """``url`` without user:password and without its query (tokens sometimes hide there)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "***" if parts.query else "", ""))


def _looks_like_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# ---------------------------------------------------------------------------------------------
# ModelSpec
# ---------------------------------------------------------------------------------------------


class ModelSpec(BaseModel):
    """One role's model: what to call, and how.

    ``model`` is ``"local"`` (the embedded SmolLM2 server), ``"provider:name"``
    (``openai:gpt-4o``, ``ollama:qwen2.5:7b``; a well-known bare name such as ``gpt-4o`` implies
    its provider), or, with ``base_url``, the literal model name that OpenAI-compatible server
    serves (then nothing in it is parsed: ``qwen2.5:7b`` is a name, not a provider).
    A plain string is accepted wherever a spec is: ``"openai:gpt-4o"`` == ``{"model": ...}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = LOCAL
    base_url: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1, le=1_000_000)
    timeout: float = Field(120.0, gt=0, description="seconds per HTTP request")
    max_retries: int = Field(3, ge=0, le=20, description="retries on 429, 5xx, timeouts, connection errors")
    tool_calling: Literal["auto", "native", "json_schema"] = "auto"
    api_key_env: str | None = Field(None, description="NAME of the environment variable holding the key")
    cache: bool | None = Field(None, description="None: cache only at temperature 0")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"model": value}
        if isinstance(value, Mapping) and ("api_key" in value or "openai_api_key" in value):
            raise ValueError(_NO_KEYS_HINT)
        return value

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("model must not be empty (use 'local' for the embedded model)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip() or value.strip().lower() in ("none", "null"):
            return None
        value = value.strip().rstrip("/")
        if not _looks_like_url(value):
            raise ValueError(
                "base_url must be an http(s) URL such as http://127.0.0.1:8000/v1 "
                "(the OpenAI-compatible root, usually ending in /v1)"
            )
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _ENV_NAME.match(value.strip()):
            # Never echo the value: it may be a pasted key.
            raise ValueError(
                "api_key_env is the NAME of an environment variable (e.g. OPENAI_API_KEY), "
                "not the key itself; put the key in that variable"
            )
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.base_url is None:
            self.provider_and_name()  # raises a clear error for an unknown provider
        elif self.model == LOCAL:
            raise ValueError(
                "model 'local' is the embedded model and takes no base_url; give the model "
                "name the server at base_url serves instead"
            )
        return self

    # -- derived -----------------------------------------------------------------------------

    def provider_and_name(self) -> tuple[str, str]:
        """``("local", name)``, ``("openai-compatible", name)`` or ``(provider, name)``."""
        if self.base_url is not None:
            return "openai-compatible", self.model
        if self.model == LOCAL:
            return LOCAL, LOCAL
        if ":" in self.model:
            provider, _, name = self.model.partition(":")
            provider = provider.strip().lower()
            if provider in KNOWN_PROVIDERS and name.strip():
                return provider, name.strip()
            if provider not in KNOWN_PROVIDERS:
                raise ValueError(
                    f"unknown provider {provider!r} in model {self.model!r}. Known providers: "
                    f"{', '.join(KNOWN_PROVIDERS)}. For a model served by an OpenAI-compatible "
                    "server (vLLM, llama.cpp, LM Studio) give base_url and the model name; for "
                    f"an Ollama tag write ollama:{self.model}"
                )
            raise ValueError(f"model {self.model!r} names no model after the provider")
        lowered = self.model.lower()
        for prefixes, provider in _INFERRED_PROVIDERS:
            if lowered.startswith(prefixes):
                return provider, self.model
        raise ValueError(
            f"cannot tell which provider serves {self.model!r}: write provider:model "
            "(e.g. openai:gpt-4o, ollama:qwen2.5), 'local' for the embedded model, or give "
            "base_url for an OpenAI-compatible server"
        )

    @property
    def provider(self) -> str:
        return self.provider_and_name()[0]

    @property
    def model_name(self) -> str:
        return self.provider_and_name()[1]

    @property
    def is_local(self) -> bool:
        return self.base_url is None and self.model == LOCAL

    @property
    def label(self) -> str:
        """How this model is shown in tables, records and traces (never with credentials)."""
        if self.base_url is not None:
            return f"{self.model} @ {redact_url(self.base_url)}"
        return self.model

    @property
    def key_env(self) -> str | None:
        """The environment variable the API key is read from (None: no key needed)."""
        if self.api_key_env:
            return self.api_key_env
        if self.base_url is not None or self.is_local:
            return None
        return KNOWN_PROVIDERS.get(self.provider)

    @property
    def effective_tool_calling(self) -> Literal["auto", "native", "json_schema"]:
        """The mode a model's tool calls start from. ``auto`` on the embedded model is
        ``json_schema`` (SmolLM2's chat template has no tool support: known before any call);
        any other ``auto`` stays ``auto``, for the tool-calling layer to settle per model (by
        its name, then by how its endpoint answers a tools request)."""
        if self.tool_calling == "auto" and self.is_local:
            return "json_schema"
        return self.tool_calling

    def cache_enabled(self, globally: bool = True) -> bool:
        """Whether replies of this spec are cached: never when the cache is off; else the
        spec's own ``cache`` when set, else only at temperature 0 (sampling roles must not
        get the same "sample" back every time)."""
        if not globally:
            return False
        if self.cache is not None:
            return self.cache
        return self.temperature == 0

    def public_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["base_url"] = redact_url(self.base_url)
        return data


_NO_KEYS_HINT = (
    "API keys are never read from configuration: put the key in an environment variable and "
    "name that variable with api_key_env (e.g. api_key_env = \"OPENAI_API_KEY\")"
)


def _spec_defaults(role: str) -> dict[str, Any]:
    return dict(ROLE_DEFAULTS.get("reviewers" if role == "reviewer" else role, {}))


def _default_spec(role: str) -> ModelSpec:
    return ModelSpec(**_spec_defaults(role))


# ---------------------------------------------------------------------------------------------
# RoleModels, budget, cache, Configuration
# ---------------------------------------------------------------------------------------------


class RoleModels(BaseModel):
    """The model of every role; ``reviewers`` is the review committee (one spec per judge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generator: ModelSpec = Field(default_factory=lambda: _default_spec("generator"))
    reviewers: tuple[ModelSpec, ...] = Field(
        default_factory=lambda: tuple(_default_spec("reviewers") for _ in range(DEFAULT_REVIEWERS)),
        min_length=1,
    )
    feedback: ModelSpec = Field(default_factory=lambda: _default_spec("feedback"))
    recombiner: ModelSpec = Field(default_factory=lambda: _default_spec("recombiner"))
    user: ModelSpec = Field(default_factory=lambda: _default_spec("user"))
    user_critic: ModelSpec = Field(default_factory=lambda: _default_spec("user_critic"))
    assistant: ModelSpec = Field(default_factory=lambda: _default_spec("assistant"))

    def spec(self, role: str, index: int = 0) -> ModelSpec:
        """The spec of ``role`` (``reviewers``/``reviewer`` take ``index``)."""
        if role in ("reviewers", "reviewer"):
            if not 0 <= index < len(self.reviewers):
                raise IndexError(f"reviewer {index} does not exist: the committee has {len(self.reviewers)}")
            return self.reviewers[index]
        if role not in SINGLE_ROLES:
            raise KeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        return getattr(self, role)

    def items(self) -> list[tuple[str, ModelSpec]]:
        """Every (label, spec): ``generator``, ``reviewer[0]``, ``reviewer[1]``, ..."""
        rows: list[tuple[str, ModelSpec]] = []
        for role in ROLES:
            if role == "reviewers":
                rows += [(role_label(role, i), spec) for i, spec in enumerate(self.reviewers)]
            else:
                rows.append((role, getattr(self, role)))
        return rows


class BudgetSettings(BaseModel):
    """The per-run LLM budget; ``None`` is unlimited. Cache hits cost nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_calls: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)

    @field_validator("max_calls", "max_tokens", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
            return None
        return value


class CacheSettings(BaseModel):
    """The SQLite response cache (used only for temperature-0 roles unless a spec says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: Path | None = Field(None, description="default: <run_dir>/llm_cache.sqlite")


class Configuration(BaseModel):
    """Everything the LLM layer needs for one run. Build with :meth:`load` or
    :meth:`from_runnable_config`; instances are immutable (``model_copy(update=...)``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: RoleModels = Field(default_factory=RoleModels)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    run_dir: Path = Path("runs")
    database_url: str | None = Field(None, description="Postgres: the run's work items become jobs for workers")
    sources: tuple[str, ...] = Field(("defaults",), description="where the values came from, in order")
    templates: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="the every-role ('all') and every-reviewer ('reviewers_all') settings of the sources so far: "
        "a later layer (a runnable config's flat keys) builds a new committee on them, as load() would",
    )

    @property
    def cache_path(self) -> Path:
        return self.cache.path if self.cache.path is not None else self.run_dir / "llm_cache.sqlite"

    def spec(self, role: str, index: int = 0) -> ModelSpec:
        return self.models.spec(role, index)

    def public_dict(self) -> dict[str, Any]:
        """The resolved configuration, safe to write into a run directory: no secrets (a
        config never holds keys; base URLs lose credentials and query strings)."""
        models: dict[str, Any] = {}
        for role in ROLES:
            if role == "reviewers":
                models[role] = [spec.public_dict() for spec in self.models.reviewers]
            else:
                models[role] = getattr(self.models, role).public_dict()
        return {
            "models": models,
            "budget": self.budget.model_dump(mode="json"),
            "cache": {"enabled": self.cache.enabled, "path": str(self.cache_path)},
            "run_dir": str(self.run_dir),
            "database_url": _public_database_url(self.database_url) if self.database_url else None,
            "sources": list(self.sources),
        }

    def to_configurable(self) -> dict[str, Any]:
        """``{"apigen_mt": self}``: merge into ``config["configurable"]`` so graph nodes get
        this exact configuration without reading files or the environment again."""
        return {"apigen_mt": self}

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        use_default_file: bool = True,
    ) -> Configuration:
        """defaults < TOML file < environment < ``overrides``.

        ``config_file``: the TOML file (else ``$APIGEN_MT_CONFIG``, else ``./apigen-mt.toml``
        if it exists and ``use_default_file``). ``env``: defaults to ``os.environ``.
        ``overrides``: flat keys (``generator_model``, ``reviewers_model``, ``model``,
        ``budget_max_calls``, ...) and/or nested ``models``/``budget``/``cache`` tables.
        """
        environ = os.environ if env is None else env
        layers: list[tuple[str, dict[str, Any]]] = []
        path = _config_path(config_file, environ, use_default_file)
        if path is not None:
            layers.append((f"file:{path}", _read_toml(path)))
        env_layer = _env_layer(environ)
        if env_layer:
            layers.append(("env", env_layer))
        if overrides:
            layers.append(("overrides", _normalize_layer(overrides, "overrides")))
        return _build(layers)

    @classmethod
    def from_runnable_config(cls, config: Mapping[str, Any] | None = None) -> Configuration:
        """The configuration for a graph run (LangGraph style).

        Base: ``configurable["apigen_mt"]`` (a :class:`Configuration` or its dict) when the
        runner put one there, else :meth:`load` (file + environment, memoized per process and
        environment so nodes do not re-read files). On top: any flat keys in
        ``configurable`` (``generator_model``, ``reviewers_model``, ``budget_max_calls``...),
        which is how LangGraph Studio sets them.
        """
        configurable = dict((config or {}).get("configurable") or {})
        base = configurable.pop("apigen_mt", None)
        if isinstance(base, Configuration):
            resolved = base
        elif isinstance(base, Mapping):
            try:
                resolved = cls.model_validate(dict(base))
            except ValidationError as error:
                raise ConfigurationError(_explain(error, "configurable['apigen_mt']")) from None
        elif base is None:
            resolved = _load_memoized()
        else:
            raise ConfigurationError(
                f"configurable['apigen_mt'] must be a Configuration or a dict, not {type(base).__name__}"
            )
        flat = {k: v for k, v in configurable.items() if _is_config_key(k)}
        if not flat:
            return resolved
        return _build([("configurable", _normalize_layer(flat, "configurable"))], base=resolved)


def settings_key(config: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """A hashable key of what :meth:`Configuration.from_runnable_config` resolves ``config`` from:
    equal keys, equal configurations for one process. A :class:`Configuration` in
    ``configurable["apigen_mt"]`` counts by identity (whoever memoizes on the key keeps it alive),
    flat keys by value; without one the file and environment count as read once (no system call
    here: async nodes call this on the event loop)."""
    configurable = (config or {}).get("configurable") or {}
    base = configurable.get("apigen_mt")
    if isinstance(base, Configuration):
        source: Any = id(base)
    elif base is None:
        source = "file and environment"
    else:
        source = json.dumps(base, sort_keys=True, default=str)
    flat = tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in configurable.items() if _is_config_key(k)))
    return source, flat


def _load_memoized() -> Configuration:
    key = (
        os.getcwd(),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX))),
    )
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
    if hit is None:
        hit = Configuration.load()
        with _MEMO_LOCK:
            _MEMO[key] = hit
    return hit


_MEMO: dict[Any, Configuration] = {}
_MEMO_LOCK = threading.Lock()


def clear_memo() -> None:
    """Forget configurations memoized by :meth:`Configuration.from_runnable_config`."""
    with _MEMO_LOCK:
        _MEMO.clear()


class ConfigurableFields(BaseModel):
    """The flat keys a runnable config (or LangGraph Studio) may set; a ready-made schema.

    Every field is optional; unset ones keep the file/environment value.
    """

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="every role's model (provider:name or local)")
    base_url: str | None = Field(None, description="every role's OpenAI-compatible base URL")
    generator_model: str | None = None
    generator_temperature: float | None = None
    reviewers_model: str | None = Field(None, description="comma-separated: one reviewer per model")
    feedback_model: str | None = None
    recombiner_model: str | None = None
    user_model: str | None = None
    user_temperature: float | None = None
    user_critic_model: str | None = None
    assistant_model: str | None = None
    assistant_base_url: str | None = None
    budget_max_calls: int | None = None
    budget_max_tokens: int | None = None
    cache: bool | None = None


# ---------------------------------------------------------------------------------------------
# Layers: every source becomes the same nested shape, then they are merged in order
# ---------------------------------------------------------------------------------------------
#
# A normalized layer: {"models": {"all": {...}, "<role>": {...}, "reviewers": [ {...}, ... ],
#                                 "reviewers_all": {...}},
#                      "budget": {...}, "cache": {...}, "run_dir": ...}


def _config_path(explicit: Any, environ: Mapping[str, str], use_default: bool) -> Path | None:
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"config file not found: {path}")
        return path
    named = environ.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"config file not found: {path} (from ${CONFIG_ENV})")
        return path
    if use_default:
        path = Path(DEFAULT_CONFIG_FILE)
        if path.is_file():
            return path
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigurationError(f"cannot read config file {path}: {error}") from None
    return _normalize_layer(data, str(path), nested_only=True)


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    flat = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in ("models", "budget"):
            continue  # tables cannot come from one variable; not ours to judge
        if _is_config_key(key):
            flat[key] = value
        elif _role_of(key) is not None and (name, value) not in _WARNED:
            # APIGEN_MT_GENERATOR_MODLE is likely a typo; but another part of apigen-mt may own
            # a variable like APIGEN_MT_USER_BEST_OF, so this warns instead of failing.
            _WARNED.add((name, value))
            log.warning(
                "$%s is not a model setting and is ignored here (per-role fields: %s)",
                name, ", ".join(f.upper() for f in SPEC_FIELDS),
            )
    return _normalize_layer(flat, "environment") if flat else {}


_GLOBAL_KEYS = {"budget_max_calls", "budget_max_tokens", "cache", "cache_path", "run_dir", "database_url"}


def _role_of(key: str) -> tuple[str, str] | None:
    """``user_critic_model`` -> ("user_critic", "model"); longest role name first."""
    for role in sorted(ROLES, key=len, reverse=True):
        if key.startswith(role + "_"):
            return role, key[len(role) + 1:]
    return None


def _is_config_key(key: str) -> bool:
    if key in _GLOBAL_KEYS or key in ALL_ROLE_FIELDS or key in ("models", "budget", "reviewers"):
        return True
    split = _role_of(key)
    return split is not None and split[1] in SPEC_FIELDS


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigurationError(f"expected a list or a comma-separated string, got {type(value).__name__}")


def _spec_partial(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, ModelSpec):
        return value.model_dump(exclude_unset=True) or {"model": value.model}
    if isinstance(value, str):
        return {"model": value}
    if isinstance(value, Mapping):
        data = dict(value)
        if "api_key" in data or "openai_api_key" in data:
            raise ConfigurationError(f"{where}: {_NO_KEYS_HINT}")
        unknown = sorted(set(data) - set(SPEC_FIELDS))
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown model setting(s) {', '.join(unknown)}; allowed: {', '.join(SPEC_FIELDS)}"
            )
        return data
    raise ConfigurationError(f"{where}: a model is a string or a table, not {type(value).__name__}")


def _normalize_layer(data: Mapping[str, Any], source: str, *, nested_only: bool = False) -> dict[str, Any]:
    """One source (TOML table, env, overrides, configurable) in the merged shape."""
    out: dict[str, Any] = {"models": {}}
    models = out["models"]
    allowed_top = {"models", "budget", "cache", "run_dir", "database_url"}
    for key, value in data.items():
        if value is None and not nested_only:
            continue  # an unset flag / empty configurable entry: keep the lower layer's value
        if key.endswith("api_key") or key == "api_key":
            raise ConfigurationError(f"{source}: {key}: {_NO_KEYS_HINT}")
        if key == "models":
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"{source}: [models] must be a table")
            _normalize_models(value, models, f"{source}: models")
        elif key == "budget":
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"{source}: [budget] must be a table (max_calls, max_tokens)")
            out["budget"] = {**out.get("budget", {}), **value}
        elif key == "cache" and isinstance(value, Mapping):
            out["cache"] = {**out.get("cache", {}), **value}
        elif key in ("run_dir", "database_url"):
            out[key] = value
        elif key == "cache":
            out.setdefault("cache", {})["enabled"] = value
        elif nested_only:
            raise ConfigurationError(
                f"{source}: unknown top-level key {key!r}; allowed: {', '.join(sorted(allowed_top))}"
            )
        elif key == "cache_path":
            out.setdefault("cache", {})["path"] = value
        elif key in ("budget_max_calls", "budget_max_tokens"):
            out.setdefault("budget", {})[key[len("budget_"):]] = value
        elif key in ALL_ROLE_FIELDS:
            models.setdefault("all", {})[key] = value
        elif key == "reviewers":
            models["reviewers"] = [_spec_partial(v, f"{source}: reviewers") for v in _split_list(value)]
        else:
            split = _role_of(key)
            if split is None or split[1] not in SPEC_FIELDS:
                raise ConfigurationError(f"{source}: unknown setting {key!r}")
            role, field = split
            if role == "reviewers" and field == "model":
                models["reviewers"] = [{"model": m} for m in _split_list(value)]
            elif role == "reviewers":
                models.setdefault("reviewers_all", {})[field] = value
            else:
                models.setdefault(role, {})[field] = value
    return out


def _normalize_models(value: Mapping[str, Any], models: dict[str, Any], where: str) -> None:
    for role, spec in value.items():
        if role == "all":
            models["all"] = {**models.get("all", {}), **_spec_partial(spec, f"{where}.all")}
            if "cache" in models["all"]:
                raise ConfigurationError(f"{where}.all: set cache per role, or [cache] enabled for all")
        elif role == "reviewers":
            if isinstance(spec, Mapping):  # a table: settings for every reviewer
                models["reviewers_all"] = {**models.get("reviewers_all", {}), **_spec_partial(spec, f"{where}.reviewers")}
            else:
                models["reviewers"] = [_spec_partial(v, f"{where}.reviewers[{i}]") for i, v in enumerate(_split_list(spec))]
                if not models["reviewers"]:
                    raise ConfigurationError(f"{where}.reviewers: the committee needs at least one model")
        elif role in SINGLE_ROLES:
            models[role] = {**models.get(role, {}), **_spec_partial(spec, f"{where}.{role}")}
        else:
            raise ConfigurationError(f"{where}: unknown role {role!r}; roles: {', '.join(ROLES)} (and 'all')")


def _resets_endpoint(model: Any) -> bool:
    """Does a new ``model`` value name its own endpoint (so an inherited base_url must go)?"""
    if not isinstance(model, str):
        return False
    model = model.strip()
    if model == LOCAL:
        return True
    provider, sep, _ = model.partition(":")
    return bool(sep) and provider.strip().lower() in KNOWN_PROVIDERS


def _merge_spec(base: dict[str, Any], partial: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    if "model" in partial and _resets_endpoint(partial["model"]):
        for field in ("base_url", "api_key_env"):
            if field not in partial:
                merged.pop(field, None)
    merged.update(partial)
    return merged


def _build(layers: Iterable[tuple[str, dict[str, Any]]], base: Configuration | None = None) -> Configuration:
    if base is None:
        state: dict[str, Any] = {
            role: _spec_defaults(role) for role in SINGLE_ROLES
        }
        reviewers = [_spec_defaults("reviewers") for _ in range(DEFAULT_REVIEWERS)]
        budget: dict[str, Any] = {}
        cache: dict[str, Any] = {}
        run_dir: Any = Path("runs")
        database_url = None
        sources = ["defaults"]
    else:
        state = {role: getattr(base.models, role).model_dump(exclude_defaults=False) for role in SINGLE_ROLES}
        reviewers = [spec.model_dump() for spec in base.models.reviewers]
        budget = base.budget.model_dump()
        cache = base.cache.model_dump()
        run_dir = base.run_dir
        database_url = base.database_url
        sources = list(base.sources)
    templates = base.templates if base is not None else {}
    all_acc: dict[str, Any] = dict(templates.get("all", {}))
    reviewers_all_acc: dict[str, Any] = dict(templates.get("reviewers_all", {}))
    try:
        for source, layer in layers:
            sources.append(source)
            models = layer.get("models", {})
            everyone = models.get("all", {})
            if everyone:
                all_acc = _merge_spec(all_acc, everyone)  # a provider model drops an older base_url
                for role in SINGLE_ROLES:
                    state[role] = _merge_spec(state[role], everyone)
                reviewers = [_merge_spec(r, everyone) for r in reviewers]
            for role in SINGLE_ROLES:
                if role in models:
                    state[role] = _merge_spec(state[role], models[role])
            if "reviewers" in models:
                template = _merge_spec(_merge_spec(_spec_defaults("reviewers"), all_acc), reviewers_all_acc)
                reviewers = [_merge_spec(template, entry) for entry in models["reviewers"]]
            if models.get("reviewers_all"):
                reviewers_all_acc = _merge_spec(reviewers_all_acc, models["reviewers_all"])
                reviewers = [_merge_spec(r, models["reviewers_all"]) for r in reviewers]
            budget.update(layer.get("budget", {}))
            cache.update(layer.get("cache", {}))
            if "run_dir" in layer:
                run_dir = layer["run_dir"]
            database_url = layer.get("database_url", database_url) or None
        return Configuration.model_validate({
            "models": {**state, "reviewers": reviewers},
            "budget": budget,
            "cache": cache,
            "run_dir": run_dir,
            "database_url": database_url,
            "sources": tuple(sources),
            "templates": {"all": all_acc, "reviewers_all": reviewers_all_acc},
        })
    except ValidationError as error:
        raise ConfigurationError(_explain(error, f"configuration (sources: {', '.join(sources)})")) from None


def _public_database_url(url: str) -> str:
    from apigen_mt.cluster.database import public_database_url

    return public_database_url(url)


def _explain(error: ValidationError, where: str) -> str:
    """A ValidationError as lines ``models.generator.temperature: ...`` WITHOUT the input values
    (pydantic's own message repeats them, and one might be a pasted API key)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in item.get("loc", ())) or "(value)"
        msg = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return f"invalid {where}:\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command-line flags (the highest-priority source)
# ---------------------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, *, run_dir: bool = True) -> None:
    """Add the configuration flags every command that calls models shares."""
    group = parser.add_argument_group("models and LLM settings (override the TOML file and APIGEN_MT_* variables)")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML config file (default: $APIGEN_MT_CONFIG or ./apigen-mt.toml)")
    group.add_argument(
        "--model", action="append", default=[], metavar="ROLE=MODEL",
        help="a role's model, e.g. generator=openai:gpt-4o, reviewers=local,openai:gpt-4o-mini, or a bare "
        "MODEL for every role (repeatable)",
    )
    group.add_argument(
        "--base-url", action="append", default=[], metavar="ROLE=URL",
        help="a role's OpenAI-compatible server, e.g. assistant=http://127.0.0.1:8000/v1 (repeatable)",
    )
    group.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="config_set",
        help="any setting by its flat name, e.g. generator_temperature=0.2, reviewers_max_tokens=256 "
        "(repeatable)",
    )
    group.add_argument("--budget-calls", type=int, metavar="N", help="stop the run after N LLM calls")
    group.add_argument("--budget-tokens", type=int, metavar="N", help="stop the run before it spends more than N tokens")
    group.add_argument("--no-cache", action="store_true", help="do not use the LLM response cache")
    group.add_argument("--cache-path", type=Path, metavar="FILE", help="the response cache (SQLite)")
    if run_dir:
        group.add_argument("--run-dir", type=Path, metavar="DIR", help="where runs are written (default: runs)")


def _pairs(values: Iterable[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"{flag} expects KEY=VALUE, got {item!r}")
        pairs.append((key.strip().lower().replace("-", "_"), value.strip()))
    return pairs


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flat overrides the configuration flags of ``args`` stand for."""
    flat: dict[str, Any] = {}
    for key, value in _pairs(getattr(args, "config_set", None) or [], "--set"):
        flat[key] = value
    for flag, field in (("model", "model"), ("base_url", "base_url")):
        values = [v if "=" in v else f"all={v}" for v in getattr(args, flag, None) or []]  # a bare value: every role
        for role, value in _pairs(values, f"--{flag.replace('_', '-')}"):
            role = "reviewers" if role == "reviewer" else role
            if role != "all" and role not in ROLES:
                raise ConfigurationError(f"--{flag.replace('_', '-')}: unknown role {role!r}; roles: all, {', '.join(ROLES)}")
            flat[field if role == "all" else f"{role}_{field}"] = value
    if getattr(args, "budget_calls", None) is not None:
        flat["budget_max_calls"] = args.budget_calls
    if getattr(args, "budget_tokens", None) is not None:
        flat["budget_max_tokens"] = args.budget_tokens
    if getattr(args, "no_cache", False):
        flat["cache"] = False
    if getattr(args, "cache_path", None) is not None:
        flat["cache_path"] = args.cache_path
    if getattr(args, "run_dir", None) is not None:
        flat["run_dir"] = args.run_dir
    unknown = sorted(k for k in flat if not _is_config_key(k))
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(unknown)}")
    return flat


def config_from_args(args: argparse.Namespace, *, env: Mapping[str, str] | None = None) -> Configuration:
    """defaults < TOML (``--config``) < environment < these flags."""
    return Configuration.load(getattr(args, "config", None), env=env, overrides=overrides_from_args(args))
