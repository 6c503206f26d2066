"""Structural diffs and hashes of environment states (the paper's diff_patch).

A state is the pristine data plus the records an environment changed, so both the diff and
the hash are computed from :meth:`Environment.changed_records` alone: their cost grows with
what a conversation touched, not with the size of the database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from apigen_mt.domains.base import Environment, RecordChange

_MISSING = "<absent>"


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs: ``path`` like ``items[0].price``."""

    path: str
    before: Any
    after: Any

    def render(self) -> str:
        return f"{self.path}: {_short(self.before)} -> {_short(self.after)}"


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for hashing and equality."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """The leaves that differ between two JSON-able values, with their paths."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append(FieldChange(sub, _MISSING, after[key]))
            elif key not in after:
                out.append(FieldChange(sub, before[key], _MISSING))
            else:
                out.extend(field_changes(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for index, (b, a) in enumerate(zip(before, after)):
            out.extend(field_changes(b, a, f"{path}[{index}]"))
        return out
    if canonical_json(before) == canonical_json(after):
        return []
    return [FieldChange(path or "<value>", before, after)]


@dataclass(frozen=True)
class StateDiff:
    """The records an environment changed relative to the pristine state."""

    changes: tuple[RecordChange, ...]

    @classmethod
    def of(cls, env: Environment) -> "StateDiff":
        changes = [c for c in env.changed_records() if _differs(c.before, c.after)]
        changes.sort(key=lambda c: (c.table, c.key))
        return cls(tuple(changes))

    def __bool__(self) -> bool:
        return bool(self.changes)

    def final_values(self) -> dict[tuple[str, str], Any]:
        return {(c.table, c.key): c.after for c in self.changes}

    def to_json(self) -> list[dict[str, Any]]:
        """JSON form: one entry per record, with its field-level changes."""
        out = []
        for change in self.changes:
            entry: dict[str, Any] = {"table": change.table, "key": change.key}
            if change.before is None:
                entry["op"], entry["value"] = "added", change.after
            elif change.after is None:
                entry["op"], entry["value"] = "removed", change.before
            else:
                entry["op"] = "modified"
                entry["fields"] = [
                    {"path": f.path, "before": f.before, "after": f.after}
                    for f in field_changes(change.before, change.after)
                ]
            out.append(entry)
        return out

    def render(self, max_chars: int = 4000) -> str:
        """A compact text form for an LLM judge or a log line."""
        lines: list[str] = []
        for change in self.changes:
            name = f"{change.table}[{change.key!r}]"
            if change.before is None:
                lines.append(f"+ {name} = {_short(change.after, 400)}")
            elif change.after is None:
                lines.append(f"- {name}")
            else:
                for f in field_changes(change.before, change.after):
                    lines.append(f"~ {name}.{f.render()}")
        text = "\n".join(lines) if lines else "(no state change)"
        if len(text) > max_chars:
            text = text[: max_chars - 20].rstrip() + "\n... (truncated)"
        return text


def state_hash(env: Environment) -> str:
    """A hash that is equal for two environments of one domain iff their states are equal."""
    digest = hashlib.sha256()
    for (table, key), value in sorted(StateDiff.of(env).final_values().items()):
        digest.update(canonical_json([table, key, value]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def compare_states(expected: Environment, actual: Environment) -> list[str]:
    """Reasons two environments of one domain differ (empty when they are equal)."""
    want = {(c.table, c.key): c for c in StateDiff.of(expected).changes}
    got = {(c.table, c.key): c for c in StateDiff.of(actual).changes}
    reasons = []
    for table, key in sorted(set(want) | set(got)):
        name = f"{table}[{key!r}]"
        if (table, key) not in got:
            change = want[(table, key)]
            detail = "; ".join(f.render() for f in field_changes(change.before, change.after))
            reasons.append(f"{name} was expected to change but did not: {detail}")
        elif (table, key) not in want:
            change = got[(table, key)]
            detail = "; ".join(f.render() for f in field_changes(change.before, change.after))
            reasons.append(f"{name} changed but should not have: {detail}")
        elif canonical_json(want[(table, key)].after) != canonical_json(got[(table, key)].after):
            detail = "; ".join(
                f"{f.path}: expected {_short(f.before)}, got {_short(f.after)}"
                for f in field_changes(want[(table, key)].after, got[(table, key)].after)
            )
            reasons.append(f"{name} differs: {detail}")
    return reasons


def _differs(before: Any, after: Any) -> bool:
    return canonical_json(before) != canonical_json(after)


def _short(value: Any, limit: int = 120) -> str:
    text = value if value == _MISSING else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

