"""Which candidate edges to drop although the evidence links them.

An output can feed an argument and the chain still make no sense: a cancelled order cannot
be modified, and looking up a user id one already has is a wasted step. These rules come
from the observed data first; a domain can add its own with a ``forbidden_edges`` hook.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.observe import Observations
from apigen_mt.tools.api_graph.specs import domain_hook
from apigen_mt.tools.api_graph.values import is_specific


def prune_reasons(
    domain: Domain,
    tools: dict[str, ToolSpec],
    obs: Observations,
    candidates: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[tuple[str, str], str]:
    """``(source, target) -> reason`` for each candidate edge to drop, in sorted order."""
    writes = [n for n, s in tools.items() if s.kind == ToolKind.WRITE]
    dead = _dead_entity_pairs(obs, writes)
    resolvers = _resolvers(tools, obs, candidates)
    forbidden = _forbidden_pairs(domain)
    reasons: dict[tuple[str, str], str] = {}
    for source, target in sorted(candidates):
        if any(fs in ("*", source) and ft in ("*", target) for fs, ft in forbidden):
            reasons[(source, target)] = "forbidden by the domain (forbidden_edges)"
        elif (source, target) in dead:
            reasons[(source, target)] = "dead entity: " + dead[(source, target)]
        elif (
            resolvers.get(target)
            and obs.outputs.get(source)
            and resolvers[target] <= obs.outputs[source].fields
        ):
            reasons[(source, target)] = (
                f"redundant: {source} already outputs {', '.join(sorted(resolvers[target]))}"
            )
    return reasons


def _forbidden_pairs(domain: Domain) -> list[tuple[str, str]]:
    """The domain's ``forbidden_edges``: ``(source, target)`` pairs, ``"*"`` a wildcard."""
    return [(str(source), str(target)) for source, target in domain_hook(domain, "forbidden_edges") or ()]


def _resolvers(
    tools: dict[str, ToolSpec],
    obs: Observations,
    candidates: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, set[str]]:
    """Tools whose whole output is an id they say they return (``find_user_id_by_email``), with
    the arguments that id feeds: no edge should lead into one from a tool that outputs it."""
    return {
        name: {
            e["argument"]
            for (s, t), c in candidates.items()
            if s == name
            for e in c["evidence"]
            if e["type"] == "returns"
        }
        for name in tools
        if obs.outputs.get(name) and obs.outputs[name].scalar
    }


def _state_fields(record: Any) -> dict[str, Any]:
    """Top-level fields that can hold a lifecycle state: words or None, not numbers or ids."""
    if not isinstance(record, Mapping):
        return {}
    return {k: v for k, v in record.items() if v is None or isinstance(v, str) and not is_specific(v)}


def _by_field(per_write: Mapping[tuple[str, str, str], Iterable[Any]]) -> dict[tuple[str, str], set[Any]]:
    """``(write, table, field) -> values`` merged over the writes: ``(table, field) -> values``."""
    merged: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for (_, table, name), values in per_write.items():
        merged[(table, name)].update(values)
    return merged


def _dead_entity_pairs(
    obs: Observations, writes: list[str], min_samples: int = 2
) -> dict[tuple[str, str], str]:
    """``(W1, W2) -> reason`` for writes whose result ``W2`` was never seen to act on.

    The gold writes show which record fields they move, and whether some write moves a field
    into a value no write ever starts from (a lifecycle field: ``orders.status`` ->
    ``cancelled``). ``W1 -> W2`` is dead when, on such a field, every value ``W1`` leaves a
    record in is one ``W2`` was never seen to start from (``cancel_pending_order ->
    modify_*``; but not ``modify_pending_order_address -> cancel_pending_order``: the order
    stays pending).
    """
    pre: dict[tuple[str, str, str], list[Any]] = defaultdict(list)  # (write, table, field) -> before values
    post: dict[tuple[str, str, str], set[Any]] = defaultdict(set)
    movers: dict[tuple[str, str], set[str]] = defaultdict(set)  # (table, field) -> writes changing it
    for write, samples in obs.write_samples.items():
        for table, before, after in samples:
            b, a = _state_fields(before), _state_fields(after)
            for name in set(b) & set(a) if before is not None and after is not None else set(b) | set(a):
                if before is not None:
                    pre[(write, table, name)].append(b.get(name))
                if after is not None:
                    post[(write, table, name)].add(a.get(name))
                if before is not None and after is not None and b.get(name) != a.get(name):
                    movers[(table, name)].add(write)
    starts, ends = _by_field(pre), _by_field(post)
    # lifecycle fields: some write moves them into a value no write was ever seen starting from
    lifecycle = [key for key in movers if ends[key] - starts[key]]
    lifecycle.sort(key=lambda key: (-len(movers[key]), key))  # the most-moved field (status) first
    pairs: dict[tuple[str, str], str] = {}
    for first in writes:
        for second in writes:
            if first == second:
                continue
            for table, name in lifecycle:
                after = post.get((first, table, name))
                before = pre.get((second, table, name), [])
                if not after or len(before) < min_samples:
                    continue
                if not after & set(before):
                    pairs[(first, second)] = (
                        f"{table}.{name} is {sorted(map(str, after))} after {first}; "
                        f"{second} was only seen acting on {sorted(map(str, set(before)))}"
                    )
                    break
    return pairs
