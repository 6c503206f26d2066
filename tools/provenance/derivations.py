"""Documented derivations: values an assistant computes from obtainable ones.

* **sums and differences**: a number equal to ``a + b`` or ``a - b`` of two obtainable
  numbers of one field (two prices: a refund of two items; two balances) or of a number the
  user said and any obtainable one (a balance after a $100 payment); the total of one numeric
  field over the items of a returned list counts too (:class:`~.knowledge.Knowledge`);
* **a count times a known number**: a whole number the user said (up to ``MAX_COUNT``) times
  an obtainable one ("fund it with 10 shares' worth": 10 x the share price);
* **arithmetic expressions**: a string of numbers and operators (what a ``calculate`` tool
  takes) is obtainable when every number in it is;
* **dates relative to today**: with the domain's ``today``, the date ``today + n`` days for an
  ``n`` the user said (``"in 3 days"``), ``tomorrow``, ``yesterday``, and today itself;
* **the day before or after an obtainable date**, when the user says so (``"the day after"``,
  ``"the next day"``, ``"the day before"``).

Each is unit-tested with a passing and a failing case. A derivation is only ever a reason to
accept a value the rules cannot otherwise place; it never rejects one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

__all__ = ["derived_amount", "derived_date", "derived_number", "expression_numbers", "neighbour_days"]

MAX_COUNT = 1000
"""The largest said count a known number is multiplied by (10 shares, 3 passengers)."""
MAX_OPERANDS = 400
"""Numbers considered for pairwise sums and differences (bounded: quadratic)."""


def derived_number(value: float, known: Iterable[float], *, first: Iterable[float] | None = None) -> str | None:
    """How ``value`` is a sum or difference of two ``known`` numbers (the first of them one of
    ``first``, when given), or None."""
    numbers = sorted(set(known))[:MAX_OPERANDS]
    present = {round(n, 2) for n in numbers}
    target = round(value, 2)
    for a in numbers if first is None else sorted(set(first)):
        if round(a, 2) == target:
            continue
        rest = round(target - a, 2)  # a + rest == target
        if rest in present and rest != target:
            return f"the sum of {_num(a)} and {_num(rest)}"
        rest = round(a - target, 2)  # a - rest == target
        if rest in present and rest != target:
            return f"the difference of {_num(a)} and {_num(rest)}"
    return None


def derived_amount(value: float, by_field: Mapping[str | None, Iterable[float]], said: Iterable[float]) -> str | None:
    """How ``value`` is a sum or difference of two numbers of one field (two prices, two
    balances) or of a said number and any known one; None if it is not. Not of any two
    numbers: with a few hundred returned (seat counts, prices, ids), some pair adds up to
    almost any amount."""
    for name, numbers in by_field.items():
        found = derived_number(value, numbers)
        if found is not None:
            return f"{found} ({name})" if name else found
    said = set(said)
    if not said:
        return None
    known = {n for numbers in by_field.values() for n in numbers}
    found = derived_number(value, known | said, first=said)
    if found is not None:
        return found
    target = round(value, 2)
    for count in sorted(n for n in said if n == int(n) and 1 < n <= MAX_COUNT):
        for number in sorted(known):
            if round(count * number, 2) == target:  # 10 shares at 220.34
                return f"{_num(count)} x {_num(number)}"
    return None


def _num(value: float) -> str:
    return f"{value:g}"


_EXPRESSION = re.compile(r"[\d\s.+\-*/()]+")
_OPERATOR = re.compile(r"[+*/()]|\s-\s")  # not a bare "-": dates (1960-11-26) and codes have those


def expression_numbers(value: Any) -> list[str] | None:
    """The numbers of an arithmetic expression (``"2 * (350 - 122)"``), or None for other values."""
    if not isinstance(value, str) or not _EXPRESSION.fullmatch(value) or not _OPERATOR.search(value):
        return None
    return re.findall(r"\d+(?:\.\d+)?", value)


_NEIGHBOUR = {1: re.compile(r"\b(?:day after|next day|following day)\b"), -1: re.compile(r"\bday before\b")}


def neighbour_days(known_dates: Iterable[str], text: str) -> dict[str, str]:
    """ISO date -> how it follows from a known date, for the day before or after that the
    user's words (``text``, normalised) speak of."""
    found: dict[str, str] = {}
    for offset, pattern in _NEIGHBOUR.items():
        if not pattern.search(text):
            continue
        for known in known_dates:
            try:
                day = date.fromisoformat(known[:10]) + timedelta(days=offset)
            except ValueError:
                continue
            found.setdefault(day.isoformat(), f"the day {'after' if offset > 0 else 'before'} {known[:10]}")
    return found


_RELATIVE = {"today": 0, "tomorrow": 1, "yesterday": -1}
_IN_DAYS = re.compile(r"\b(\d{1,3})\s+days?\b")


def derived_date(value: Any, today: date | None, text: str) -> str | None:
    """How the ISO date ``value`` follows from ``today`` and what ``text`` (the user's words,
    normalised) says, or None."""
    if today is None or not isinstance(value, str):
        return None
    try:
        wanted = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
    offset = (wanted - today).days
    for word, days in _RELATIVE.items():
        if days == offset and re.search(rf"\b{word}\b", text):
            return f"{word} ({today.isoformat()} {'+' if days >= 0 else '-'} {abs(days)} days)"
    if offset == 0:
        return f"today ({today.isoformat()})"
    for match in _IN_DAYS.finditer(text):
        if int(match.group(1)) == abs(offset):
            return f"{abs(offset)} days {'after' if offset > 0 else 'before'} today ({today.isoformat()})"
    return None
