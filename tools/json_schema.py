"""The JSON-schema subset tool specs use: checking a call's arguments, inlining ``$ref``s.

Domain code is ordinary Python and would often accept a wrong type silently (an int where
an id string belongs just finds no record) or crash deep inside. Checking names and types
up front turns LLM mistakes into messages that say exactly what to fix.

Only the JSON-schema subset tool specs use is understood (type, properties, required,
items, enum, anyOf/oneOf, additionalProperties), plus the type aliases BFCL's function
docs use ("dict", "float", "tuple", "any").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TYPE_ALIASES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "bool": "boolean", "str": "string"}


def _matches_type(value: Any, type_name: str) -> bool:
    type_name = TYPE_ALIASES.get(type_name, type_name)
    if type_name == "any":
        return True
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer()
        )
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "array":
        return isinstance(value, (list, tuple))
    if type_name == "object":
        return isinstance(value, Mapping)
    if type_name == "null":
        return value is None
    return True  # an unknown type name in a schema is the schema's problem, not the call's


def _json_type(value: Any) -> str:
    for name, kinds in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", (list, tuple)), ("object", Mapping)):
        if isinstance(value, kinds):
            return name
    return type(value).__name__


def schema_errors(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    """Every way ``value`` breaks ``schema``; ``path`` names the value in messages."""
    if not isinstance(schema, Mapping) or not schema:
        return []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = schema[key]
            if any(not schema_errors(value, option, path) for option in options):
                return []
            kinds = [o.get("type", "?") for o in options if isinstance(o, Mapping)]
            return [f"{path} must be one of types {kinds}, got {_json_type(value)} {value!r:.60}"]
    errors: list[str] = []
    declared = schema.get("type")
    if declared is not None:
        names = declared if isinstance(declared, list) else [declared]
        if not any(_matches_type(value, n) for n in names):
            want = " or ".join(TYPE_ALIASES.get(n, n) for n in names)
            return [f"{path} must be {want}, got {_json_type(value)} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path} must be one of {list(schema['enum'])}, got {value!r:.60}")
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            errors.extend(schema_errors(item, schema["items"], f"{path}[{index}]"))
    if isinstance(value, Mapping) and ("properties" in schema or "required" in schema):
        errors.extend(object_errors(value, schema, path))
    return errors


def object_errors(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    properties = schema.get("properties") or {}
    errors = [
        f"missing required argument {path + '.' if path else ''}{name!s}"
        for name in schema.get("required") or []
        if name not in value
    ]
    for name, item in value.items():
        where = f"{path}.{name}" if path else str(name)
        if name in properties:
            errors.extend(schema_errors(item, properties[name], where))
        elif "properties" in schema and not schema.get("additionalProperties", False):
            expected = f"expected one of: {', '.join(properties)}" if properties else "it takes no arguments"
            errors.append(f"unexpected argument {where!s} ({expected})")
    return errors


def argument_errors(arguments: Any, parameters: Mapping[str, Any]) -> list[str]:
    """Problems with a call's arguments object; empty when it fits the tool's schema."""
    if not isinstance(arguments, Mapping):
        return [f"arguments must be an object of named arguments, got {_json_type(arguments)}"]
    return object_errors(arguments, parameters, "")


def inline_refs(schema: Any, defs: Mapping[str, Any] | None = None) -> Any:
    """A copy of ``schema`` with every local ``$ref`` replaced by its definition.

    pydantic emits ``$defs``/``$ref`` for nested models; LLM endpoints, constrained decoders
    and the checker above all handle self-contained schemas better.
    """
    if defs is None and isinstance(schema, Mapping):
        defs = schema.get("$defs") or schema.get("definitions") or {}
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target = defs.get(ref.rsplit("/", 1)[-1], {})
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return inline_refs(merged, defs)
        return {
            key: inline_refs(value, defs)
            for key, value in schema.items()
            if key not in ("$defs", "definitions")
        }
    if isinstance(schema, list):
        return [inline_refs(item, defs) for item in schema]
    return schema


def coerce_integers(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with integral floats (``6.0``) turned into ints where the schema says integer.

    The checker accepts ``6.0`` for an integer, as JSON does; domain code would store the
    float and a later state comparison would see ``6.0 != 6``.
    """
    if not isinstance(schema, Mapping):
        return value
    declared = schema.get("type")
    names = declared if isinstance(declared, list) else [declared]
    if isinstance(value, float) and value.is_integer() and any(TYPE_ALIASES.get(n, n) == "integer" for n in names if n):
        return int(value)
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        return {k: coerce_integers(v, properties.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_integers(item, schema.get("items") or {}) for item in value]
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or []:
            if not schema_errors(value, option, ""):
                return coerce_integers(value, option)
    return value
