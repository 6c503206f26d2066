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

__all__ = ["ContaminationGuard", "benchmark_test_blueprints", "contamination_flags", "guard_for"]

TAU2_DOMAINS = ("retail", "airline", "telecom")


def benchmark_test_blueprints(domain: str) -> list[dict[str, Any]]:
    """The held-out test tasks of ``domain`` as blueprints: tau2's test split for retail,
    airline and telecom (a telecom task's actions count with who makes them and the fault it
    starts from: the same fix for another fault is another task); for a BFCL domain, BFCL's multi-turn entries (all test data, see
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


@lru_cache(maxsize=64)  # a run of a BFCL class may draw from up to 55 states, each its own guard
def guard_for(domain: str, threshold: float = DEFAULT_THRESHOLD) -> ContaminationGuard:
    """The (cached) guard of a domain; empty for domains without a test split."""
    return ContaminationGuard(benchmark_test_blueprints(domain), threshold)


def contamination_flags(blueprints: Iterable[Mapping[str, Any]], domain: str) -> dict[str, str]:
    """``{blueprint id: reason}`` over ``blueprints``, each checked by the guard of its own
    domain (``domain`` when it names none): a blueprint drawn in another initial state of the
    run's domain (``bfcl.ticket@multi_turn_base_23``) is compared with the entries of that state."""
    by_domain: dict[str, list[Mapping[str, Any]]] = {}
    for blueprint in blueprints:
        by_domain.setdefault(str(blueprint.get("domain") or domain), []).append(blueprint)
    flags: dict[str, str] = {}
    for name, members in by_domain.items():
        flags.update(guard_for(name).flags(members))
    return flags
