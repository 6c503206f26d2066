"""The read-tool closure: what an assistant could look up from what it already knows.

tau2's gold action lists often leave out lookups an assistant needs (the ``get_user_details``
that shows the payment method an exchange is paid with), and a generator may too. A value
no earlier action returned is still obtainable when a read tool, called with arguments the
assistant already has, returns it. :class:`Closure` makes such calls on a copy of the state
the value is needed in, filling each required argument with what the user said first, then
with what was returned:

* returned values: those of a field of the same name, or of the plural name (``orders:
  [...]`` fills ``order_id``, the keys of ``payment_methods`` fill ``payment_method_id``), or
  what a tool named after the argument returned (``find_user_id_by_email`` or ``find_user``
  fills ``user_id``);
* the user's words, by the argument's name: emails for ``*email*``, five-digit numbers for
  ``*zip*``, dates (and the day before or after a known one, when the user speaks of it) for
  ``*date*``, adjacent capitalised words for a ``first_name`` + ``last_name`` pair, capitalised
  words for a ``*name*``, ``*city*``, ``*location*`` or ``*company*`` (a lookup of a symbol by
  company name, of an airport by city), and, for
  other string arguments no returned value fills, codes (``JFK``) or words with digits (``W123``);
* the schema's ``enum``;
* first of all, the values of the same name in the call being checked (``hints``): a
  ``book_reservation`` with ``origin``, ``destination`` and a flight ``date`` is looked up by
  a flight search with those three (and, for a return leg, with the codes swapped: a code of
  the call fills any string argument). Sound, because the caller passes only the values of
  the call it has already proven (two unknown ids must not vouch for each other).

Bounded: at most ``max_calls`` calls per check and ``max_combinations`` argument sets per
tool per round (the first candidates of every argument first), for ``rounds`` rounds (what a
round returns fills the next round's arguments, newest values first). What the calls return is added to the :class:`~.knowledge.Knowledge`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from apigen_mt.domains.base import Domain, Environment, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.values import singular
from apigen_mt.tools.executor import run_call
from apigen_mt.tools.provenance.derivations import neighbour_days
from apigen_mt.tools.provenance.knowledge import Knowledge
from apigen_mt.tools.provenance.said import Said
from apigen_mt.tools.state_diff import canonical_json

__all__ = ["Closure"]


MAX_CANDIDATES = 48
"""Values tried per argument (the product of several arguments' candidates is ranked, not cut)."""


def _diagonal(options: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    """Every combination, the first candidates of every argument first (by the sum of their
    positions), rather than every value of the last argument with the first of the others."""
    sizes = [len(values) for values in options]
    ranked = sorted(itertools.product(*(range(n) for n in sizes)), key=lambda index: (sum(index), index))
    for index in ranked:
        yield tuple(values[i] for values, i in zip(options, index, strict=True))

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ZIP = re.compile(r"\b\d{5}\b")


class Closure:
    """Read-tool lookups for one conversation or blueprint (see the module docstring)."""

    def __init__(self, domain: Domain, said: Said, knowledge: Knowledge, *, max_calls: int = 80,
                 max_combinations: int = 12, rounds: int = 3) -> None:
        self.domain = domain
        self.said = said
        self.knowledge = knowledge
        self.max_calls = max_calls
        self.max_combinations = max_combinations
        self.rounds = rounds
        self.calls = 0
        self.lookups: list[tuple[str, dict[str, Any]]] = []
        """The calls that succeeded, in order (their results are in the knowledge)."""
        self._tried: set[str] = set()
        self._reads = [spec for spec in domain.tools if spec.kind is ToolKind.READ]
        self._hints: Mapping[str, list[Any]] = {}
        self._identifying = set(domain.identification_tools or ())

    def find(self, value: Any, env: Environment, *, derive: bool = True,
             hints: Mapping[str, list[Any]] | None = None,
             obtainable: Callable[[], bool] | None = None) -> str | None:
        """Look things up on ``env`` (left unchanged) until ``value`` is known (``derive``: as in
        :meth:`Knowledge.source`); its source or None.

        Each round's calls go in order of how specific they are: fewer arguments first, and
        arguments filled from returned values before those filled from the user's words
        (looking a record up by its id before searching), the domain's identification tools
        before all. The calls share one copy of ``env``:
        read tools change nothing (``check-domain`` proves it). ``hints``: argument name ->
        values of the call that needs ``value``, tried first. ``obtainable``: the caller's own
        test of whether what was learnt now makes ``value`` obtainable (a date the day after a
        looked-up one), asked after each lookup when the value itself was not returned."""
        self._hints = hints or {}
        env = env.fork()
        for _ in range(self.rounds):
            batch = {}
            for spec in self._reads:
                for signature, arguments in self._argument_sets(spec):
                    first = spec.name in self._identifying  # the policy's authentication, before the user's data
                    batch[signature] = (self._breadth(arguments) - 10 * first, spec.name, arguments)
            if not batch:
                return None
            learnt = False
            for signature, (_, name, arguments) in sorted(batch.items(), key=lambda item: item[1][0]):
                if self.calls >= self.max_calls:
                    return None
                self._tried.add(signature)
                self.calls += 1
                call = run_call(env, self.calls, name, arguments)
                if not call.ok:
                    continue
                learnt = True
                self.lookups.append((name, arguments))
                shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
                self.knowledge.add(call.observation, f"a lookup, {name}({shown})", name)
                found = self.knowledge.source(value, derive=derive)
                if found is not None:
                    return found
                if obtainable is not None and obtainable():
                    return f"what a lookup, {name}({shown}), returned"
            if not learnt:
                return None
        return None

    def _breadth(self, arguments: Mapping[str, Any]) -> float:
        """How broad a lookup is: one per argument, half more for one the user's words fill."""
        return sum(0.5 if self._hinted(k, v) else 1.0 if self.knowledge.returned(v) else 1.5
                   for k, v in arguments.items())

    def _hinted(self, name: str, value: Any) -> bool:
        return any(value == hint for hint in self._hints.get(name, ()))

    def _argument_sets(self, spec: ToolSpec) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``max_combinations`` untried ``(signature, arguments)`` of ``spec`` (a later round
        gets the next ones)."""
        properties = spec.parameters.get("properties") or {}
        required = [name for name in spec.parameters.get("required") or [] if name in properties]
        names = [name for name in required if name not in ("first_name", "last_name")]
        options: list[list[Any]] = [self._candidates(name, properties[name]) for name in names]
        person = {"first_name", "last_name"} <= set(required)
        if person:  # a person: adjacent capitalised words
            options.append(self._name_pairs())
        if any(not values for values in options):
            return []
        sets = []
        for combo in _diagonal(options):
            arguments = dict(zip(names, combo[: len(names)], strict=True))
            if person:
                arguments["first_name"], arguments["last_name"] = combo[-1]
            signature = canonical_json([spec.name, arguments])
            if signature not in self._tried:
                sets.append((signature, arguments))
                if len(sets) >= self.max_combinations:
                    break
        return sets

    def _name_pairs(self) -> list[tuple[str, str]]:
        words = re.findall(r"[A-Za-z][A-Za-z'-]*", self.said.raw)
        pairs = [(a, b) for a, b in zip(words, words[1:]) if a[:1].isupper() and b[:1].isupper()]
        return list(dict.fromkeys(pairs))[:MAX_CANDIDATES]

    def _candidates(self, name: str, schema: Mapping[str, Any]) -> list[Any]:
        """Values for one argument: what the user said first, then what was returned."""
        if "enum" in schema:
            return list(schema["enum"])
        kind = schema.get("type")
        fields = {name, f"{name}s", name.removesuffix("_id") + "s", name.removesuffix("_ids") + "s"}
        known = [v for field, values in self.knowledge.by_field.items()
                 if field in fields or f"{singular(field)}_id" == name
                 or (name.endswith("_id") and name.removesuffix("_id") in field.split("_"))
                 for v in values][::-1]  # the newest first: what the last round learnt opens new lookups
        lowered = name.lower()
        said: list[Any] = []
        if kind in ("integer", "number"):
            known = [v for v in known if isinstance(v, (int, float)) and not isinstance(v, bool)]
        else:
            known = [v for v in known if isinstance(v, str)]
            if "email" in lowered:
                said = _EMAIL.findall(self.said.raw)
            elif "zip" in lowered:
                said = _ZIP.findall(self.said.raw)
            elif "date" in lowered:
                year = getattr(self.domain.today, "year", None)
                said = self.said.iso_dates(year) + list(neighbour_days(self.knowledge.dates(), self.said.text))
            elif any(part in lowered for part in ("name", "city", "location", "company")):  # proper nouns: Nvidia
                quoted = re.findall(r"'([^']{2,60})'|\"([^\"]{2,60})\"", self.said.raw)  # 'Quasar Ltd.'
                said = [a or b for a, b in quoted] + [w for w in self.said.words if w[:1].isupper() and w.isalpha()]
            elif not known:  # codes and ids the user gave: capitals (JFK) or words with digits (W123)
                said = [w for w in self.said.words
                        if (w.isupper() and w.isalpha() and 2 <= len(w) <= 5) or any(ch.isdigit() for ch in w)]
        hinted = [v for v in self._hints.get(name, ()) if isinstance(v, str) or kind in ("integer", "number")]
        if kind not in ("integer", "number") and "date" not in lowered:  # a return leg: origin <-> destination
            hinted += [v for other, values in self._hints.items() if other != name and "date" not in other
                       for v in values if isinstance(v, str) and v.isupper() and 2 <= len(v) <= 5]
        return list(dict.fromkeys([*hinted, *said, *known]))[:MAX_CANDIDATES]
