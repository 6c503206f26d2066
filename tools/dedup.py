"""Duplicate detection for generated task blueprints (Phase 1), and a contamination guard.

Two ways a blueprint can repeat an earlier one:

* ``same_actions``: the same ground-truth calls, in the same order, with the same canonical
  arguments (:func:`action_signature`), in the same domain. The wording does not matter:
  the task does the same thing to the same entities. Blueprints with no actions never match
  this way (an empty action list says nothing about what the task is).
* ``near_instruction``: the instruction text is near-identical (:func:`instruction_similarity`
  at or above the index's threshold), whatever the actions.

:class:`DedupIndex` holds the blueprints seen so far. Action signatures sit in a dict;
instructions sit in an inverted index of word 3-shingles that is probed only with the
query's rarest shingles (see :meth:`DedupIndex._instruction_candidates` for why that still
finds every match), so a lookup costs what the entries sharing those shingles cost, not what
the whole index costs: about 60 us per claim with 10,000 varied instructions, a few ms when
most of them are one template with a few words swapped. ``find`` never adds, so an index
built from benchmark test tasks with :meth:`DedupIndex.from_blueprints` serves as a
contamination guard for generated ones.

Instruction similarity
----------------------
Text is normalised (Unicode NFKC, lower case, every run of characters other than letters and
digits is a separator), then compared as

    similarity = 0.5 * Dice(word 3-shingles) + 0.5 * Dice(word sets)

The shingles carry word order and local context; the word sets make the score forgiving of
a single changed or inserted word, which breaks up to three shingles. Dice
(2|A∩B| / (|A|+|B|)) is used rather than Jaccard (|A∩B| / |A∪B|) because Jaccard is too
harsh on short texts: one word changed in the middle of a 30-word instruction gives a
shingle Jaccard of 25/31 = 0.81 but a Dice of 50/56 = 0.89, and the blended score is about
0.93. Two different tasks of one domain that mention the same order share an entity word or
two and almost no shingles, and score around 0.1 to 0.4. A text of fewer than three words is
a single "shingle" of all its words. Two texts with no words at all are identical (1.0).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from apigen_mt.blueprint import blueprint_json
from apigen_mt.tools.state_diff import canonical_json

__all__ = [
    "DEFAULT_THRESHOLD",
    "DedupIndex",
    "DuplicateMatch",
    "action_signature",
    "instruction_similarity",
]

DEFAULT_THRESHOLD = 0.85

# Weights of the two parts of the instruction similarity; they sum to 1.
_SHINGLE_WEIGHT = 0.5
_WORD_WEIGHT = 0.5
_SHINGLE_SIZE = 3
_EPSILON = 1e-9

_WORD = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------------- blueprints


def _action_dict(action: Any) -> Mapping[str, Any]:
    if isinstance(action, Mapping):
        return action
    for method in ("to_json", "model_dump"):
        if callable(getattr(action, method, None)):
            return getattr(action, method)()
    return {"name": getattr(action, "name", None), "arguments": getattr(action, "arguments", None)}


def _canonical_actions(blueprint: Mapping[str, Any]) -> list[Any]:
    """The actions as ``[name, arguments]`` (with ``"user"`` third for the user's own calls),
    after the blueprint's ``initial_state`` when it has one: the same fix for another fault
    is another task."""
    out: list[Any] = []
    for action in blueprint.get("actions") or []:
        action = _action_dict(action)
        entry = [action.get("name"), action.get("arguments") or {}]
        out.append(entry + ["user"] if action.get("requestor") == "user" else entry)
    return [{"initial_state": blueprint["initial_state"]}, *out] if blueprint.get("initial_state") else out


def action_signature(blueprint: Any) -> str:
    """A stable hash (SHA-256 hex) of the action sequence: names and canonical arguments, in order.

    Argument key order and the blueprint's wording do not change it; a different argument
    value, a different call or a different order does. The domain is not part of it (the
    index adds that itself).
    """
    actions = _canonical_actions(blueprint_json(blueprint))
    return hashlib.sha256(canonical_json(actions).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True)
class _Text:
    """An instruction's comparison features."""

    shingles: frozenset[str]
    words: frozenset[str]


def _features(text: str | None) -> _Text:
    tokens = _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())
    if len(tokens) >= _SHINGLE_SIZE:
        shingles = frozenset(
            " ".join(tokens[i : i + _SHINGLE_SIZE]) for i in range(len(tokens) - _SHINGLE_SIZE + 1)
        )
    elif tokens:
        shingles = frozenset([" ".join(tokens)])
    else:
        shingles = frozenset()
    return _Text(shingles, frozenset(tokens))


