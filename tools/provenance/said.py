"""What a text says: the values a user's words give an assistant, found by normalisation rules.

A value is said in a text when, after normalisation, it appears there as a whole token
sequence. The rules (each unit-tested with a passing and a failing case):

* **case and whitespace**: ``"Yusuf  ROSSI"`` says ``"yusuf rossi"``; but a short code in
  capitals (``NY``, ``JFK``) must be written so, not read into a word (``in``, ``or``);
* **an id's leading ``#``** is optional: ``"order W123"`` says ``"#W123"``;
* **names split over words**: a value of two to four alphabetic words is said when every word is, in
  any order (``"Rossi, Yusuf"`` says ``"Yusuf Rossi"``);
* **number formats**: ``"$1,000.50"``, ``"1000.5"`` and ``1000.5`` are one number; so are the
  words ``zero`` to ``twenty`` (``"two passengers"`` says ``2``);
* **date formats**: ISO ``2024-05-15`` is said by ``"May 15"``, ``"15 May 2024"``, ``"May 15th,
  2024"``, ``"5/15/2024"`` or ``"2024-05-15"`` (a date without a year matches any year);
* **US states**: a state's two-letter code is said by its name (``"New York"`` says ``"NY"``)
  and the other way round.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

__all__ = ["Said", "as_number", "normal_text"]

_WS = re.compile(r"\s+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?(?![\w])")
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_MONTHS = {
    name: number
    for number, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")],
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_PATTERNS = (
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), ("y", "m", "d")),
    (re.compile(rf"\b({_MONTH})\.?\s+{_DAY}(?:,?\s+(\d{{4}}))?\b"), ("M", "d", "y")),
    (re.compile(rf"\b{_DAY}\s+(?:day\s+)?(?:of\s+)?({_MONTH})\.?(?:,?\s+(?:in\s+)?(\d{{4}}))?\b"), ("d", "M", "y")),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b"), ("m", "d", "y")),
)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_STARTS = set("0123456789$+- ")
_STATES = dict(pair.replace("_", " ").split(":") for pair in (
    "al:alabama ak:alaska az:arizona ar:arkansas ca:california co:colorado ct:connecticut de:delaware "
    "fl:florida ga:georgia hi:hawaii id:idaho il:illinois in:indiana ia:iowa ks:kansas ky:kentucky "
    "la:louisiana me:maine md:maryland ma:massachusetts mi:michigan mn:minnesota ms:mississippi "
    "mo:missouri mt:montana ne:nebraska nv:nevada nh:new_hampshire nj:new_jersey nm:new_mexico ny:new_york "
    "nc:north_carolina nd:north_dakota oh:ohio ok:oklahoma or:oregon pa:pennsylvania ri:rhode_island "
    "sc:south_carolina sd:south_dakota tn:tennessee tx:texas ut:utah vt:vermont va:virginia wa:washington "
    "wv:west_virginia wi:wisconsin wy:wyoming dc:district_of_columbia"
).split())
_STATE_CODES = {name: code for code, name in _STATES.items()}


def normal_text(value: Any) -> str:
    """Case-folded, whitespace collapsed."""
    return _WS.sub(" ", str(value)).strip().casefold()


def as_number(value: Any) -> float | None:
    """``value`` as a number: ints and floats, numeric strings with ``$`` and thousands commas."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond any float: not an amount
            return None
    if isinstance(value, str) and value[:1] in _NUMBER_STARTS:
        text = value.strip().replace(",", "").removeprefix("$").removeprefix("+")
        if _PLAIN_NUMBER.fullmatch(text):
            return float(text)
    return None


@lru_cache(maxsize=4096)
def _bounded(needle: str) -> re.Pattern[str]:
    """``needle`` as a whole token sequence (no letter or digit glued on either side)."""
    return re.compile(rf"(?<![0-9a-z]){re.escape(needle)}(?![0-9a-z])")


class Said:
    """The values one text (an instruction, a user's turns) gives."""

    def __init__(self, text: str) -> None:
        self.raw = str(text)
        self.text = normal_text(text)

    @cached_property
    def words(self) -> list[str]:
        """The text's words as written (names keep their capitals), each once, in order."""
        return list(dict.fromkeys(re.findall(r"[\w.@#+-]*\w", self.raw)))

    @cached_property
    def numbers(self) -> set[float]:
        found = {float(m.group().replace(",", "").replace("$", "")) for m in _NUMBER.finditer(self.text)}
        found |= {float(v) for word, v in _NUMBER_WORDS.items() if _bounded(word).search(self.text)}
        return found

    def iso_dates(self, year: int | None) -> list[str]:
        """The dates the text names, as ISO strings (``year`` for those said without one)."""
        found = []
        for y, m, d in sorted(self.dates, key=lambda item: (item[0] or 0, item[1], item[2])):
            if y or year:
                found.append(date(y or year, m, d).isoformat())
        return found

    @cached_property
    def dates(self) -> set[tuple[int | None, int, int]]:
        """``(year or None, month, day)`` of every date the text names."""
        found = set()
        for pattern, order in _DATE_PATTERNS:
            for match in pattern.finditer(self.text):
                parts = dict(zip(order, match.groups(), strict=True))
                month = _MONTHS[parts["M"].rstrip(".")] if "M" in parts else int(parts["m"])
                day, year = int(parts["d"]), int(parts["y"]) if parts.get("y") else None
                try:
                    date(year or 2000, month, day)
                except ValueError:
                    continue
                found.add((year, month, day))
        return found

    def says(self, value: Any) -> bool:
        """Whether the text gives ``value`` (see the module docstring for the rules)."""
        number = as_number(value)
        if number is not None and number in self.numbers:
            return True
        if not isinstance(value, str) or not value.strip():
            return False
        needle = normal_text(value)
        if value.isalpha() and value.isupper() and len(value) <= 3:  # a code (NY, JFK): not the word "in", "or"
            state = _STATES.get(needle)
            return bool(re.search(rf"(?<![A-Za-z0-9]){value}(?![A-Za-z0-9])", self.raw)) or (
                state is not None and _bounded(state).search(self.text) is not None)
        if _bounded(needle).search(self.text) or (needle.startswith("#") and _bounded(needle[1:]).search(self.text)):
            return True
        other = _STATES.get(needle) or _STATE_CODES.get(needle)
        if other is not None and _bounded(other).search(self.text):
            return True
        iso = _ISO_DATE.fullmatch(needle)
        if iso is not None:
            year, month, day = (int(part) for part in iso.groups())
            return (year, month, day) in self.dates or (None, month, day) in self.dates
        words = needle.replace(",", " ").split()
        return 2 <= len(words) <= 4 and all(w.isalpha() and _bounded(w).search(self.text) for w in words)
