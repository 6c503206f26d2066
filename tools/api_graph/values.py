"""What counts as an identifier, in names and in values.

Edges are found by tracing ids through outputs, so every module of the graph needs the same
idea of an id-like name (``order_id``), a value worth tracing (``#W0001``, not ``pending``)
and the aliases a field goes by (``payment_methods.*.id`` is a ``payment_method_id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

_KEY_SUFFIXES = ("_id", "_ids", "_number", "_numbers", "_code", "_codes")


def singular(name: str) -> str:
    """``item_ids`` -> ``item_id``, ``flights`` -> ``flight``, ``address`` stays."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 2:
        return name[:-1]
    return name


def is_key_like(name: str) -> bool:
    """Whether an argument or field name names an identifier (``order_id``, ``flight_number``)."""
    return (
        name == "id"
        or name.endswith(_KEY_SUFFIXES)
        or name.endswith("id")
        and "_" not in name
        and len(name) > 2
    )


def shape(value: str) -> str:
    """A regular expression for values that look like ``value`` (``#W0001`` -> ``\\#[A-Z]\\d{4}``)."""
    parts = []
    for run in re.findall(r"\d+|[A-Z]+|[a-z]+|[^A-Za-z0-9]", value):
        if run.isdigit():
            parts.append(rf"\d{{{len(run)}}}")
        elif run.isupper():
            parts.append(f"[A-Z]{{{len(run)}}}")
        elif run.islower():
            parts.append("[a-z]+")
        else:
            parts.append(re.escape(run))
    return "".join(parts)


def _is_identifier(key: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)) and not any(ch.isdigit() for ch in key)


def is_specific(value: str) -> bool:
    """A value worth tracing through outputs: an id or a code, not a common word."""
    if len(value) < 3 or len(value) > 80:
        return False
    if any(ch.isdigit() for ch in value) or "#" in value or "_" in value:
        return True
    return value.isupper() and value.isalpha() and len(value) <= 6  # codes such as JFK


def is_int_id(value: Any, key: str | None) -> bool:
    """An integer that is an id (``order_id: 12345``): traced like id strings."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and bool(key)
        and is_key_like(key)
        and abs(value) >= 100
    )


def leaf_values(value: Any, key: str | None = None) -> Iterator[str]:
    """Specific string values (and integer ids) anywhere inside an argument value."""
    if isinstance(value, Mapping):
        for k, item in value.items():
            yield from leaf_values(item, str(k))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaf_values(item, key)
    elif isinstance(value, str) and is_specific(value):
        yield value
    elif is_int_id(value, key):
        yield str(value)


def is_keyed_map(value: Mapping[str, Any]) -> bool:
    """A dict keyed by ids or names rather than by field names (``{"credit_card_1": {...}}``)."""
    return bool(value) and any(not _is_identifier(str(k)) for k in value)


def names_in(value: Any) -> list[str]:
    """The names of a comma-separated node or edge attribute (``"user_id,order_id"``)."""
    return [part for part in str(value or "").split(",") if part]


def tool_noun(tool: str) -> str | None:
    """What a snake_case tool's name says it returns: ``create_ticket`` -> ``ticket``,
    ``get_user_tickets`` -> ``ticket``; None for one word (``ls``) or camelCase. A record's
    bare ``id`` in that tool's output is then also a ``ticket_id``."""
    words = tool.split("_")
    return singular(words[-1]) if len(words) > 1 and words[-1].isalpha() and words[-1].islower() else None


def field_aliases(key: str, parent: str | None) -> set[str]:
    """The names a field answers to: ``id`` inside ``orders`` is also an ``order_id``."""
    names = {key}
    if key == "id" and parent:
        names.add(f"{singular(parent)}_id")
    return names


def decode(value: Any) -> Any:
    """Observations that are JSON text (``list_all_product_types``) as data."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

