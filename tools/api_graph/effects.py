"""Edges from what a write does to what a read shows: check the state, then act on it.

Value edges (an output feeds an argument) leave out the writes whose arguments are choices
the schema offers (lock or unlock which doors, headlights on or off): nothing has to be
looked up for them, yet a task does check the state first ("are the doors locked? lock
them"). For each write that no edge reaches, :func:`effect_edges` runs it on a copy of a fresh
environment with arguments from the schema and the read probes' outputs, and reruns the
reads: a read whose output changed shows that write's effect, and gets an edge to it. Every
call runs on forks; the domain's pristine state is never touched.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from apigen_mt.domains.base import Domain, Environment, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.pool import Pool, argument_candidates, grow_pool
from apigen_mt.tools.api_graph.specs import element_type, properties, schema_choices
from apigen_mt.tools.api_graph.values import decode
from apigen_mt.tools.executor import run_call
from apigen_mt.tools.state_diff import canonical_json, state_hash

__all__ = ["EFFECT_WEIGHT", "FreshReads", "argument_variants", "effect_edges", "fresh_reads"]

EFFECT_WEIGHT = 0.5
"""An effect edge's weight: as likely a next step as a value edge of middling evidence."""
MAX_VARIANTS = 8


def argument_variants(
    spec: ToolSpec, pool: Pool, rng: random.Random, requests: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Up to ``MAX_VARIANTS`` calls of ``spec``: each required argument from the pool, else
    from the schema's choices (all combinations when few, else a random sample); with
    ``requests`` (what a user may ask of the tool: ``Domain.stated_arguments``), each
    combination once per request, the request filling what the pool leaves open."""
    options: list[list[Any]] = []
    names: list[str] = []
    props = properties(spec)
    for name in spec.parameters.get("required") or []:
        schema = props.get(name, {})
        values = [value for value, _ in argument_candidates(spec, pool, name)]
        if not values and requests and all(name in request for request in requests):
            continue  # every request says it
        stated = [request[name] for request in requests if name in request and request[name] not in values]
        values = (values + stated if values else []) or schema_choices(schema)  # the known value may be the one to change
        if not values:
            values = [request[name] for request in requests if name in request]
            if not values:
                return []
        elif element_type(schema)[1]:
            values = [[value] for value in values]
        options.append(values[:MAX_VARIANTS])
        names.append(name)
    combinations = list(itertools.islice(itertools.product(*options), 64))
    calls = [dict(zip(names, values)) for values in combinations]
    if requests:  # what the pool and the schema leave open, each request fills
        calls = [{**{k: v for k, v in request.items() if k in props}, **call} for call in calls for request in requests]
    if len(calls) > MAX_VARIANTS:
        calls = rng.sample(calls, MAX_VARIANTS)
    return calls


FreshReads = tuple[Environment, Pool, list[tuple[str, dict[str, Any], str]]]
"""A fresh environment, the pool its reads filled, and each successful read with its output."""


def fresh_reads(domain: Domain, tools: Mapping[str, ToolSpec], rng: random.Random) -> FreshReads:
    """A fresh environment, the pool its reads fill (from the first user's records on), and
    each successful read call with its output as JSON text: what writes are probed against."""
    env = domain.new_env()
    pool: Pool = defaultdict(list)
    try:
        users = sorted(domain.user_ids())
        if users:
            grow_pool(pool, domain.user_context(users[0]), "user")
    except Exception:  # a domain that cannot describe its users: the reads' outputs only
        pass
    shown: list[tuple[str, dict[str, Any], str]] = []
    for spec in tools.values():
        if spec.kind != ToolKind.READ:
            continue
        requests = (domain.stated_arguments or {}).get(spec.name, ())
        for arguments in argument_variants(spec, pool, rng, requests):
            call = run_call(env.fork(), len(shown), spec.name, arguments)
            if call.ok:
                shown.append((spec.name, arguments, canonical_json(call.observation)))
                grow_pool(pool, decode(call.observation), spec.name)
    return env, pool, shown


def effect_edges(
    domain: Domain, tools: dict[str, ToolSpec], writes: Iterable[str], fresh: Callable[[], FreshReads] | None = None
) -> dict[tuple[str, str], int]:
    """``(read, write) -> how many of the write's successful probe calls changed the read's
    output``; ``fresh``: gives the fresh reads (the caller's, shared with other probes)."""
    writes = [name for name in writes if name in tools and tools[name].kind == ToolKind.WRITE]
    if not writes:
        return {}
    rng = random.Random(0)
    env, pool, shown = fresh() if fresh is not None else fresh_reads(domain, tools, rng)
    pristine = state_hash(env)
    effects: dict[tuple[str, str], int] = defaultdict(int)
    for name in writes:
        requests = (domain.stated_arguments or {}).get(name, ())
        for arguments in argument_variants(tools[name], pool, rng, requests):
            trial = env.fork()
            if not run_call(trial, 0, name, arguments).ok or state_hash(trial) == pristine:
                continue
            for read, read_arguments, before in shown:
                after = run_call(trial.fork(), 1, read, read_arguments)
                if after.ok and canonical_json(after.observation) != before:
                    effects[(read, name)] += 1
    return dict(effects)
