"""Random walks on the API graph: plausible tool chains for the blueprint generator.

Chains centre on writes: a walk starts where a user can start (an entry point), follows the
evidence-weighted edges and ends in a write. Walks only read node and edge attributes, so
any DiGraph with them works, a GraphML round trip included.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import networkx as nx
from apigen_mt.domains.base import ToolKind
from apigen_mt.tools.api_graph.values import names_in


def _kind(graph: nx.DiGraph, node: str) -> str | None:
    return graph.nodes[node].get("kind")


def _distance_to(graph: nx.DiGraph, targets: Iterable[str]) -> dict[str, int]:
    """Fewest edges from each node to one of ``targets`` (a target itself: 0)."""
    distance = {n: 0 for n in targets if n in graph}
    frontier = list(distance)
    while frontier:
        following = []
        for node in frontier:
            for previous in graph.predecessors(node):
                if previous not in distance:
                    distance[previous] = distance[node] + 1
                    following.append(previous)
        frontier = following
    return distance


def _covered(graph: nx.DiGraph, path: list[str], write: str) -> bool:
    """Whether the chain so far can feed every id-like argument of ``write`` that some tool
    feeds, and holds one of the writes it needs first (its ``needs``: a login), if any."""
    needs = set(names_in(graph.nodes[write].get("needs")))
    if needs and not needs & set(path):
        return False
    feedable: set[str] = set()
    fed: set[str] = set()
    for source in graph.predecessors(write):
        arguments = set(names_in(graph.edges[source, write].get("arguments")))
        feedable |= arguments
        if source in path:
            fed |= arguments
    needed = set(names_in(graph.nodes[write].get("key_args"))) & feedable
    return needed <= fed


def _pick(rng: random.Random, options: list[str], weights: list[float]) -> str:
    total = sum(weights)
    if total <= 0:
        return options[rng.randrange(len(options))]
    point = rng.random() * total
    for option, weight in zip(options, weights):
        point -= weight
        if point < 0:
            return option
    return options[-1]


def random_walk(
    graph: nx.DiGraph,
    rng: random.Random,
    max_len: int = 6,
    *,
    min_len: int = 2,
    max_writes: int = 2,
    stop_prob: float = 0.6,
    start: str | None = None,
    end: str | None = None,
    cover: bool = True,
    tries: int = 30,
) -> list[str] | None:
    """A plausible chain of tool names: starts at an entry point, follows edges, ends in a write
    (in a domain without writes, in a read, the calls before it counting as writes do).

    ``graph`` is an :class:`ApiGraph` or any DiGraph with the same node/edge attributes (a
    GraphML round trip works). Successors are drawn in proportion to edge weight, only among
    those from which a write (or ``end``) is still reachable within ``max_len``; while the
    chain is shorter than ``min_len`` reads are preferred, so writes come after lookups.
    After each write the walk stops with probability ``stop_prob`` (always after
    ``max_writes`` writes, at ``max_len``, or when no further write can be reached); with
    ``end`` it runs until it reaches that write. Nodes are not revisited. With ``cover`` a
    write is only entered once the chain holds, for each of its id-like arguments that some
    tool can feed, a tool that feeds it (``book_reservation`` needs a flight search, not
    just the user's details), and one of the writes it needs first (``needs``: a login).
    ``start`` forces the first tool (default: an entry point, drawn by ``entry_weight``).

    Returns None when no such chain exists (no entry point reaches a write within
    ``max_len``, or ``tries`` attempts hit dead ends). Deterministic given ``rng``'s state.
    """
    write = ToolKind.WRITE.value
    if max_len < 1 or (end is not None and (end not in graph or _kind(graph, end) != write)):
        return None
    # a domain with no write (a calculator) ends its chains in a read: the answer
    final = write if any(_kind(graph, n) == write for n in graph) else ToolKind.READ.value
    targets = [end] if end is not None else [n for n in graph if _kind(graph, n) == final]
    distance = _distance_to(graph, targets)
    if start is not None:
        entries = [start] if start in graph else []
    else:
        entries = sorted(n for n, data in graph.nodes(data=True) if data.get("entry"))
    entries = [n for n in entries if n in distance and distance[n] + 1 <= max_len]
    if not entries:
        return None
    entry_weights = [float(graph.nodes[n].get("entry_weight") or 1.0) for n in entries]
    for _ in range(max(1, tries)):
        path = [_pick(rng, entries, entry_weights)]
        writes = 0
        while True:
            node = path[-1]
            if _kind(graph, node) == final:
                writes += 1
                if end is not None:
                    if node == end:
                        if len(path) >= min_len:
                            return path
                        break
                elif len(path) >= min_len and (
                    writes >= max_writes or len(path) >= max_len or rng.random() < stop_prob
                ):
                    return path
            room = max_len - len(path)
            options = [
                s
                for s in sorted(graph.successors(node))
                if s not in path
                and s in distance
                and distance[s] + 1 <= room
                and not (cover and _kind(graph, s) == write and not _covered(graph, path, s))
                and not (
                    _kind(graph, s) == write and s != end and writes + 1 >= max_writes and end is not None
                )
            ]
            if len(path) + 1 < min_len:  # lookups first
                reads = [s for s in options if _kind(graph, s) != write]
                options = reads or options
            if not options:
                if end is None and _kind(graph, node) == final and len(path) >= min_len:
                    return path
                break  # dead end: try again
            path.append(
                _pick(rng, options, [float(graph.edges[node, s].get("weight", 1.0)) for s in options])
            )
    return None
