"""The API dependency graph of a domain, and random walks on it (Phase 1 context preparation).

Nodes are the domain's read and write tools; an edge ``A -> B`` says that an output of ``A``
can feed an argument of ``B``, weighted by the evidence for it. Random walks on the graph
give plausible tool chains that start at an entry point and end in a write.

One module per step: :mod:`.values` and :mod:`.specs` (what an id is, what the domain
declares), :mod:`.observe` and :mod:`.foreign_keys` (running the tools), :mod:`.evidence`
(edge weights), :mod:`.pruning` (edges that make no sense), :mod:`.graph` (building and
caching the graph), :mod:`.walks` and :mod:`.export`.

Inside the package, a name without a leading underscore is shared between its modules
(``observe.Observations``, ``specs.properties``, ...); a ``_name`` is used by its own module
only. What other code may rely on is what this module exports (``__all__``).
"""

from apigen_mt.tools.api_graph.export import describe, to_dot, to_graphml
from apigen_mt.tools.api_graph.graph import ApiGraph, api_graph, build_api_graph, clear_cache
from apigen_mt.tools.api_graph.values import shape
from apigen_mt.tools.api_graph.walks import random_walk

__all__ = [
    "ApiGraph",
    "api_graph",
    "build_api_graph",
    "clear_cache",
    "describe",
    "random_walk",
    "shape",
    "to_dot",
    "to_graphml",
]
