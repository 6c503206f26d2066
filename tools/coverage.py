"""Write-tool coverage of a run, for steering what the next blueprint writes.

Sampled uniformly or by the API graph's weights, a run repeats the writes that are easy to
reach (``modify_user_address`` needs one lookup) and seldom gets to those behind long
chains. :class:`WriteCoverage` counts, per write tool, the blueprints a run has set out to
write with it; :meth:`WriteCoverage.pick` hands the next blueprint the least covered one
(ties at random), so a run covers every reachable write before it repeats one. One object
is shared by a run's threads (through the run's context, like the dedup index), and a
resumed run rebuilds it from the checkpoints of the threads already prepared.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from apigen_mt.domains.base import ToolKind
from apigen_mt.tools.grounded_walk import grounded_walk

__all__ = ["GIVE_UP", "WriteCoverage", "steered_walk"]

GIVE_UP = 3
"""Failed walks after which a write never reached counts as unreachable for the run."""


class WriteCoverage:
    """Counts per write tool; thread-safe (sync graph nodes run in worker threads)."""

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._counts: Counter[str] = Counter(counts or {})
        self._lock = threading.Lock()
        self.unreachable: set[str] = set()
        """Writes no grounded walk has reached in this run after ``GIVE_UP`` tries (not asked for
        again; a write reached once is rare, not unreachable, and is tried again)."""
        self.misses: Counter[str] = Counter()

    def pick(self, rng: random.Random, candidates: Sequence[str], exclude: Iterable[str] = ()) -> str | None:
        """The least covered of ``candidates`` (not in ``exclude``), ties broken by ``rng``; None if none is left."""
        left = [c for c in dict.fromkeys(candidates) if c not in set(exclude)]
        if not left:
            return None
        with self._lock:
            least = min(self._counts[c] for c in left)
            tied = [c for c in left if self._counts[c] == least]
        return tied[rng.randrange(len(tied))]

    def pick_many(self, rng: random.Random, candidates: Sequence[str], k: int) -> list[str]:
        """``k`` distinct candidates, least covered first."""
        chosen: list[str] = []
        for _ in range(min(k, len(set(candidates)))):
            choice = self.pick(rng, candidates, exclude=chosen)
            if choice is None:
                break
            chosen.append(choice)
        return chosen

    def add(self, writes: Iterable[str]) -> None:
        with self._lock:
            self._counts.update(writes)

    def count(self, write: str) -> int:
        with self._lock:
            return self._counts[write]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def steered_walk(domain: Any, rng: random.Random, coverage: WriteCoverage, *, tries: int = 20) -> Any:
    """A grounded walk that ends in the least covered write tool that a walk can reach, or None.

    A walk may pass another write on its way (a lookup, an address change, then the exchange);
    when that one is already covered more than the target, a walk with the target as its only
    write is tried first. The walk's writes are added to ``coverage``."""
    writes = [spec.name for spec in domain.tools if spec.kind is ToolKind.WRITE]
    tried: list[str] = []
    while True:
        target = coverage.pick(rng, writes, exclude=[*tried, *coverage.unreachable])
        if target is None:
            return None
        walk = grounded_walk(domain, rng, end=target, tries=tries)
        if walk is None:
            coverage.misses[target] += 1
            if coverage.misses[target] >= GIVE_UP and not coverage.count(target):  # never reached: give up
                coverage.unreachable.add(target)
            tried.append(target)
            continue
        coverage.misses[target] = 0
        others = [w for w in _writes(domain, walk) if w != target]
        if any(coverage.count(w) > coverage.count(target) for w in others):
            walk = grounded_walk(domain, rng, end=target, max_writes=1, tries=tries) or walk
        coverage.add(_writes(domain, walk))
        return walk


def _writes(domain: Any, walk: Any) -> list[str]:
    kinds = {spec.name: spec.kind for spec in domain.tools}
    return [a["name"] for a in walk.actions if kinds.get(a["name"]) is ToolKind.WRITE]
