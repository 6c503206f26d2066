"""API sampler: which tools a blueprint should use, read and write sampled separately.

Two modes, chosen at random per sample:

* **chain** (probability ``walk_prob``): a write tool is drawn uniformly (so every write gets
  its share, however many edges lead to it; with a run's coverage, the least covered one), and so are a minimum length (``min_len``) and a
  number of writes (``n_writes``); a random walk on the API dependency graph then runs from
  an entry point to that write; the chain's tools are the sample. If no walk reaches it,
  any walk ending in a write is taken; if there is none, the separate mode is used.
* **separate**: ``m`` write tools drawn uniformly, then ``k`` read tools drawn without
  replacement, favouring the reads that feed the chosen writes in the graph and entry points.

Either way a_gt centres on writes: a domain with write tools always gets at least one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import networkx as nx
from apigen_mt.domains.base import Domain, ToolKind
from apigen_mt.tools.api_graph import api_graph, random_walk
from apigen_mt.tools.samplers.weighted import weighted_order


@dataclass
class APISample:
    """The sampled tools: reads, writes, and the chain when a walk produced them."""

    reads: list[str]
    writes: list[str]
    chain: list[str] | None = None
    mode: str = "separate"
    tools: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tools:
            self.tools = list(self.chain) if self.chain else [*self.reads, *self.writes]

    def to_json(self) -> dict[str, Any]:
        return {
            "tools": self.tools,
            "reads": self.reads,
            "writes": self.writes,
            "chain": self.chain,
            "mode": self.mode,
        }


class APISampler:
    """Samples read and write tools of a domain, or a plausible chain of them."""

    def __init__(
        self,
        domain: Domain,
        graph: nx.DiGraph | None = None,
        *,
        n_reads: tuple[int, int] = (1, 3),
        n_writes: tuple[int, int] = (1, 2),
        walk_prob: float = 0.7,
        max_len: int = 6,
        min_len: tuple[int, int] = (2, 4),
    ) -> None:
        self.domain = domain
        self.graph = graph if graph is not None else api_graph(domain)
        self.n_reads, self.n_writes = n_reads, n_writes
        self.walk_prob, self.max_len, self.min_len = walk_prob, max_len, min_len
        self.reads = [t.name for t in domain.tools if t.kind == ToolKind.READ]
        self.writes = [t.name for t in domain.tools if t.kind == ToolKind.WRITE]

    def sample(self, rng: random.Random, coverage: Any = None) -> APISample:
        """``coverage`` (a :class:`~apigen_mt.tools.coverage.WriteCoverage`): the write is the least
        covered so far instead of a uniform draw."""
        if rng.random() < self.walk_prob and self.writes:
            chain = self._walk(rng, coverage)
            if chain:
                kinds = {n: self.graph.nodes[n].get("kind") for n in chain}
                return APISample(
                    reads=[n for n in chain if kinds[n] == ToolKind.READ.value],
                    writes=[n for n in chain if kinds[n] == ToolKind.WRITE.value],
                    chain=chain,
                    mode="chain",
                )
        return self._separate(rng, coverage)

    def _walk(self, rng: random.Random, coverage: Any = None) -> list[str] | None:
        min_len = rng.randint(*self.min_len)
        max_writes = max(1, rng.randint(*self.n_writes))
        end = coverage.pick(rng, self.writes) if coverage is not None else rng.choice(self.writes)
        chain = random_walk(self.graph, rng, self.max_len, min_len=min_len, max_writes=max_writes, end=end)
        if chain is None:
            chain = random_walk(self.graph, rng, self.max_len, min_len=min(min_len, 2), max_writes=max_writes)
        return chain

    def _separate(self, rng: random.Random, coverage: Any = None) -> APISample:
        m = min(len(self.writes), rng.randint(*self.n_writes)) if self.writes else 0
        if coverage is not None:
            writes = coverage.pick_many(rng, self.writes, m)
        else:
            writes = rng.sample(self.writes, m) if m else []
        k = min(len(self.reads), rng.randint(*self.n_reads))
        weights = []
        for read in self.reads:
            weight = 1.0
            if read in self.graph:
                weight += 2.0 * sum(
                    float(self.graph.edges[read, w].get("weight", 0.0))
                    for w in writes
                    if self.graph.has_edge(read, w)
                )
                weight += 1.0 if self.graph.nodes[read].get("entry") else 0.0
            weights.append(weight)
        reads = list(islice(weighted_order(rng, self.reads, weights), k))
        reads.sort(key=self.reads.index)
        return APISample(reads=reads, writes=writes, mode="separate")
