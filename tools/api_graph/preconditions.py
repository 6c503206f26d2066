"""Writes that need another write first: log in before opening a ticket, lower the budget before booking.

Reads are probed on real data (:mod:`.observe`), but a write no gold trace shows stays
unseen: what it returns (a new ticket's id) and what it needs (a logged-in user) are then
unknown, and no walk reaches it. :func:`probe_writes` runs each unseen write on forks of the
fresh state, with arguments from the fresh reads' pool, the schema's choices and the user's
stated requests; then, on each state a successful write left (to ``DEPTH`` writes deep, its
pool grown with that write's output), the writes that failed on the state before it. A write
that succeeds only after another gets an edge from it (evidence ``enables``, and the
arguments the earlier output fed: ``create_ticket -> close_ticket`` feeds ``ticket_id``);
when it had failed with values to hand (an error, not a missing id), the earlier write is a
precondition (``needed``: walks run one of them first). A write that runs but changes nothing
(a login while logged in) is neither: it needs nothing, and it makes no new state. Every successful call is recorded in the observations, so the value
evidence sees what writes return. Every call runs on forks; the pristine state is never touched.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain, Environment, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.effects import FreshReads, argument_variants, fresh_reads
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
"""States kept per depth, in the order the writes that made them succeeded."""


@dataclass
class Precondition:
    """Evidence that ``target`` succeeded only after ``source``: calls seen, arguments fed,
    and whether it is a precondition (``needed``: the target had values on the state before
    and still failed there: a login) rather than only a value flow (no ticket id before one
    was created)."""

    calls: int = 0
    arguments: set[str] = field(default_factory=set)
    needed: bool = False


@dataclass
class _Probed:
    """A state the probes reached: the write that made it, the state, its pool, and the
    writes to try on it (those that failed on the state before it), each with whether it
    failed there with values to hand (an error, not a lack of values)."""

    maker: str | None
    env: Environment
    pool: Pool
    to_try: dict[str, bool]


def probe_writes(
    domain: Domain, tools: dict[str, ToolSpec], obs: Observations, fresh: Callable[[], FreshReads] | None = None
) -> dict[tuple[str, str], Precondition]:
    """``(source write, target write) -> Precondition`` for the unseen writes (see the module
    docstring); records every successful write call in ``obs``. ``fresh``: gives the fresh
    reads (the caller's, shared with other probes)."""
    unseen = [
        spec.name for spec in tools.values()
        if spec.kind == ToolKind.WRITE and not (obs.outputs.get(spec.name) and obs.outputs[spec.name].count)
    ]
    if not unseen:
        return {}
    rng = random.Random(0)
    env, pool, _ = fresh() if fresh is not None else fresh_reads(domain, tools, rng)
    requests = domain.stated_arguments or {}
    edges: dict[tuple[str, str], Precondition] = defaultdict(Precondition)
    level = [_Probed(None, env, pool, {name: False for name in unseen})]
    for depth in range(DEPTH + 1):
        following: list[_Probed] = []
        for probed in level:
            before = state_hash(probed.env)
            failed: dict[str, bool] = {}  # what failed here: the next states try it again
            made: list[tuple[str, Environment, Any]] = []
            for name in probed.to_try:
                spec = tools[name]
                variants = argument_variants(spec, probed.pool, rng, requests.get(name, ()))
                outcome, done = _first_success(spec, probed.env, before, variants)
                if outcome == "unchanged":
                    continue  # it ran and had nothing to do (a login while logged in): no precondition
                if done is None:
                    failed[name] = bool(variants)
                    continue
                after, arguments, observation = done
                obs.record(name, arguments, observation)
                obs.probe_calls += 1
                if probed.maker is not None:
                    edge = edges[(probed.maker, name)]
                    edge.calls += 1
                    edge.arguments |= _fed_by(spec, arguments, probed.pool, probed.maker)
                    edge.needed = edge.needed or probed.to_try[name]
                made.append((name, after, observation))
            if depth == DEPTH:
                continue
            for name, after, observation in made:
                if failed and len(following) < MAX_STATES:
                    grown = copy.deepcopy(probed.pool)
                    grow_pool(grown, decode(observation), name)
                    following.append(_Probed(name, after, grown, dict(failed)))
        level = following
    return dict(edges)


def _first_success(
    spec: ToolSpec, state: Environment, before: str, variants: list[dict[str, Any]]
) -> tuple[str, tuple[Environment, dict[str, Any], Any] | None]:
    """``("changed", (state after, arguments, observation))`` for the first of the calls
    ``variants`` that succeeds on a fork of ``state`` and changes it; else ``("unchanged",
    None)`` when one succeeded without a change, ``("failed", None)`` when none succeeded."""
    unchanged = False
    for arguments in variants:
        trial = state.fork()
        call = run_call(trial, 0, spec.name, arguments)
        if call.ok and state_hash(trial) != before:
            return "changed", (trial, arguments, call.observation)
        unchanged = unchanged or call.ok
    return ("unchanged" if unchanged else "failed"), None


def _fed_by(spec: ToolSpec, arguments: dict[str, Any], pool: Pool, source: str) -> set[str]:
    """The arguments of the call whose value came from ``source``'s output."""
    fed = set()
    for name, value in arguments.items():
        wanted = canonical_json(value[0] if isinstance(value, list) and len(value) == 1 else value)
        if any(canonical_json(v) == wanted and s == source for v, s in argument_candidates(spec, pool, name)):
            fed.add(name)
    return fed
