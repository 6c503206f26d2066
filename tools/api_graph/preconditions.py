"""Writes that need another write first: log in before opening a ticket, lower the budget before booking.

Reads are probed on real data (:mod:`.observe`), but a write no gold trace shows stays
unseen: what it returns (a new ticket's id) and what it needs (a logged-in user) are then
unknown, and no walk reaches it. :func:`probe_writes` runs each unseen write on forks of the
fresh state, with arguments from the fresh reads' pool, the schema's choices and the user's
stated requests; then, on the states the successful writes left (to ``DEPTH`` writes deep,
each state's pool grown with the output of the write that made it), the writes that still
failed. A write that succeeds only after another gets an edge from it (evidence ``enables``,
and the arguments the earlier output fed: ``create_ticket -> close_ticket`` feeds
``ticket_id``); when it failed on the fresh state with values to hand, the earlier write is
a precondition (``needed``: walks run one of them first). Every successful call is recorded in the observations, so the value
evidence sees what writes return. Every call runs on forks; the pristine state is never touched.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain, Environment, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.effects import argument_variants, fresh_reads
from apigen_mt.tools.api_graph.observe import Observations
from apigen_mt.tools.api_graph.pool import Pool, argument_candidates, grow_pool
from apigen_mt.tools.api_graph.values import decode
from apigen_mt.tools.executor import run_call
from apigen_mt.tools.state_diff import canonical_json, state_hash

__all__ = ["ENABLES_WEIGHT", "Precondition", "probe_writes"]

ENABLES_WEIGHT = 0.6
"""A precondition edge's weight: the next step is as likely as along a well-evidenced value edge."""
DEPTH = 2
"""Writes run before the one probed: login, then create, then close."""
MAX_STATES = 12
"""States kept per depth (the first successful write of each kind, in tool order)."""


@dataclass
class Precondition:
    """Evidence that ``target`` succeeded only after ``source``: calls seen, arguments fed,
    and whether it is a precondition (``needed``: the target had values on the fresh state
    and still failed there: a login) rather than only a value flow (no ticket id before one
    was created)."""

    calls: int = 0
    arguments: set[str] = field(default_factory=set)
    needed: bool = False


def probe_writes(domain: Domain, tools: dict[str, ToolSpec], obs: Observations) -> dict[tuple[str, str], Precondition]:
    """``(source write, target write) -> Precondition`` for the unseen writes (see the module
    docstring); records every successful write call in ``obs``."""
    unseen = [
        spec for spec in tools.values()
        if spec.kind == ToolKind.WRITE and not (obs.outputs.get(spec.name) and obs.outputs[spec.name].count)
    ]
    if not unseen:
        return {}
    rng = random.Random(0)
    env, pool, _ = fresh_reads(domain, tools, rng)
    requests = domain.stated_arguments or {}
    edges: dict[tuple[str, str], Precondition] = defaultdict(Precondition)
    fresh: set[str] = set()  # writes that succeed on the fresh state: they need nothing first
    failed: set[str] = set()  # writes that had values on the fresh state and failed with all
    level: list[tuple[str | None, Environment, Pool]] = [(None, env, pool)]
    for depth in range(DEPTH + 1):
        following: list[tuple[str | None, Environment, Pool]] = []
        for maker, state, state_pool in level:
            before = state_hash(state)
            for spec in unseen:
                if spec.name == maker or (depth and spec.name in fresh):
                    continue
                variants = argument_variants(spec, state_pool, rng, requests.get(spec.name, ()))
                done = _first_success(spec, state, before, variants)
                if done is None:
                    if depth == 0 and variants:
                        failed.add(spec.name)
                    continue
                after, arguments, observation = done
                obs.record(spec.name, arguments, observation)
                obs.probe_calls += 1
                if depth == 0:
                    fresh.add(spec.name)
                else:
                    edge = edges[(str(maker), spec.name)]
                    edge.calls += 1
                    edge.arguments |= _fed_by(spec, arguments, state_pool, str(maker))
                    edge.needed = spec.name in failed
                if depth < DEPTH and len(following) < MAX_STATES:
                    grown = copy.deepcopy(state_pool)
                    grow_pool(grown, decode(observation), spec.name)
                    following.append((spec.name, after, grown))
        level = following
    return dict(edges)


def _first_success(
    spec: ToolSpec, state: Environment, before: str, variants: list[dict[str, Any]]
) -> tuple[Environment, dict[str, Any], Any] | None:
    """The first of the calls ``variants`` of ``spec`` that succeeds on a fork of ``state`` and changes it."""
    for arguments in variants:
        trial = state.fork()
        call = run_call(trial, 0, spec.name, arguments)
        if call.ok and state_hash(trial) != before:
            return trial, arguments, call.observation
    return None


def _fed_by(spec: ToolSpec, arguments: dict[str, Any], pool: Pool, source: str) -> set[str]:
    """The arguments of the call whose value came from ``source``'s output."""
    fed = set()
    for name, value in arguments.items():
        wanted = canonical_json(value[0] if isinstance(value, list) and len(value) == 1 else value)
        if any(canonical_json(v) == wanted and s == source for v, s in argument_candidates(spec, pool, name)):
            fed.add(name)
    return fed
