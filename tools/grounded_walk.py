"""Grounded walks: tool chains executed on real entities before any instruction is written.

The "grounded" proposal mode of Phase 1. An LLM asked to propose tool calls often names
entities that do not exist or calls tools in an order the API does not allow, and the
blueprint then dies in the execution check. Here the chain comes from a random walk on the
domain's API dependency graph, every argument is a real value (from a user's records or an
earlier call's output) and every call is run, so what comes out is known to execute; an LLM
later only has to write the instruction that asks for it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
from apigen_mt.domains.base import Domain, Environment, ToolKind, ToolSpec
from apigen_mt.tools.api_graph import api_graph, random_walk
from apigen_mt.tools.api_graph.values import decode
from apigen_mt.tools.executor import render_observation, run_call
from apigen_mt.tools.grounded_arguments import Known, draw_arguments
from apigen_mt.tools.state_diff import canonical_json, state_hash


@dataclass
class GroundedWalk:
    """A chain of calls that ran, in order, on one fresh environment; the last one a write
    (a read in a domain that has none: a calculation whose answer the user asks for).

    ``actions`` are ``{"name", "arguments"}`` dicts (a blueprint's gold actions);
    ``observations[i]`` is what ``actions[i]`` returned, as the agent would read it.
    """

    user_id: str | None
    chain: list[str]
    actions: list[dict[str, Any]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "chain": list(self.chain),
            "actions": [{"name": a["name"], "arguments": dict(a["arguments"])} for a in self.actions],
            "observations": list(self.observations),
        }


def grounded_walk(
    domain: Domain,
    rng: random.Random,
    *,
    max_len: int = 6,
    max_writes: int = 2,
    tries: int = 20,
    retries: int = 3,
    end: str | None = None,
) -> GroundedWalk | None:
    """A walk on ``domain``'s API graph whose every call succeeded on real entities, or None.

    Each try picks a user (none when the domain has no users), draws a chain with
    :func:`random_walk` and runs it on one fresh environment, each call's required arguments
    drawn at random from the values known so far (the user's records, then every output;
    see :func:`draw_arguments`). A call that fails is tried again with other values
    (``retries`` more draws); if it still fails, or an argument has no value at all, the
    chain is run again from the start (``retries`` more times: which order was looked up
    first decides whether it can be cancelled later), then the try is abandoned. A write
    that changes nothing (an address set to itself) counts as failed: it leaves nothing to
    ask for and nothing to verify. Returns None after ``tries`` failed tries (quickly when
    no entry point of the graph reaches a write). ``end``: the write the chain must reach
    (coverage steering, :mod:`apigen_mt.tools.coverage`). Deterministic given ``rng``'s state.
    """
    graph = api_graph(domain)
    try:
        users = sorted(domain.user_ids())
    except Exception:  # a domain that cannot list its users still has its tools
        users = []
    for _ in range(max(1, tries)):
        user_id = users[rng.randrange(len(users))] if users else None
        chain = random_walk(graph, rng, max_len, max_writes=max_writes, end=end)
        if chain is None:
            continue
        records = _user_records(domain, user_id)
        for _ in range(1 + max(0, retries)):
            walk = _run_chain(domain, graph, chain, records, rng, retries)
            if walk is not None:
                walk.user_id = user_id
                return walk
    return None


def _user_records(domain: Domain, user_id: str | None) -> Any:
    """What the user can tell the agent: their records (nothing without a user)."""
    if user_id is None:
        return None
    try:
        return domain.user_context(user_id)
    except Exception:  # a user the domain cannot describe: only outputs will feed the chain
        return None


def _run_chain(
    domain: Domain, graph: nx.DiGraph, chain: list[str], records: Any, rng: random.Random, retries: int
) -> GroundedWalk | None:
    """Run ``chain`` call by call on one environment; None as soon as a call cannot succeed."""
    last = domain.tool(chain[-1])
    if last is None or (last.kind != ToolKind.WRITE and any(t.kind == ToolKind.WRITE for t in domain.tools)):
        return None
    known = Known()
    if records is not None:
        known.add("user", records)
    env: Environment = domain.new_env()
    walk = GroundedWalk(user_id=None, chain=list(chain))
    for index, name in enumerate(chain):
        spec = domain.tool(name)
        stated = (domain.stated_arguments or {}).get(name, ())
        done = _first_success(spec, index, env, known, graph, rng, retries, stated) if spec is not None else None
        if done is None:
            return None
        env, arguments, observation = done
        known.add(name, decode(observation))
        walk.actions.append({"name": name, "arguments": arguments})
        walk.observations.append(render_observation(observation))
    return walk


def _first_success(
    spec: ToolSpec,
    index: int,
    env: Environment,
    known: Known,
    graph: nx.DiGraph,
    rng: random.Random,
    retries: int,
    stated: Sequence[Mapping[str, Any]] = (),
) -> tuple[Environment, dict[str, Any], Any] | None:
    """Call ``spec`` with drawn arguments until a call succeeds: (the state after it, its
    arguments, its observation); None after ``retries`` failed retries or with no values."""
    tried: set[str] = set()
    for draw in range(4 * (1 + max(0, retries))):  # a bound on draws, repeated ones included
        if len(tried) > max(0, retries):
            return None
        arguments = draw_arguments(spec, known, graph, rng, follow=draw == 0, stated=stated)
        if arguments is None:
            return None  # some argument has no value anywhere
        signature = canonical_json(arguments)
        if signature in tried:
            continue
        tried.add(signature)
        trial = env.fork()  # a failed call leaves ``env`` exactly as it was
        call = run_call(trial, index, spec.name, arguments)
        if call.ok and not (spec.kind == ToolKind.WRITE and state_hash(trial) == state_hash(env)):
            return trial, arguments, call.observation
    return None


def as_blueprint(
    walk: GroundedWalk, domain: Domain, instruction: str, blueprint_id: str = "grounded"
) -> dict[str, Any]:
    """``walk`` as a raw blueprint (the shape :func:`validate_blueprint` reads), given its instruction."""
    return {
        "id": blueprint_id,
        "domain": domain.name,
        "instruction": instruction,
        "actions": [{"name": a["name"], "arguments": dict(a["arguments"])} for a in walk.actions],
        "outputs": [],
    }


__all__ = ["GroundedWalk", "as_blueprint", "grounded_walk"]
