"""The API graph outside Python: GraphML for tools, Graphviz DOT for eyes, text for logs.

GraphML cannot hold lists or dicts, so evidence and the pruned list travel as JSON strings;
the exported graph stays walkable as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from apigen_mt.domains.base import ToolKind
from apigen_mt.tools.state_diff import canonical_json


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    return canonical_json(value)


def to_graphml(graph: nx.DiGraph, path: str | Path) -> Path:
    """Write the graph as GraphML (evidence lists become JSON strings); returns the path."""
    plain = nx.DiGraph()
    plain.graph.update({k: _plain(v) for k, v in graph.graph.items()})
    for node, data in graph.nodes(data=True):
        plain.add_node(node, **{k: _plain(v) for k, v in data.items() if v is not None})
    for source, target, data in graph.edges(data=True):
        plain.add_edge(source, target, **{k: _plain(v) for k, v in data.items() if v is not None})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(plain, path)
    return path


def _quote(text: Any) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: nx.DiGraph) -> str:
    """The graph in Graphviz DOT: entry points as ellipses, writes as boxes, weights as labels."""
    name = graph.graph.get("domain") or "api_graph"
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;"]
    for node, data in graph.nodes(data=True):
        kind = data.get("kind", "")
        shape_name = "box" if kind == ToolKind.WRITE.value else "ellipse"
        style = ', style="bold"' if data.get("entry") else ""
        lines.append(f"  {_quote(node)} [kind={_quote(kind)}, shape={shape_name}{style}];")
    for source, target, data in graph.edges(data=True):
        weight = float(data.get("weight", 1.0))
        label = data.get("arguments", "")
        lines.append(
            f"  {_quote(source)} -> {_quote(target)} [weight={weight:.3f}, label={_quote(label)}, "
            f"penwidth={1 + 2 * weight:.2f}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def describe(graph: nx.DiGraph) -> str:
    """A short text listing of the edges, strongest first (for logs and the CLI)."""
    rows = sorted(graph.edges(data=True), key=lambda e: (-e[2].get("weight", 0), e[0], e[1]))
    return "\n".join(f"{s} -> {t}  {d.get('weight', 0):.2f}  ({d.get('arguments', '')})" for s, t, d in rows)
