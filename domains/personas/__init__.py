"""Persona sets: who a simulated user is and how they talk (the persona sampler's pool).

Each set is a JSON file in this folder, ``<name>.json``: a list of objects with non-empty
string fields ``id`` (unique in the set), ``description`` and ``style`` (extra fields are
ignored). ``{"personas": [...]}`` is accepted too. A domain names its set with
``persona_set``; :func:`load_personas` reads and validates it, once per process.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from apigen_mt.domains.base import DomainError, Persona

PERSONA_DIR = Path(__file__).parent
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FIELDS = ("id", "description", "style")


def available_sets() -> list[str]:
    """Names of the persona sets shipped in this folder."""
    return sorted(path.stem for path in PERSONA_DIR.glob("*.json"))


def load_personas(name: str) -> list[Persona]:
    """The personas of set ``name`` (``domains/personas/<name>.json``), or a path to a JSON file.

    Raises :class:`DomainError` saying what is wrong when the file is missing, is not JSON,
    or an entry lacks a field.
    """
    return list(_load(str(name)))


@functools.cache
def _load(name: str) -> tuple[Persona, ...]:
    path = _resolve(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DomainError(f"cannot read persona set {name!r} ({path}): {error}") from error
    except ValueError as error:
        raise DomainError(f"persona set {name!r} ({path}) is not valid JSON: {error}") from error
    return tuple(parse_personas(data, source=str(path)))


def _resolve(name: str) -> Path:
    if name.endswith(".json") or "/" in name or "\\" in name:
        path = Path(name)
    elif _NAME.fullmatch(name):
        path = PERSONA_DIR / f"{name}.json"
    else:
        raise DomainError(f"invalid persona set name {name!r}: use a file stem such as 'retail'")
    if not path.is_file():
        known = ", ".join(available_sets()) or "none"
        raise DomainError(
            f"persona set {name!r} not found (looked for {path}). Known sets: {known}. "
            "Add <name>.json (a list of {id, description, style}) to domains/personas/"
        )
    return path


def parse_personas(data: Any, source: str = "personas") -> list[Persona]:
    """Validate already-loaded JSON data and build the personas."""
    if isinstance(data, dict) and "personas" in data:
        data = data["personas"]
    if not isinstance(data, list) or not data:
        raise DomainError(f"{source}: expected a non-empty JSON list of personas, got {type(data).__name__}")
    personas: list[Persona] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise DomainError(f"{source}: persona #{index} must be an object, got {type(entry).__name__}")
        missing = [f for f in _FIELDS if not isinstance(entry.get(f), str) or not entry[f].strip()]
        if missing:
            raise DomainError(
                f"{source}: persona #{index} ({entry.get('id', 'no id')!r}) lacks a non-empty string "
                f"for {', '.join(missing)}"
            )
        if entry["id"] in seen:
            raise DomainError(f"{source}: persona id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        personas.append(
            Persona(
                id=entry["id"].strip(), description=entry["description"].strip(), style=entry["style"].strip()
            )
        )
    return personas


def clear_cache() -> None:
    """Forget loaded sets (after editing a file at run time, and in tests)."""
    _load.cache_clear()


__all__ = ["PERSONA_DIR", "available_sets", "clear_cache", "load_personas", "parse_personas"]
