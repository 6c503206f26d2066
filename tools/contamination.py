"""Contamination guard: generated data must not copy a benchmark's *test* tasks.

Training on near-copies of tau2-bench test tasks (or of BFCL's multi-turn entries) would
inflate the scores the data is meant to improve. A generated blueprint is flagged when it has the same action sequence as
a test task or an instruction at least ``threshold`` similar (the measures of
:mod:`apigen_mt.tools.dedup`). Flagged blueprints are reported and left out of exports
unless asked for. Domains without a held-out test split have nothing to compare with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from apigen_mt.tools.dedup import DEFAULT_THRESHOLD, DedupIndex

__all__ = ["ContaminationGuard", "benchmark_test_blueprints", "guard_for"]

TAU2_DOMAINS = ("retail", "airline")


def benchmark_test_blueprints(domain: str) -> list[dict[str, Any]]:
    """The held-out test tasks of ``domain`` as blueprints: tau2's test split for retail and
    airline; for a BFCL domain, BFCL's multi-turn entries (all test data, see
    :mod:`apigen_mt.domains.bfcl.contamination`)."""
    if domain in TAU2_DOMAINS:
        from apigen_mt.domains.tau2bench.tasks import tau2_blueprints

        return [bp.to_json() for bp in tau2_blueprints(domain, "test")]
    if domain.startswith("bfcl."):
        from apigen_mt.domains.bfcl.contamination import bfcl_test_blueprints
        from apigen_mt.domains.registry import get_domain

        return bfcl_test_blueprints(get_domain(domain))
    return []


class ContaminationGuard:
    """Near-duplicate search against reference (test) blueprints."""

    def __init__(self, references: Iterable[Mapping[str, Any]], threshold: float = DEFAULT_THRESHOLD) -> None:
        self.references = list(references)
        self.index = DedupIndex.from_blueprints(self.references, threshold)

    def check(self, blueprint: Mapping[str, Any]) -> str | None:
        """Why ``blueprint`` looks like a test task, or None."""
        match = self.index.find({**blueprint, "id": f"generated:{blueprint.get('id')}"})
        return None if match is None else f"test-set contamination: {match.reason()}"

    def flags(self, blueprints: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """``{blueprint id: reason}`` for the flagged ones."""
        out = {}
        for blueprint in blueprints:
            reason = self.check(blueprint)
            if reason is not None:
                out[str(blueprint.get("id"))] = reason
        return out


@lru_cache(maxsize=8)
def guard_for(domain: str, threshold: float = DEFAULT_THRESHOLD) -> ContaminationGuard:
    """The (cached) guard of a domain; empty for domains without a test split."""
    return ContaminationGuard(benchmark_test_blueprints(domain), threshold)
