"""Settings of the blueprint graphs (Phase 1 and recombination), read the LangGraph way.

A graph node calls :meth:`Phase1Settings.from_config` on its runnable config. Values come
from ``configurable["phase1"]`` (a mapping or a :class:`Phase1Settings`, what the runner
passes) with any flat key of the same name on top (what LangGraph Studio's configuration
panel sets, e.g. ``max_rounds``). Unset values get defaults that depend on the domain and
on the generator model: the embedded 135M model reads long prompts slowly and gets no better
on them, so its sampler context and action count are smaller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apigen_mt.configuration import ConfigurationError

__all__ = ["COMPACT_SAMPLER", "DEFAULT_ROUNDS", "METRICS", "Phase1Settings", "Phase2Settings"]

METRICS = ("correctness", "completeness", "satisfaction", "creativity")

DEFAULT_ROUNDS = {"retail": 3, "airline": 5}
"""Feedback rounds per domain (the paper's 3 for retail, 5 for airline); others get 3."""

COMPACT_SAMPLER: dict[str, Any] = {
    "p_policy": 0.0,
    "p_examples": 0.0,
    "data_chars": 1200,
    "n_reads": (1, 1),
    "n_writes": (1, 1),
    "max_chain": 3,
}
"""Sampler settings for small-window models (the embedded one): about 1,500 prompt tokens."""

COMPACT_MAX_ACTIONS = 4


class Phase1Settings(BaseModel):
    """How Phase 1 proposes, checks and reviews blueprints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["llm", "grounded", "mixed"] = Field(
        "llm", description="llm: the generator proposes the actions; grounded: an executed API-graph walk does"
    )
    grounded_ratio: float = Field(0.5, ge=0.0, le=1.0, description="share of grounded proposals in mixed mode")
    max_rounds: int | None = Field(None, ge=1, le=20, description="rounds per blueprint (None: 3 retail, 5 airline, else 3)")
    committee_size: int | None = Field(None, ge=1, le=15, description="judges per review (None: the configured reviewers)")
    pass_threshold: float = Field(0.75, ge=0.0, le=1.0, description="share of metrics whose majority vote must pass")
    required_metrics: tuple[Literal["correctness", "completeness", "satisfaction", "creativity"], ...] = Field(
        ("correctness",), description="metrics that must pass by majority whatever the threshold"
    )
    sampler: dict[str, Any] | None = Field(None, description="SamplerConfig fields (None: default, compact for local)")
    max_actions: int | None = Field(None, ge=1, le=12, description="actions per blueprint (None: 12, 4 for local)")
    grounding: bool = Field(True, description="reject blueprints whose actions or outputs need values the "
                            "instruction does not make obtainable (tools/checks/grounding.py)")
    dedup: bool = Field(True, description="reject exact and near-duplicate blueprints")
    dedup_threshold: float = Field(0.85, gt=0.0, le=1.0, description="instruction similarity that counts as a duplicate")
    state_pool: bool = Field(True, description="draw each blueprint's initial state from the domain's pool of "
                             "states (BFCL: the states its entries load; the blueprint's domain names the one drawn)")
    walk_tries: int = Field(8, ge=1, le=100, description="grounded mode: walks drawn before falling back to llm mode")
    prompts_dir: str | None = Field(None, description="a folder of prompt overrides")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Phase1Settings:
        return _settings_from_config(cls, config, "phase1")

    def rounds_for(self, domain: str) -> int:
        return self.max_rounds if self.max_rounds is not None else DEFAULT_ROUNDS.get(domain, 3)

    def sampler_for(self, compact: bool) -> dict[str, Any] | None:
        if self.sampler is not None:
            return dict(self.sampler)
        return dict(COMPACT_SAMPLER) if compact else None

    def actions_for(self, compact: bool) -> int:
        if self.max_actions is not None:
            return self.max_actions
        return COMPACT_MAX_ACTIONS if compact else 12

    def committee_for(self, configured: int) -> int:
        return self.committee_size if self.committee_size is not None else max(1, configured)


class Phase2Settings(BaseModel):
    """How Phase 2 simulates and verifies conversations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(3, ge=1, le=20, description="conversations tried per blueprint")
    stop_on_success: bool = Field(True, description="stop after the first verified conversation")
    audit: bool = Field(True, description="accept a verified conversation only if it passes the audit "
                        "(grounding, policy, confirmation: tools/audit)")
    best_of_n: int = Field(4, ge=1, le=16, description="user-message candidates per turn (1: no critic)")
    max_turns: int = Field(30, ge=2, le=200, description="user messages + assistant replies to the user")
    max_tool_steps: int = Field(30, ge=1, le=200, description="tool rounds between two user messages")
    loop_window: int = Field(3, ge=2, le=10, description="identical consecutive messages or calls that end a loop")
    assistant_mode: Literal["auto", "native", "json_schema"] = "auto"
    prompts_dir: str | None = Field(None, description="a folder of prompt overrides")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Phase2Settings:
        return _settings_from_config(cls, config, "phase2")


def _settings_from_config(cls: type[BaseModel], config: Mapping[str, Any] | None, key: str) -> Any:
    """``configurable[key]`` (a mapping or an instance), flat keys of the same names on top."""
    configurable = dict((config or {}).get("configurable") or {})
    base = configurable.get(key)
    if isinstance(base, cls):
        values = base.model_dump()
    elif isinstance(base, Mapping):
        values = dict(base)
    elif base is None:
        values = {}
    else:
        raise ConfigurationError(f"configurable[{key!r}] must be a mapping, not {type(base).__name__}")
    values.update({k: v for k, v in configurable.items() if k in cls.model_fields and v is not None})
    try:
        return cls.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"{key} settings: {problems}") from None
