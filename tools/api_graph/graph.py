"""The API graph itself: building it from a domain, its node attributes, and the per-domain cache.

This is where the other modules meet: observations give evidence, evidence gives candidate
edges, pruning drops some, write probes add preconditions (a login before a booking), and
entry points mark where walks may start.
"""

from __future__ import annotations

import functools
import random
import threading
import weakref
from pathlib import Path
from typing import Any

import networkx as nx
from apigen_mt.domains.base import Domain, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.effects import EFFECT_WEIGHT, effect_edges, fresh_reads
from apigen_mt.tools.api_graph.evidence import MIN_WEIGHT, edge_evidence
from apigen_mt.tools.api_graph.export import to_dot, to_graphml
from apigen_mt.tools.api_graph.foreign_keys import accept_probe
from apigen_mt.tools.api_graph.observe import Observations, Output, collect_observations
from apigen_mt.tools.api_graph.preconditions import ENABLES_WEIGHT, probe_writes
from apigen_mt.tools.api_graph.pruning import prune_reasons
from apigen_mt.tools.api_graph.specs import (
    chain_tools,
    domain_hook,
    is_key_argument,
    properties,
    required_arguments,
    schema_choices,
)
from apigen_mt.tools.api_graph.values import names_in, singular
from apigen_mt.tools.api_graph.walks import random_walk


class ApiGraph(nx.DiGraph):
    """A networkx DiGraph of tool names with evidence-weighted edges, plus walks and exports.

    Node attributes: ``kind`` ("read"/"write"), ``entry`` (bool), ``entry_weight``,
    ``required`` (comma-separated argument names), ``observed`` (outputs seen), ``needs``
    (the writes one of which must run first: a precondition).
    Edge attributes: ``weight`` in [0, 1], ``arguments`` (comma-separated arguments of the
    target this source can feed), ``evidence`` (list of dicts). ``graph["pruned"]`` lists the
    dropped candidate edges with their reasons.
    """

    @property
    def entry_points(self) -> list[str]:
        return [n for n, data in self.nodes(data=True) if data.get("entry")]

    @property
    def read_tools(self) -> list[str]:
        return self._tools_of_kind(ToolKind.READ)

    @property
    def write_tools(self) -> list[str]:
        return self._tools_of_kind(ToolKind.WRITE)

    def _tools_of_kind(self, kind: ToolKind) -> list[str]:
        return [n for n, data in self.nodes(data=True) if data.get("kind") == kind.value]

    def random_walk(self, rng: random.Random, max_len: int = 6, **options: Any) -> list[str] | None:
        return random_walk(self, rng, max_len, **options)

    def to_graphml(self, path: str | Path) -> Path:
        return to_graphml(self, path)

    def to_dot(self) -> str:
        return to_dot(self)

    def stats(self) -> dict[str, Any]:
        return {
            "domain": self.graph.get("domain"),
            "nodes": self.number_of_nodes(),
            "edges": self.number_of_edges(),
            "reads": len(self.read_tools),
            "writes": len(self.write_tools),
            "entry_points": self.entry_points,
            "pruned": len(self.graph.get("pruned", [])),
        }


def build_api_graph(
    domain: Domain,
    *,
    min_weight: float = MIN_WEIGHT,
    probe_users: int = 8,
    probe_rounds: int = 3,
    max_accept_calls: int = 2000,
) -> ApiGraph:
    """Build the dependency graph of ``domain`` from its schemas, examples and data (uncached).

    Nodes are the domain's read and write tools. An edge ``A -> B`` says that an output of
    ``A`` can feed an argument of ``B``; candidate edges weaker than ``min_weight`` are left
    out, and self-loops are never candidates. A write that succeeds only after another gets an
    edge from it (evidence ``enables``: :mod:`~apigen_mt.tools.api_graph.preconditions`). A
    write no edge from a read reaches gets an edge from each read that shows its effect
    (evidence of type ``effect``, no argument fed: :mod:`~apigen_mt.tools.api_graph.effects`).
    """
    tools = chain_tools(domain)
    obs = collect_observations(domain, probe_users, probe_rounds)
    fresh = functools.cache(lambda: fresh_reads(domain, tools, random.Random(0)))  # once, if a probe needs it
    preconditions = probe_writes(domain, tools, obs, fresh)
    accept_calls = accept_probe(domain, obs, max_accept_calls) if max_accept_calls else 0
    graph = ApiGraph(
        domain=domain.name,
        gold_traces=obs.gold_traces,
        probe_calls=obs.probe_calls,
        accept_calls=accept_calls,
    )
    graph.graph["excluded"] = [spec.name for spec in domain.tools if spec.name not in tools]
    for name, spec in tools.items():
        graph.add_node(
            name,
            kind=spec.kind.value,
            required=",".join(spec.parameters.get("required") or []),
            key_args=",".join(
                a for a in required_arguments(spec) if is_key_argument(a, properties(spec).get(a, {}))
            ),
            observed=obs.outputs.get(name, Output()).count,
            entry=False,
            entry_weight=0.0,
            needs="",
        )
    candidates = _candidate_edges(tools, obs, min_weight)
    preconditioned = {pair: {"evidence": []} for pair in preconditions if pair not in candidates}
    reasons = prune_reasons(domain, tools, obs, {**candidates, **preconditioned})
    for (source, target), data in sorted(candidates.items()):
        if (source, target) not in reasons:
            graph.add_edge(
                source,
                target,
                weight=data["weight"],
                arguments=",".join(data["arguments"]),
                evidence=data["evidence"],
            )
    graph.graph["pruned"] = [
        {"source": source, "target": target, "reason": reason} for (source, target), reason in reasons.items()
    ]
    for (source, target), found in sorted(preconditions.items()):
        evidence = {"type": "enables", "argument": None, "calls": found.calls, "score": ENABLES_WEIGHT}
        if graph.has_edge(source, target):
            data = graph.edges[source, target]
            data["evidence"] = [*data["evidence"], evidence]
            data["weight"] = max(data["weight"], ENABLES_WEIGHT)
            data["arguments"] = ",".join(sorted(set(names_in(data["arguments"])) | found.arguments))
        elif (source, target) not in reasons:
            graph.add_edge(source, target, weight=ENABLES_WEIGHT, arguments=",".join(sorted(found.arguments)), evidence=[evidence])
    for (source, target), found in preconditions.items():
        if found.needed and graph.has_edge(source, target):
            graph.nodes[target]["needs"] = ",".join(sorted({*names_in(graph.nodes[target]["needs"]), source}))
    reads = {n for n, kind in graph.nodes(data="kind") if kind == ToolKind.READ.value}
    unreached = [  # no read leads to it (a post's author, fed only by posting, still needs a login first)
        n for n, kind in graph.nodes(data="kind")
        if kind == ToolKind.WRITE.value and not any(source in reads for source in graph.predecessors(n))
    ]
    for (source, target), count in sorted(effect_edges(domain, tools, unreached, fresh).items()):
        graph.add_edge(source, target, weight=EFFECT_WEIGHT, arguments="", evidence=[{"type": "effect", "argument": None, "calls": count, "score": EFFECT_WEIGHT}])
    _mark_entry_points(graph, domain, tools, obs)
    return graph


