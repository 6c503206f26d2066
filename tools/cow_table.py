"""A copy-on-write table: many environments share one pristine set of records.

tau2 deep-copies its whole database per environment (0.1 s retail, 0.37 s airline) and
hashes the whole dump to compare two states. A :class:`CowTable` instead shares the pristine
records and copies a record into a private overlay the first time it is *looked up by key*,
so a fork costs O(1), holds only the records a conversation touched, and a diff or a state
comparison looks at those records only.

Records reached by *iterating* the table (``items()``, ``values()``) are the shared pristine
objects: read-only. The domains freeze their pristine data (:mod:`apigen_mt.tools.frozen`), so
a tool that changes such a record fails with an error naming it; a tool changes a record
after looking it up by key (``table[key]``), which is what real domain code does
(``_get_order(order_id)`` and friends).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_DELETED = object()


class CowTable(MutableMapping[str, V], Generic[V]):
    """A mutable mapping over a read-only base mapping, copying records on keyed access."""

    __slots__ = ("_base", "_overlay", "_copy")

    def __init__(
        self,
        base: Mapping[str, V],
        copy_record: Callable[[V], V] = copy.deepcopy,
        overlay: dict[str, Any] | None = None,
    ) -> None:
        self._base = base
        self._overlay: dict[str, Any] = {} if overlay is None else overlay
        self._copy = copy_record

    # -- keyed access copies ------------------------------------------------------------
    def __getitem__(self, key: str) -> V:
        if key in self._overlay:
            value = self._overlay[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        base_value = self._base[key]  # KeyError when absent, as a dict would
        value = self._overlay[key] = self._copy(base_value)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        self._overlay[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._overlay[key] = _DELETED

    def __contains__(self, key: object) -> bool:
        if key in self._overlay:
            return self._overlay[key] is not _DELETED
        return key in self._base

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    # -- iteration reads without copying ---------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        # Added keys are listed up front: a keyed read during iteration grows the overlay.
        added = [k for k, v in self._overlay.items() if k not in self._base and v is not _DELETED]
        for key in self._base:
            if self._overlay.get(key) is not _DELETED:
                yield key
        yield from added

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        for key in self:
            yield key, self.peek(key)

    def values(self) -> Iterator[V]:  # type: ignore[override]
        for key in self:
            yield self.peek(key)

    def peek(self, key: str) -> V:
        """The current value without copying it: for reading only."""
        return self._overlay[key] if key in self._overlay else self._base[key]

    # -- what the state machinery needs -----------------------------------------------------
    @property
    def base(self) -> Mapping[str, V]:
        return self._base

    def touched(self) -> Iterator[tuple[str, V | None, V | None]]:
        """``(key, pristine or None, current or None)`` for every key the overlay holds."""
        for key, value in self._overlay.items():
            yield key, self._base.get(key), (None if value is _DELETED else value)

    def fork(self) -> "CowTable[V]":
        """A new table over the same base with a deep copy of this overlay."""
        overlay = {
            key: (value if value is _DELETED else self._copy(value))
            for key, value in self._overlay.items()
        }
        return CowTable(self._base, self._copy, overlay)

    def __repr__(self) -> str:
        return f"CowTable({len(self._base)} pristine, {len(self._overlay)} touched)"
