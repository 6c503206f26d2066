"""Format check: the blueprint has the required fields with the right shapes (and, where it
has them, a well-formed ``requestor`` per action, ``initial_state`` and ``assertions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REQUIRED = {"id": str, "domain": str, "instruction": str, "actions": list, "outputs": list}


def format_errors(raw: Any, domain_name: str | None = None) -> list[str]:
    """Every shape problem of a raw (parsed JSON) blueprint; empty when well-formed."""
    if not isinstance(raw, Mapping):
        return [f"a blueprint must be a JSON object, got {type(raw).__name__}"]
    errors = []
    for name, kind in REQUIRED.items():
        if name not in raw:
            errors.append(f"missing field {name!r}")
        elif not isinstance(raw[name], kind):
            errors.append(f"field {name!r} must be a {_kind(kind)}, got {type(raw[name]).__name__}")
    if isinstance(raw.get("instruction"), str) and not raw["instruction"].strip():
        errors.append("field 'instruction' is empty")
    if domain_name and isinstance(raw.get("domain"), str) and raw["domain"] != domain_name:
        errors.append(f"blueprint is for domain {raw['domain']!r} but is being validated against {domain_name!r}")
    for index, action in enumerate(raw.get("actions") or [] if isinstance(raw.get("actions"), list) else []):
        where = f"actions[{index}]"
        if not isinstance(action, Mapping):
            errors.append(f"{where} must be an object with 'name' and 'arguments', got {type(action).__name__}")
            continue
        if not isinstance(action.get("name"), str) or not action.get("name"):
            errors.append(f"{where}.name must be a non-empty string")
        if "arguments" in action and not isinstance(action["arguments"], Mapping):
            errors.append(f"{where}.arguments must be an object, got {type(action['arguments']).__name__}")
        if action.get("requestor") not in (None, "assistant", "user"):
            errors.append(f"{where}.requestor must be 'assistant' or 'user', got {action.get('requestor')!r:.40}")
    if raw.get("initial_state") is not None and not isinstance(raw["initial_state"], Mapping):
        errors.append(f"field 'initial_state' must be an object, got {type(raw['initial_state']).__name__}")
    assertions = raw.get("assertions")
    if assertions is not None and not isinstance(assertions, list):
        errors.append(f"field 'assertions' must be a list, got {type(assertions).__name__}")
    for index, assertion in enumerate(assertions if isinstance(assertions, list) else []):
        if not isinstance(assertion, Mapping) or not isinstance(assertion.get("func_name"), str):
            errors.append(f"assertions[{index}] must be an object with 'func_name' (and env_type, arguments, assert_value)")
    basis = raw.get("reward_basis")
    if basis is not None and (not isinstance(basis, list) or not set(basis) <= {"DB", "ENV_ASSERTION", "COMMUNICATE"}):
        errors.append(f"field 'reward_basis' must list some of DB, ENV_ASSERTION, COMMUNICATE, got {basis!r:.60}")
    if isinstance(raw.get("outputs"), list):
        for index, output in enumerate(raw["outputs"]):
            if not isinstance(output, str) or not output.strip():
                errors.append(f"outputs[{index}] must be a non-empty string, got {output!r:.40}")
    return errors


def _kind(kind: type) -> str:
    return {str: "string", list: "list", dict: "object"}.get(kind, kind.__name__)