def _candidate_edges(
    tools: dict[str, ToolSpec], obs: Observations, min_weight: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """``(source, target) -> {weight, evidence, arguments}`` for every edge the evidence supports."""
    candidates: dict[tuple[str, str], dict[str, Any]] = {}
    for source in tools.values():
        for target in tools.values():
            if source.name == target.name:
                continue
            weight, evidence, fed = edge_evidence(source, target, obs)
            if weight >= min_weight:
                candidates[(source.name, target.name)] = {
                    "weight": weight,
                    "evidence": evidence,
                    "arguments": fed,
                }
    return candidates


def _mark_entry_points(
    graph: ApiGraph, domain: Domain, tools: dict[str, ToolSpec], obs: Observations
) -> None:
    """Mark the read tools whose arguments the user can supply, with a weight.

    The domain's ``entry_tools`` hook wins when it has one. Otherwise: the first read tools of
    the gold traces (the ways the benchmark's users start), else the reads whose required
    arguments all come from the user's own records; reads whose required arguments are all
    choices the schema offers or values every stated request gives (and that have some
    out-edge, or the domain has no write) are entries too, with less weight.
    """
    explicit = _entry_tools(domain)
    reads = [n for n, s in tools.items() if s.kind == ToolKind.READ]
    if explicit is not None:
        entries = {n: 1.0 for n in explicit if n in tools}
    elif obs.first_reads:
        entries = {n: float(c) for n, c in obs.first_reads.items() if n in reads}
    else:
        entries = {}
        for name in reads:
            required = tools[name].parameters.get("required") or []
            if required and all(
                arg in obs.user_fields or singular(arg) in obs.user_fields for arg in required
            ):
                entries[name] = 1.0
    if explicit is None:
        stated = domain.stated_arguments or {}
        answers = not graph.write_tools  # with no write, a read is where a walk ends (a calculation)
        for name in reads:  # reads that need nothing but a choice the schema offers or the user's words
            props = properties(tools[name])
            requests = stated.get(name) or ()
            required = tools[name].parameters.get("required") or []
            given = all(schema_choices(props.get(a, {})) or (requests and all(a in r for r in requests)) for a in required)
            if given and (graph.out_degree(name) or answers):
                entries.setdefault(name, 0.5)
    for name, weight in entries.items():
        graph.nodes[name]["entry"] = True
        graph.nodes[name]["entry_weight"] = round(weight, 3)


def _entry_tools(domain: Domain) -> list[str] | None:
    """The domain's ``entry_tools`` hook, if it has one."""
    value = domain_hook(domain, "entry_tools")
    return None if value is None else [str(v) for v in value]


_CACHE: weakref.WeakKeyDictionary[Domain, ApiGraph] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()  # concurrent first callers wait for one build instead of each building


def api_graph(domain: Domain) -> ApiGraph:
    """The dependency graph of ``domain``, built once per domain object (cached)."""
    graph = _CACHE.get(domain)
    if graph is None:
        with _CACHE_LOCK:
            graph = _CACHE.get(domain)
            if graph is None:
                graph = _CACHE[domain] = build_api_graph(domain)
    return graph


def clear_cache() -> None:
    _CACHE.clear()
