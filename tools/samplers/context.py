"""The generator's context for one try: which samplers contribute varies at random.

:func:`sample_context` returns a JSON-able dict::

    {"tools", "write_tools", "chain", "policy", "rules", "user_id", "data",
     "persona", "examples", "samplers"}

The API sampler and the domain-data sampler always run; the policy, persona and example
samplers each run with their own probability (``SamplerConfig.p_*``), drawn afresh on every
call, so successive tries see different mixes of context (the paper's source of diversity).
Left-out parts are empty (``""``, ``[]``, ``None``). Examples carry only their task
(instruction, actions, outputs): no id or source. ``samplers`` lists the samplers whose
output is in the context, i.e. non-empty: one that ran but found nothing (no examples that
pass validation, no persona set, no user data) is not listed. Deterministic given the rng's
seed.
"""

from __future__ import annotations

import random
import threading
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.samplers.api import APISampler
from apigen_mt.tools.samplers.domain_data import DomainDataSampler
from apigen_mt.tools.samplers.example import ExampleSampler, for_prompt
from apigen_mt.tools.samplers.persona import PersonaSampler
from apigen_mt.tools.samplers.policy import PolicySampler


@dataclass(frozen=True)
class SamplerConfig:
    """Inclusion probabilities and budgets of the samplers."""

    p_policy: float = 0.8
    p_persona: float = 0.7
    p_examples: float = 0.6
    # API sampler
    n_reads: tuple[int, int] = (1, 3)
    n_writes: tuple[int, int] = (1, 2)
    walk_prob: float = 0.7
    max_chain: int = 6
    # budgets
    policy_chars: int = 3000
    max_rules: int = 8
    data_chars: int = 6000
    n_examples: int = 2
    example_chars: int = 4000

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SamplerConfig:
        """Build from a plain dict (a config file); unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown sampler settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        for key in ("n_reads", "n_writes"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class SamplerContext:
    """What the samplers produced for one try."""

    tools: list[str]
    write_tools: list[str]
    chain: list[str] | None
    policy: str
    rules: list[dict[str, Any]]
    user_id: str | None
    data: Any
    persona: dict[str, Any] | None
    examples: list[dict[str, Any]]
    samplers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ContextSampler:
    """The five samplers of one domain, built once; :meth:`sample` makes one context."""

    def __init__(self, domain: Domain, config: SamplerConfig | None = None) -> None:
        self.domain = domain
        self.config = config = config or SamplerConfig()
        self.api = APISampler(
            domain,
            n_reads=config.n_reads,
            n_writes=config.n_writes,
            walk_prob=config.walk_prob,
            max_len=config.max_chain,
        )
        self.data = DomainDataSampler(domain, max_chars=config.data_chars)
        self.policy = PolicySampler(domain, max_chars=config.policy_chars, max_rules=config.max_rules)
        self.persona = PersonaSampler(domain)
        self.examples = ExampleSampler(domain, k=config.n_examples, max_chars=config.example_chars)

    def sample(self, rng: random.Random, user_id: str | None = None, coverage: Any = None) -> SamplerContext:
        config = self.config
        # The inclusion flags are drawn first, so the API and data draws (which come next) do not
        # depend on them. The persona and example draws do: each runs only when included, so
        # whether the persona was drawn shifts the rng stream the examples are drawn from.
        include = {
            "policy": rng.random() < config.p_policy,
            "persona": rng.random() < config.p_persona,
            "examples": rng.random() < config.p_examples,
        }
        api = self.api.sample(rng, coverage)
        data = self.data.sample(rng, user_id=user_id)
        policy = self.policy.sample(api.tools) if include["policy"] else None
        persona = self.persona.sample(rng) if include["persona"] else None
        examples = self.examples.sample(rng, api.tools) if include["examples"] else []
        contributed = {  # listed by what they gave, not by their coin flip
            "api": bool(api.tools),
            "domain_data": data.user_id is not None or bool(data.data),
            "policy": policy is not None and bool(policy.text or policy.rules),
            "persona": persona is not None,
            "examples": bool(examples),
        }
        used = [name for name, gave in contributed.items() if gave]
        return SamplerContext(
            tools=api.tools,
            write_tools=api.writes,
            chain=api.chain,
            policy=policy.text if policy else "",
            rules=policy.rules if policy else [],
            user_id=data.user_id,
            data=data.data,
            persona=persona,
            examples=[for_prompt(example) for example in examples],
            samplers=used,
        )


_SAMPLERS: weakref.WeakKeyDictionary[Domain, dict[SamplerConfig, ContextSampler]] = (
    weakref.WeakKeyDictionary()
)
_SAMPLERS_LOCK = threading.Lock()  # a run's first prepares come together: one builds, the rest wait


def context_sampler(
    domain: Domain, config: SamplerConfig | Mapping[str, Any] | None = None
) -> ContextSampler:
    """The (cached) context sampler of ``domain`` for ``config``."""
    if not isinstance(config, SamplerConfig):
        config = SamplerConfig.from_mapping(config)
    sampler = _SAMPLERS.get(domain, {}).get(config)
    if sampler is None:
        with _SAMPLERS_LOCK:
            per_domain = _SAMPLERS.setdefault(domain, {})
            if config not in per_domain:
                per_domain[config] = ContextSampler(domain, config)
            sampler = per_domain[config]
    return sampler


def sample_context(
    domain: Domain,
    rng: random.Random | int,
    config: SamplerConfig | Mapping[str, Any] | None = None,
    *,
    user_id: str | None = None,
    coverage: Any = None,
) -> dict[str, Any]:
    """One try's context as a JSON-able dict (see the module docstring). ``coverage``: a
    :class:`~apigen_mt.tools.coverage.WriteCoverage` steering the write tools to the least covered."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    return context_sampler(domain, config).sample(rng, user_id=user_id, coverage=coverage).to_json()
