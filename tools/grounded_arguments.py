"""Arguments for the next call of a grounded walk, drawn from what the walk knows so far.

A grounded walk (:mod:`apigen_mt.tools.grounded_walk`) never makes a value up: each argument
is a value the user's records or an earlier output hold, one that the schema itself lists
(an enum, a quoted choice), a record seen as it was, or, for what no state holds, a value
the domain lists among the requests its users make (``Domain.stated_arguments``: a password,
a route; the instruction must then say it). Which of them to take is what makes the chain
read as one task: the order just looked up is the one cancelled.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from apigen_mt.domains.base import ToolSpec
from apigen_mt.tools.api_graph.pool import (
    Pool,
    argument_candidates,
    grow_pool,
    mostly_keyed_map,
    new_pool,
    user_pool,
)
from apigen_mt.tools.api_graph.specs import element_type, is_key_argument, matches_type, properties, schema_choices
from apigen_mt.tools.api_graph.values import is_int_id, is_key_like, is_specific, singular
from apigen_mt.tools.state_diff import canonical_json


@dataclass
class Known:
    """What a walk knows so far: the pool of values, and the data they came from in order
    (``"user"`` for the user's records, else the tool whose output it is)."""

    pool: Pool = field(default_factory=new_pool)
    data: list[tuple[str, Any]] = field(default_factory=list)  # (source, decoded data), oldest first

    def add(self, source: str, data: Any) -> None:
        grow_pool(self.pool, data, source, mostly_keyed_map)
        self.data.append((source, data))


def draw_arguments(
    spec: ToolSpec,
    known: Known,
    graph: nx.DiGraph,
    rng: random.Random,
    follow: bool = True,
    stated: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any] | None:
    """One value per required argument, at random among the fitting ones; None if one has none.

    With ``follow``, the values of the latest earlier output that feeds the argument (a
    graph edge) win over the rest of the pool. A retry does without: the order just looked up
    may be the one to cancel, but its payment method is not the one to switch to.

    ``stated``: the requests a user may make of the tool (``Domain.stated_arguments``); one
    is drawn, and its values fill the arguments that nothing known holds (no earlier output
    feeds it and the pool has no value for it; a value already fed to another argument does
    not feed this one too: ``add(a, b)`` after a mean adds a number the user gives), its
    optional arguments included; a retry draws from the pool and the request together (the
    budget known is the one to change). They come before the choices a schema offers.
    """
    props = properties(spec)
    request = dict(stated[rng.randrange(len(stated))]) if stated else {}
    arguments: dict[str, Any] = {}
    fed_so_far: set[str] = set()
    for name in spec.parameters.get("required") or []:
        schema = props.get(name, {})
        record = _record_schema(schema)
        if record is not None:
            choices = _records(known, name, record, array=_is_array(schema))
            if not choices and name in request:
                arguments[name] = request[name]
                continue
        else:
            fed = _fed_values(spec, known, graph, name)
            fresh = [value for value in fed if canonical_json(value) not in fed_so_far]
            pooled = _pooled(spec, known.pool, name)
            if name in request and not (follow and fresh) and not pooled:
                arguments[name] = request[name]
                continue
            if follow and fed:
                choices = fed
            else:
                choices = _union(fed, pooled or _offered(spec, name, schema))
                if name in request and not follow:  # a retry: the value known may be the one to change
                    choices = _union(choices, [request[name]])
        if not choices:
            return None
        value = choices[rng.randrange(len(choices))]
        if follow and record is None and value in fed:
            fed_so_far.add(canonical_json(value))
        arguments[name] = [value] if _is_array(schema) and record is None else value
    for name, value in request.items():
        if name in props:
            arguments.setdefault(name, value)
    return copy.deepcopy(arguments)  # nothing shared with the environment's own data


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    merged = {canonical_json(value): value for value in first}
    for value in second:
        merged.setdefault(canonical_json(value), value)
    return list(merged.values())


def _is_array(schema: Mapping[str, Any]) -> bool:
    return element_type(schema)[1]


def _fits(value: Any, spec: ToolSpec, name: str) -> bool:
    schema = properties(spec).get(name, {})
    return matches_type(value, element_type(schema)[0]) and ("enum" not in schema or value in schema["enum"])


def _pooled(spec: ToolSpec, pool: Pool, name: str) -> list[Any]:
    """Values for argument ``name`` pooled under its name, else under its last words
    (``new_item_ids`` -> ``item_ids``)."""
    for field_name in _field_names(name):
        found = argument_candidates(spec, pool, name, field_name)
        if found:
            return [value for value, _ in found]
    return []


def _offered(spec: ToolSpec, name: str, schema: Mapping[str, Any]) -> list[Any]:
    """Values the schema itself offers an argument (an enum, both booleans: :func:`schema_choices`),
    else (not for ids) the values its description quotes ("either 'no longer needed' or
    'ordered by mistake'")."""
    choices = schema_choices(schema)
    if choices:
        return choices
    if not is_key_argument(name, schema):
        return [value for value in _quoted(schema) if _fits(value, spec, name)]
    return []


_QUOTED = re.compile(r"(?<![A-Za-z0-9])'([^'\n]{2,40})'(?![A-Za-z0-9])")


def _quoted(schema: Mapping[str, Any]) -> list[str]:
    """The values an argument's description quotes, spaces allowed (``'no longer needed'``)."""
    return list(dict.fromkeys(_QUOTED.findall(str(schema.get("description") or ""))))


def _field_names(name: str) -> list[str]:
    """``name`` then its tails of two words or more: ``new_item_ids`` -> ``item_ids``."""
    parts = name.split("_")
    return [name] + ["_".join(parts[i:]) for i in range(1, len(parts) - 1)]


def _fed_values(spec: ToolSpec, known: Known, graph: nx.DiGraph, argument: str) -> list[Any]:
    """The values for ``argument`` in the latest earlier output that feeds it (a graph edge).

    The output's fields named like the argument when it has some; otherwise the values in
    it that fit (``ls`` lists the names ``rm`` takes as ``file_name``: the edge says so, not
    the names; for an id, only values that look like one).
    """
    for source, data in reversed(known.data):
        if not graph.has_edge(source, spec.name):
            continue
        if argument not in str(graph.edges[source, spec.name].get("arguments") or "").split(","):
            continue
        fields = user_pool(data, mostly_keyed_map)
        for field_name in _field_names(argument):
            found = fields.get(field_name) or fields.get(singular(field_name)) or []
            found = [value for value in found if _fits(value, spec, argument)]
            if found:
                return found
        return [
            value
            for value in _listed(data)
            if _fits(value, spec, argument)
            and (not is_key_like(argument) or is_int_id(value, argument) or is_specific(str(value)))
        ]
    return []


def _listed(data: Any) -> list[Any]:
    """The scalars of a flat output (a value, a list of them, or a dict of those), else nothing.

    A flat output is a listing (``ls``, a watchlist, a looked-up id), so what it holds is
    what can be passed on. A record with nested parts is not: a user whose order list is
    empty has no order to give, and the other values of their record are not orders.
    """
    found: dict[str, Any] = {}
    items = list(data.values()) if isinstance(data, Mapping) else [data]
    for item in items:
        for value in item if isinstance(item, (list, tuple)) else [item]:
            if isinstance(value, (Mapping, list, tuple)):
                return []
            if value is not None:
                found.setdefault(canonical_json(value), value)
    return list(found.values())


def _record_schema(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object schema (with properties) of an object argument or of an array's items."""
    if _is_array(schema):
        schema = schema.get("items") or {}
    for option in [schema, *(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]:
        if isinstance(option, Mapping) and option.get("properties"):
            return option
    return None


def _records(known: Known, name: str, record: Mapping[str, Any], array: bool) -> list[Any]:
    """Records already seen under the argument's name (a reservation's ``flights``), cut down
    to the properties the argument takes; those of the latest data that has any.

    Objects are never made up: an object argument is only ever a real record, as it was.
    """
    props = list(record.get("properties") or {})
    required = list(record.get("required") or props)
    names = set(_field_names(name)) | {singular(n) for n in _field_names(name)}

    def project(value: Any) -> dict[str, Any] | None:
        if isinstance(value, Mapping) and all(key in value for key in required):
            return {key: value[key] for key in props if key in value}
        return None

    for _, data in reversed(known.data):
        found: dict[str, Any] = {}

        def visit(value: Any, key: str | None) -> None:
            if isinstance(value, Mapping):
                for k, item in value.items():
                    visit(item, str(k))
            elif isinstance(value, (list, tuple)):
                if key in names and array and value:
                    items = [project(item) for item in value]
                    if all(item is not None for item in items):
                        found.setdefault(canonical_json(items), items)
                for item in value:
                    visit(item, key)
            if key in names and not array:
                item = project(value)
                if item is not None:
                    found.setdefault(canonical_json(item), item)

        visit(data, None)
        if found:
            return list(found.values())
    return []


__all__ = ["Known", "draw_arguments"]