def _dice(a: frozenset[str], b: frozenset[str], common: int | None = None) -> float:
    if not a and not b:
        return 1.0
    if common is None:
        common = len(a & b)
    return 2.0 * common / (len(a) + len(b))


def _similarity(a: _Text, b: _Text, shingles_common: int | None = None) -> float:
    return _SHINGLE_WEIGHT * _dice(a.shingles, b.shingles, shingles_common) + _WORD_WEIGHT * _dice(a.words, b.words)


def instruction_similarity(a: str, b: str) -> float:
    """How alike two instructions read, in [0, 1] (1.0: the same words in the same order).

    ``0.5 * Dice(word 3-shingles) + 0.5 * Dice(word sets)`` after case folding and dropping
    punctuation; see the module docstring for the reasons and typical values.
    """
    return _similarity(_features(a), _features(b))


# --------------------------------------------------------------------------- matches


@dataclass(frozen=True)
class DuplicateMatch:
    """Why a blueprint is a duplicate, and of which earlier one.

    ``similarity`` is the instruction similarity for ``near_instruction``, and 1.0 for
    ``same_actions`` (the actions are identical; the wording is not compared).
    """

    kind: Literal["same_actions", "near_instruction"]
    of: str
    similarity: float
    threshold: float | None = None

    def reason(self) -> str:
        if self.kind == "same_actions":
            return f"duplicate of {self.of}: same action sequence on the same entities"
        limit = f" (threshold {self.threshold:.0%})" if self.threshold is not None else ""
        return f"near-duplicate of {self.of}: instruction {self.similarity:.0%} similar{limit}"


# --------------------------------------------------------------------------- index


@dataclass(frozen=True)
class _Entry:
    """What the index needs of one blueprint, computed before taking the lock."""

    data: Mapping[str, Any]
    action_key: tuple[str, str] | None  # (domain, action signature); None without actions
    text: _Text


