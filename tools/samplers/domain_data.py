"""Domain-data sampler: one real user's records, small enough for the context window.

A user is drawn from ``domain.user_ids()`` and ``domain.user_context(user_id)`` is trimmed
to ``max_chars`` of JSON. Trimming goes largest collection first (lists, and dicts keyed by
ids such as ``payment_methods``): its records are first reduced to stubs holding only their
id fields (``{"order_id": "#W1"}``), so the generator still knows they exist; then long
strings are shortened; then only the id skeleton of the whole record is kept; last, the
largest collections are cut. A ``_trimmed`` note says what was done. The result is plain
JSON data.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from apigen_mt.domains.base import Domain

_ID_KEY = re.compile(r"(^id$|_id$|_ids$|_number$|^name$|^email$)")


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _is_id_map(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, dict) for v in value.values())
        and any(not re.fullmatch(r"[A-Za-z_]+", str(k)) for k in value)
    )


def _collections(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """(path, container) for every list and id-keyed dict inside ``value``, depth first."""
    found = []
    if isinstance(value, list):
        found.append((path, value))
        for i, item in enumerate(value):
            found.extend(_collections(item, path + (i,)))
    elif isinstance(value, dict):
        if _is_id_map(value):
            found.append((path, value))
        for k, item in value.items():
            found.extend(_collections(item, path + (k,)))
    return found


def _stub(record: Any) -> Any:
    """A record reduced to its id fields, or None when it has none."""
    if not isinstance(record, dict):
        return None
    kept = {
        k: v
        for k, v in record.items()
        if _ID_KEY.search(str(k)) and v is not None and not isinstance(v, (dict, list))
    }
    return kept if kept and len(kept) < len(record) else None


def _path_text(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "$"


def trim_to_budget(data: Any, max_chars: int) -> Any:
    """A copy of ``data`` whose JSON is at most ``max_chars`` long (ids kept as long as possible)."""
    data = copy.deepcopy(data)
    if _size(data) <= max_chars:
        return data
    notes: dict[str, str] = {}
    target = max_chars - min(100, max_chars // 8)  # room for the _trimmed note
    # 1. records -> id stubs, largest collection first, from the end of each collection
    for path, container in sorted(_collections(data), key=lambda item: -_size(item[1])):
        keys = list(range(len(container))) if isinstance(container, list) else list(container)
        for key in reversed(keys):
            if _size(data) <= target:
                break
            stub = _stub(container[key])
            if stub is not None:
                container[key] = stub
                notes[_path_text(path)] = "records reduced to their ids"
        if _size(data) <= target:
            break
    # 2. long strings shortened
    limit = 200
    while _size(data) > target and limit >= 25:
        data = _shorten(data, limit)
        limit //= 2
    # 3. only the ids left, everywhere
    if _size(data) > target:
        data = _ids_only(data)
        notes["$"] = "only ids kept"
    # 4. the largest collections cut, one element at a time
    while _size(data) > target:
        candidates = [(p, c) for p, c in _collections(data) if len(c) > 1]
        if not candidates:
            break
        path, container = max(candidates, key=lambda item: _size(item[1]))
        if isinstance(container, list):
            container.pop()
        else:
            container.pop(list(container)[-1])
        notes[_path_text(path)] = "cut to fit the budget"
    if isinstance(data, dict) and notes and _size({**data, "_trimmed": notes}) <= max_chars:
        data["_trimmed"] = notes
    if _size(data) > max_chars:  # nothing sensible fits
        data = {}
    return data


def _ids_only(value: Any) -> Any:
    """The id skeleton of ``value``: id fields, id lists and the containers holding them."""
    if isinstance(value, list):
        kept = [_ids_only(v) for v in value]
        return [v for v in kept if v not in (None, {}, [])]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                inner = _ids_only(item)
                if inner not in (None, {}, []):
                    out[key] = inner
            elif _ID_KEY.search(str(key)) and item is not None:
                out[key] = item
        return out
    return value


def _shorten(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 3] + "..."
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


@dataclass
class DomainDataSample:
    user_id: str | None
    data: Any

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "data": self.data}


class DomainDataSampler:
    """Draws one user and their records, trimmed to a character budget."""

    def __init__(self, domain: Domain, *, max_chars: int = 6000) -> None:
        self.domain = domain
        self.max_chars = max_chars
        self._user_ids: list[str] | None = None

    @property
    def user_ids(self) -> list[str]:
        if self._user_ids is None:
            self._user_ids = sorted(self.domain.user_ids())
        return self._user_ids

    def sample(self, rng: random.Random, user_id: str | None = None) -> DomainDataSample:
        """One user's data (``user_id`` forces the user, e.g. for recombining their tasks)."""
        if user_id is None:
            if not self.user_ids:
                return DomainDataSample(None, {})
            user_id = rng.choice(self.user_ids)
        context = self.domain.user_context(user_id)
        return DomainDataSample(
            user_id, trim_to_budget(json.loads(json.dumps(context, default=str)), self.max_chars)
        )
