"""The value pool: real values a call can be given, from a user's records and earlier outputs.

Probing the read tools (:mod:`.observe`) and grounded walks (:mod:`apigen_mt.tools.grounded_walk`)
both need arguments that name entities that exist. They take them from one pool, keyed by
field name, that starts with what the user knows about themselves and grows with every
output, each value remembering where it came from ("user" or a tool's name) so that the
edges a value travelled along can be told apart.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from apigen_mt.domains.base import ToolSpec
from apigen_mt.tools.api_graph.specs import element_type, matches_type, properties
from apigen_mt.tools.api_graph.values import decode, field_aliases, is_keyed_map, singular, tool_noun
from apigen_mt.tools.state_diff import canonical_json

Pool = dict[str, list[tuple[Any, str]]]  # field name -> (value, where it came from: "user" or a tool)


def new_pool() -> Pool:
    """An empty pool."""
    return defaultdict(list)


def mostly_keyed_map(value: Mapping[str, Any]) -> bool:
    """A dict keyed by ids, judged by half its keys or more rather than by any one of them.

    :func:`~.values.is_keyed_map` takes ``{"address1": ..., "city": ...}`` for a map keyed by
    ids (``address1`` holds a digit) and so hides the address fields from the pool, which
    the graph's evidence does not mind but a walk that must change an address does.
    """
    if not value:
        return False
    odd = sum(1 for key in value if not _FIELD_NAME.fullmatch(str(key)))
    return odd * 2 >= len(value)


_FIELD_NAME = re.compile(r"[A-Za-z_]+")  # what values.is_keyed_map takes for a field name


def user_pool(
    context: Any, keyed: Callable[[Mapping[str, Any]], bool] = is_keyed_map, noun: str | None = None
) -> dict[str, list[Any]]:
    """Field name -> values, from a user's records (the values a user can tell the agent).

    ``keyed`` tells a dict keyed by ids (``payment_methods``) from a record with fields;
    ``noun``: what the records at the top are (:func:`~.values.tool_noun`), whose ``id`` is
    also a ``<noun>_id``.
    """
    pool: dict[str, list[Any]] = defaultdict(list)

    def add(name: str, value: Any) -> None:
        if value not in pool[name]:
            pool[name].append(value)

    def walk(value: Any, key: str | None, top: bool = False) -> None:
        if isinstance(value, Mapping):
            if keyed(value):
                for k, item in value.items():
                    if key:
                        add(f"{singular(key)}_id", str(k))
                        if key.endswith("_list"):  # BFCL's credit_card_list is keyed by card ids
                            add(f"{singular(key[: -len('_list')])}_id", str(k))
                    walk(item, None)
            else:
                for k, item in value.items():
                    for alias in field_aliases(str(k), key or (noun if top else None)):
                        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                            add(alias, item)
                    walk(item, str(k))
        elif isinstance(value, (list, tuple)):
            for item in value:
                if key and isinstance(item, (str, int)) and not isinstance(item, bool):
                    add(key, item)
                    add(f"{singular(key)}_id", item)
                    if key.endswith("_list"):  # BFCL's user_list holds users
                        add(key[: -len("_list")], item)
                walk(item, key, top and key is None)

    walk(decode(context), None, True)
    return pool


def grow_pool(
    pool: Pool, data: Any, source: str, keyed: Callable[[Mapping[str, Any]], bool] = is_keyed_map
) -> None:
    """Add the values found in ``data`` to ``pool``, noting ``source`` as where they came from
    (a tool's name also says what its records are: :func:`~.values.tool_noun`)."""
    for name, values in user_pool(data, keyed, None if source == "user" else tool_noun(source)).items():
        entries = pool.setdefault(name, [])
        known = {canonical_json(v) for v, _ in entries}
        for value in values:
            if canonical_json(value) not in known:
                entries.append((value, source))


def pooled_values(pool: Pool, name: str) -> list[tuple[Any, str]]:
    """The pool's values for an argument, under its own name or its singular, else under the
    one longer name that ends in it (``card_id`` <- ``credit_card_id``, ``first_name`` <-
    ``user_first_name``)."""
    found = pool.get(name) or pool.get(singular(name))
    if found or "_" not in name:
        return found or []
    longer = [field for field, values in pool.items() if values and field.endswith("_" + name)]
    return pool[longer[0]] if len(longer) == 1 else []


def argument_candidates(
    spec: ToolSpec, pool: Pool, name: str, field: str | None = None
) -> list[tuple[Any, str]]:
    """The pooled ``(value, source)`` pairs that fit argument ``name`` of ``spec`` (type and enum).

    ``field`` looks the values up under another name (``item_ids`` for ``new_item_ids``).
    """
    schema = properties(spec).get(name, {})
    kind, _ = element_type(schema)
    return [
        (value, source)
        for value, source in pooled_values(pool, field or name)
        if matches_type(value, kind) and ("enum" not in schema or value in schema["enum"])
    ]


def fill_arguments(
    spec: ToolSpec,
    pool: Pool,
    prefer: tuple[str, str] | None = None,
    *,
    rng: random.Random | None = None,
    stated: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Required arguments for ``spec`` from ``pool`` and where each came from; None when one is missing.

    ``prefer=(argument, source)`` takes that argument's value from that source. Each value is
    the first fitting candidate, or, with ``rng``, one drawn at random among them (so that
    repeated calls do not always name the same entity). ``stated``: a request a user may make
    of the tool (``Domain.stated_arguments``), whose values fill what the pool does not (its
    optional arguments too), with ``"user"`` as their source, as a walk takes them.
    """
    props = properties(spec)
    arguments: dict[str, Any] = {}
    sources: dict[str, str] = {}
    stated = stated or {}
    for name in spec.parameters.get("required") or []:
        _, array = element_type(props.get(name, {}))
        candidates = argument_candidates(spec, pool, name)
        if prefer is not None and prefer[0] == name:
            candidates = [c for c in candidates if c[1] == prefer[1]]
        if not candidates and name in stated:
            arguments[name], sources[name] = stated[name], "user"
            continue
        if not candidates:
            return None
        value, source = candidates[rng.randrange(len(candidates))] if rng is not None else candidates[0]
        arguments[name] = [value] if array else value
        sources[name] = source
    for name, value in stated.items():
        if name in props and name not in arguments:
            arguments[name], sources[name] = value, "user"
    return arguments, sources
