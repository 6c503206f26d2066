"""What a domain declares: its chain tools, their argument schemas, its optional graph hooks.

The graph reads tool specs in many places (required arguments, element types, example
values in descriptions); reading them one way keeps the evidence and the probes consistent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.values import is_key_like, singular


def chain_tools(domain: Domain) -> dict[str, ToolSpec]:
    """The graph's nodes: read and write tools ("other" tools such as ``think`` are left out)."""
    return {spec.name: spec for spec in domain.tools if spec.kind in (ToolKind.READ, ToolKind.WRITE)}


def domain_hook(domain: Domain, attribute: str) -> Any:
    """An optional attribute of the domain, or what it returns when it is a method."""
    value = getattr(domain, attribute, None)
    return value() if callable(value) else value


def properties(spec: ToolSpec) -> dict[str, Mapping[str, Any]]:
    return dict(spec.parameters.get("properties") or {})


def required_arguments(spec: ToolSpec) -> list[str]:
    """The required arguments, or all of them when the schema marks none required."""
    props = properties(spec)
    required = [name for name in spec.parameters.get("required") or [] if name in props]
    return required or list(props)


def nested_properties(schema: Mapping[str, Any]) -> list[str]:
    """Property names inside an object argument or an array-of-objects argument."""
    if schema.get("type") == "array" or "items" in schema:
        schema = schema.get("items") or {}
    names: list[str] = []
    candidates = [schema, *(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            names.extend(str(name) for name in (candidate.get("properties") or {}))
    return sorted(set(names))


def is_key_argument(name: str, schema: Mapping[str, Any]) -> bool:
    """An id-like argument, or an object/array argument holding ids (``flights[].flight_number``)."""
    return is_key_like(name) or any(is_key_like(p) for p in nested_properties(schema))


def arg_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def element_type(schema: Mapping[str, Any]) -> tuple[str | None, bool]:
    """``(type, is_array)``: an array argument's item type (default "string"), else its own."""
    kind = arg_type(schema)
    if kind == "array":
        return arg_type(schema.get("items") or {}) or "string", True
    return kind, False


def matches_type(value: Any, kind: str | None) -> bool:
    if kind in (None, "string"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return False


_DESCRIBED_ENUM = re.compile(r"\[Enum\]:\s*(\[[^\]]*\])")


def schema_choices(schema: Mapping[str, Any]) -> list[Any]:
    """The values an argument's schema itself offers, one element's for an array: its
    ``enum``, an ``[Enum]: [...]`` list its description gives (BFCL's function docs write
    them so), or both booleans. Empty when the schema leaves the value open."""
    kind, array = element_type(schema)
    element = (schema.get("items") or {}) if array else schema
    for source in (element, schema):
        if isinstance(source.get("enum"), list):
            return list(source["enum"])
    for source in (element, schema):
        found = _DESCRIBED_ENUM.search(str(source.get("description") or ""))
        if found:
            try:
                values = json.loads(found.group(1))
            except ValueError:
                continue
            return [v for v in values if matches_type(v, kind)] if isinstance(values, list) else []
    return [True, False] if kind == "boolean" else []


def description_examples(schema: Mapping[str, Any]) -> list[str]:
    """Example values quoted in an argument's description ("such as '#W0000000'")."""
    return re.findall(r"'([^'\s]{3,40})'", str(schema.get("description") or ""))


def mentions(spec: ToolSpec, argument: str) -> bool:
    """Whether a tool's name or description speaks of ``argument`` (``find_user_id_by_email``)."""
    base = singular(argument)
    text = f"{spec.name} {spec.description}".lower().replace("_", " ")
    return base.replace("_", " ") in text
