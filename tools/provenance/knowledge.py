"""What an assistant has learnt from tool results: every value they returned, with where.

:class:`Knowledge` takes each observation (JSON data or text) and remembers its leaves: the
strings (case-folded), the numbers, the dictionary keys (tau2 keys payment methods by id), the
tokens of longer texts (an id inside a sentence), and, for the read-tool closure, which field
each value sat in. :meth:`Knowledge.source` answers where a value came from, or None; numbers
also count when they are a documented derivation of known ones (:mod:`.derivations`): two
numbers of one field, or a said number and a known one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.tools.provenance.derivations import derived_amount
from apigen_mt.tools.provenance.said import as_number, normal_text

__all__ = ["Knowledge", "leaves"]

_TOKEN = re.compile(r"[#@\w][\w.@#:/+-]*\w|\w")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def leaves(value: Any, key: str | None = None, *, top: bool = False) -> Iterator[tuple[str | None, Any]]:
    """``(field name, leaf)`` of a JSON value; list items keep the list's field name, and the
    keys of a dictionary are leaves too (under the dictionary's field name; ``top``: the keys
    of the outermost one are field names, not values, and come with no field)."""
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(name, str):
                yield (None if top else key), name
            yield from leaves(item, name if isinstance(name, str) else key)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item, key)
    else:
        yield key, value


@dataclass
class Knowledge:
    """Values returned by the calls so far (and by closure lookups), with their sources."""

    strings: dict[str, str] = field(default_factory=dict)
    """Case-folded string value -> where it was returned first."""
    numbers: dict[float, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    """Tokens of longer string values (an id mentioned in a sentence)."""
    by_field: dict[str, dict[Any, None]] = field(default_factory=dict)
    """Field name -> the raw values seen in it, in order (for filling a read tool's arguments)."""
    sums: dict[float, str] = field(default_factory=dict)
    """Totals of one numeric field over the items of a returned list (an order's prices)."""
    numbers_by_field: dict[str | None, set[float]] = field(default_factory=dict)
    """Field name -> the numbers returned in it (derivations pair numbers of one field)."""
    counts: dict[float, str] = field(default_factory=dict)
    """Lengths of returned lists and dictionaries."""
    _returned: set[str] = field(default_factory=set, repr=False)
    _own_totals: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    _seen: set[tuple[Any, type, Any]] = field(default_factory=set, repr=False)
    _amounts_total: float = field(default=0.0, repr=False)

    def returned(self, value: Any) -> bool:
        """Whether ``value`` itself was returned in some field (what a lookup may take)."""
        return repr(value) in self._returned

    def add(self, observation: Any, source: str, tool: str | None = None) -> None:
        """Learn what ``observation`` holds; a bare value (``"yusuf_rossi_9620"``) sits in the
        field named after the ``tool`` that returned it (``find_user_id_by_email``)."""
        if isinstance(observation, str):
            parsed = _maybe_json(observation)
            if parsed is not None:
                observation = parsed
        self._totals(observation, source)
        self._field_numbers(observation, tool)
        seen = self._seen
        for key, leaf in leaves(observation, tool, top=True):
            if leaf is None or isinstance(leaf, bool):
                continue
            marker = (key, leaf.__class__, leaf)  # a field name in every record, a repeated value: once
            if marker in seen:
                continue
            seen.add(marker)
            if key is not None:
                values = self.by_field.setdefault(key, {})
                if leaf not in values:
                    values[leaf] = None
                    self._returned.add(repr(leaf))
            number = as_number(leaf)
            if number is not None:
                self.numbers.setdefault(number, source)
            if isinstance(leaf, str):
                text = normal_text(leaf)
                self.strings.setdefault(text, source)
                if " " in text or len(text) > 40:
                    for token in _TOKEN.findall(text):
                        self.tokens.setdefault(token, source)

    def _field_numbers(self, value: Any, field: str | None) -> None:
        """Numbers by the field they sit in, named with the record field around them
        (``prices.economy``, not ``economy``: ``available_seats.economy`` is a seat count). A
        list, or a map of records keyed by id (``payment_methods: {id: {...}}``), passes its
        own name on to its items."""
        if isinstance(value, dict):
            records = bool(value) and all(isinstance(item, dict) and any(ch.isdigit() for ch in str(key))
                                          for key, item in value.items())  # keyed by ids (or dates)
            for key, item in value.items():
                if records:
                    self._field_numbers(item, field)
                elif isinstance(item, (dict, list)):
                    self._field_numbers(item, str(key))
                else:
                    number = as_number(item) if not isinstance(item, str) or item[:1].isdigit() else None
                    if number is not None:
                        name = f"{field}.{key}" if field else str(key)
                        self.numbers_by_field.setdefault(name, set()).add(number)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._field_numbers(item, field)
        else:
            number = as_number(value)
            if number is not None:
                self.numbers_by_field.setdefault(field, set()).add(number)

    def add_own(self, arguments: Any, source: str) -> None:
        """Learn an action's own arguments: its values, and per identifier the running total of
        each number paid with it over the actions so far (``credit_card_2198526`` charged 44,
        then 621 and 621: 1286, what the assistant says it charged in all)."""
        self.add(arguments, source)
        for record in _records(arguments):
            ids = [v for v in record.values() if isinstance(v, str) and v]
            for name, number in ((k, as_number(v)) for k, v in record.items() if not isinstance(v, bool)):
                if number is None or isinstance(record[name], str):
                    continue
                for ident in ids:
                    total = self._own_totals[(ident, name)] = self._own_totals.get((ident, name), 0.0) + number
                    self.sums.setdefault(round(total, 2), f"the total of {name} with {ident} over the actions so far")

    def add_amounts(self, amounts: Mapping[float, str], source: str) -> None:
        """Learn what a write costs or refunds (``Domain.derived_amounts``), and the running
        total over the writes so far (what five downgrades save in all)."""
        if not amounts:
            return
        self.add({"derived amount": list(amounts)}, source)
        self._amounts_total += next(iter(amounts))
        self.sums.setdefault(round(self._amounts_total, 2), "the total of what the actions cost or refund so far")

    def _totals(self, value: Any, source: str) -> None:
        if isinstance(value, dict):
            self.counts.setdefault(float(len(value)), f"{source} (a count)")
            for item in value.values():
                self._totals(item, source)
        elif isinstance(value, list):
            self.counts.setdefault(float(len(value)), f"{source} (a count)")
            records = [item for item in value if isinstance(item, dict)]
            for name in {k for record in records for k, v in record.items() if as_number(v) is not None}:
                total = sum(as_number(r.get(name)) or 0.0 for r in records)
                self.sums.setdefault(round(total, 2), f"{source} (the total of {name})")
            for item in value:
                self._totals(item, source)

    def source(self, value: Any, *, extra_numbers: Any = (), derive: bool = True) -> str | None:
        """Where ``value`` was returned, or (``derive``: an amount, not an id or a zip code in a
        string) how it derives from returned and ``extra_numbers`` (e.g. said) numbers; None
        when it is not known."""
        number = as_number(value)
        if number is not None:
            if number in self.numbers:
                return self.numbers[number]
            if derive and round(number, 2) in self.sums:
                return self.sums[round(number, 2)]
            derivation = derived_amount(number, self.numbers_by_field, extra_numbers) if derive else None
            if derivation is not None:
                return derivation
        if isinstance(value, str):
            text = normal_text(value)
            return self.strings.get(text) or self.tokens.get(text)
        return None

    def dates(self) -> list[str]:
        """The ISO dates returned so far."""
        return [text for text in self.strings if _ISO_DATE.fullmatch(text[:10]) and len(text) in (10, 19)]

    def count_source(self, value: Any) -> str | None:
        """Where ``value`` is the length of a returned list (for expected outputs, which may be counts)."""
        number = as_number(value)
        return self.counts.get(number) if number is not None else None


def _records(value: Any) -> Iterator[dict[str, Any]]:
    """Every dictionary inside a JSON value (a payment ``{"payment_id", "amount"}``)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _records(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _records(item)


def _maybe_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    import json

    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None