class DedupIndex:
    """The blueprints seen so far, for duplicate checks. Thread-safe: every method holds a lock.

    ``find`` looks without adding; ``add`` records; ``claim`` is the atomic find-then-add that
    concurrent generators use so that of two identical blueprints exactly one is kept.
    A blueprint is never a duplicate of the entry that has its own id.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        threshold = float(threshold)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._lock = threading.RLock()
        self._docs: dict[str, int] = {}  # blueprint id -> internal number
        self._ids: dict[int, str] = {}
        self._texts: dict[int, _Text] = {}
        self._action_keys: dict[int, tuple[str, str]] = {}
        self._by_actions: dict[tuple[str, str], list[int]] = {}  # (domain, signature) -> numbers, oldest first
        self._postings: dict[str, set[int]] = {}  # shingle -> numbers
        self._wordless: set[int] = set()  # instructions with no words at all
        self._next = 0

    @classmethod
    def from_blueprints(cls, blueprints: Iterable[Any], threshold: float = DEFAULT_THRESHOLD) -> DedupIndex:
        """An index holding all of ``blueprints`` (each needs an ``id``), duplicates among them included."""
        index = cls(threshold)
        for blueprint in blueprints:
            data = blueprint_json(blueprint)
            if data.get("id") is None:
                raise ValueError("every blueprint given to from_blueprints needs an id")
            index.add(str(data["id"]), data)
        return index

    def __len__(self) -> int:
        with self._lock:
            return len(self._docs)

    def __contains__(self, blueprint_id: object) -> bool:
        with self._lock:
            return blueprint_id in self._docs

    # ----------------------------------------------------------------- public operations

    def find(self, blueprint: Any) -> DuplicateMatch | None:
        """The earlier blueprint this one duplicates, or None. Adds nothing.

        Same actions win over a near instruction; among near instructions the most similar,
        then the earliest added. The entry with the blueprint's own ``id`` is skipped.
        """
        entry = self._entry(blueprint)
        own = entry.data.get("id")
        with self._lock:
            return self._find(entry, None if own is None else str(own))

    def add(self, blueprint_id: str, blueprint: Any) -> None:
        """Record a blueprint under ``blueprint_id``, replacing what that id held before."""
        entry = self._entry(blueprint)
        with self._lock:
            self._add(str(blueprint_id), entry)

    def claim(self, blueprint_id: str, blueprint: Any) -> DuplicateMatch | None:
        """Atomically: the duplicate match if there is one (nothing added), else add and None.

        Idempotent: if ``blueprint_id`` is already in the index, returns None and adds nothing.
        """
        blueprint_id = str(blueprint_id)
        entry = self._entry(blueprint)  # the hashing and tokenising happen outside the lock
        with self._lock:
            if blueprint_id in self._docs:
                return None
            match = self._find(entry, blueprint_id)
            if match is None:
                self._add(blueprint_id, entry)
            return match

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _entry(blueprint: Any) -> _Entry:
        data = blueprint_json(blueprint)
        key = (str(data.get("domain") or ""), action_signature(data)) if data.get("actions") else None
        return _Entry(data, key, _features(data.get("instruction")))

    def _add(self, blueprint_id: str, entry: _Entry) -> None:
        if blueprint_id in self._docs:
            self._remove(blueprint_id)
        number = self._next
        self._next += 1
        self._docs[blueprint_id] = number
        self._ids[number] = blueprint_id
        key, text = entry.action_key, entry.text
        if key is not None:
            self._action_keys[number] = key
            self._by_actions.setdefault(key, []).append(number)
        self._texts[number] = text
        if not text.shingles:
            self._wordless.add(number)
        for shingle in text.shingles:
            self._postings.setdefault(shingle, set()).add(number)

    def _remove(self, blueprint_id: str) -> None:
        number = self._docs.pop(blueprint_id)
        del self._ids[number]
        key = self._action_keys.pop(number, None)
        if key is not None:
            numbers = self._by_actions[key]
            numbers.remove(number)
            if not numbers:
                del self._by_actions[key]
        text = self._texts.pop(number)
        self._wordless.discard(number)
        for shingle in text.shingles:
            posting = self._postings[shingle]
            posting.discard(number)
            if not posting:
                del self._postings[shingle]

    def _find(self, entry: _Entry, own_id: str | None) -> DuplicateMatch | None:
        own = self._docs.get(own_id) if own_id is not None else None
        key = entry.action_key
        if key is not None:
            for number in self._by_actions.get(key, ()):
                if number != own:
                    return DuplicateMatch("same_actions", self._ids[number], 1.0)
        best: tuple[float, int] | None = None
        for number, similarity in self._instruction_candidates(entry.text):
            if number == own or similarity < self.threshold - _EPSILON:
                continue
            if best is None or similarity > best[0] or (similarity == best[0] and number < best[1]):
                best = (similarity, number)
        if best is None:
            return None
        return DuplicateMatch("near_instruction", self._ids[best[1]], round(best[0], 6), self.threshold)

    def _instruction_candidates(self, text: _Text) -> Iterable[tuple[int, float]]:
        """``(number, similarity)`` for a superset of the entries at or above the threshold.

        With weights summing to 1, ``similarity >= t`` forces the shingle Dice to be at least
        ``d = (t - word_weight) / shingle_weight``. For the query's ``n`` shingles and an entry
        with ``m`` of them and ``c`` in common, ``2c >= d(n + m) >= d(n + c)`` gives
        ``c >= alpha = d*n / (2 - d)``. Any entry sharing ``alpha`` of the query's shingles
        shares at least one of *any* ``n - alpha + 1`` of them, so probing the postings of the
        ``n - alpha + 1`` rarest shingles finds every match without touching the common ones.
        The same bound limits the entry's size: ``d*n/(2-d) <= m <= n*(2-d)/d``.
        When ``d <= 0`` (thresholds of 0.5 and below) there is no such bound and every entry
        is compared.
        """
        if not text.shingles:
            for number in self._wordless:
                yield number, _similarity(text, self._texts[number])
            return
        d = (self.threshold - _WORD_WEIGHT) / _SHINGLE_WEIGHT
        if d <= _EPSILON:
            for number, other in self._texts.items():
                yield number, _similarity(text, other)
            return
        n = len(text.shingles)
        alpha = max(1, math.ceil(d * n / (2.0 - d) - _EPSILON))
        low = d * n / (2.0 - d) - _EPSILON
        high = n * (2.0 - d) / d + _EPSILON
        postings = self._postings
        ranked = sorted(text.shingles, key=lambda s: len(postings.get(s, ())))
        candidates: set[int] = set()
        for shingle in ranked[: n - alpha + 1]:
            posting = postings.get(shingle)
            if posting:
                candidates |= posting
        for number in candidates:
            other = self._texts[number]
            m = len(other.shingles)
            if m < low or m > high:
                continue
            common = len(text.shingles & other.shingles)
            if common < alpha:
                continue
            yield number, _similarity(text, other, common)
