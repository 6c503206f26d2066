"""Phase 1 context samplers: what the blueprint generator sees on each try.

One module per sampler, each small: :mod:`.api` (read/write tools, or a random-walk chain
on the API graph), :mod:`.policy` (the rules and policy sections relevant to those tools),
:mod:`.domain_data` (one real user's records, within a character budget), :mod:`.persona`
(who the user is) and :mod:`.example` (few-shot blueprints, train split only).
:mod:`.context` combines them, choosing at random which ones contribute on each try.
"""

from apigen_mt.tools.samplers.api import APISample, APISampler
from apigen_mt.tools.samplers.context import (
    ContextSampler,
    SamplerConfig,
    SamplerContext,
    sample_context,
)
from apigen_mt.tools.samplers.domain_data import (
    DomainDataSample,
    DomainDataSampler,
    trim_to_budget,
)
from apigen_mt.tools.samplers.example import ExampleLeakError, ExampleSampler
from apigen_mt.tools.samplers.persona import PersonaSampler
from apigen_mt.tools.samplers.policy import PolicySample, PolicySampler, split_policy

__all__ = [
    "APISample",
    "APISampler",
    "ContextSampler",
    "DomainDataSample",
    "DomainDataSampler",
    "ExampleLeakError",
    "ExampleSampler",
    "PersonaSampler",
    "PolicySample",
    "PolicySampler",
    "SamplerConfig",
    "SamplerContext",
    "sample_context",
    "split_policy",
    "trim_to_budget",
]
