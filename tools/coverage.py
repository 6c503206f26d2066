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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from apigen_mt.domains.base import ToolKind
from apigen_mt.tools.grounded_walk import grounded_walk

__all__ = ["GIVE_UP", "WriteCoverage", "steered_walk", "write_names"]

GIVE_UP = 3
"""Failed walks after which a write never reached counts as unreachable for the run."""


class WriteCoverage:
    """Counts per write tool; thread-safe (sync graph nodes run in worker threads)."""

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._counts: Counter[str] = Counter(counts or {})
        self._misses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def pick(self, rng: random.Random, candidates: Sequence[str], exclude: Iterable[str] = (), *,
             claim: bool = False) -> str | None:
        """The least covered of ``candidates`` (not in ``exclude``, nor given up on), ties broken by
        ``rng``; None if none is left. ``claim``: count it at once, under the same lock (threads
        picking together get different writes; :meth:`release` undoes it)."""
        excluded = set(exclude)
        with self._lock:
            left = [c for c in dict.fromkeys(candidates) if c not in excluded and not self._given_up(c)]
            if not left:
                return None
            least = min(self._counts[c] for c in left)
            tied = [c for c in left if self._counts[c] == least]
            choice = tied[rng.randrange(len(tied))]
            if claim:
                self._counts[choice] += 1
        return choice

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

    def release(self, write: str) -> None:
        """Undo a claim whose blueprint was not made."""
        with self._lock:
            if self._counts[write] > 0:
                self._counts[write] -= 1

    def missed(self, write: str) -> None:
        """A walk could not reach ``write``; after ``GIVE_UP`` misses of a write never reached, it
        is not picked again in this run (one reached once is rare, not unreachable)."""
        with self._lock:
            self._misses[write] += 1

    def _given_up(self, write: str) -> bool:
        return self._misses[write] >= GIVE_UP and not self._counts[write]

    def count(self, write: str) -> int:
        with self._lock:
            return self._counts[write]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {w: n for w, n in self._counts.items() if n}


def steered_walk(domain: Any, rng: random.Random, coverage: WriteCoverage, *, tries: int = 20,
                 accept: Callable[[Any], bool] | None = None, count_misses: bool = True) -> Any:
    """A grounded walk that ends in the least covered write tool a walk can reach, or None.

    The target is claimed when picked (concurrent threads get different ones) and released when
    no walk to it is found or ``accept`` (the caller's checks: execution, policy) refuses the
    walk; the walk's other writes are counted when it is returned. A walk may pass another
    write on its way (an address change, then the exchange); when that one is covered more
    than the target, a walk with the target as its only write is tried first. ``count_misses``:
    a target no walk reaches counts towards giving it up (not in one state of a pool, where
    another state may reach it)."""
    writes = [spec.name for spec in domain.tools if spec.kind is ToolKind.WRITE]
    tried: list[str] = []
    while True:
        target = coverage.pick(rng, writes, exclude=tried, claim=True)
        if target is None:
            return None
        tried.append(target)
        walk = grounded_walk(domain, rng, end=target, tries=tries)
        if walk is None:
            coverage.release(target)
            if count_misses:
                coverage.missed(target)
            continue
        if any(coverage.count(w) >= coverage.count(target) for w in _walk_writes(domain, walk) if w != target):
            walk = grounded_walk(domain, rng, end=target, max_writes=1, tries=tries) or walk
        if accept is not None and not accept(walk):
            coverage.release(target)
            continue
        others = _walk_writes(domain, walk)
        others.remove(target)
        coverage.add(others)
        return walk


def write_names(domain: Any, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are write tools of ``domain``, in order (repeats kept)."""
    kinds = {spec.name: spec.kind for spec in domain.tools}
    return [name for name in names if kinds.get(name) is ToolKind.WRITE]


def _walk_writes(domain: Any, walk: Any) -> list[str]:
    return write_names(domain, (a["name"] for a in walk.actions))
