"""Grounding check: every value a blueprint's actions and outputs need is obtainable from q.

Executed actions can still be unreachable: an instruction about one user with actions on
another's order, or an id nobody gives the assistant. Such a blueprint cannot become a
conversation (the simulated user cannot say what q does not hold), and a committee of LLM
judges misses it often. This check decides it by rules (:mod:`apigen_mt.tools.provenance`):
every argument value of every action must be

* said in the instruction (normalised: case, whitespace, numbers, dates, names), or, for an
  action the user takes on their own device (``requestor: "user"``), said in the instruction or
  the policy (the assistant guides the user: "set the network mode to 4g_5g_preferred"), or
* returned by an earlier action, or
* reachable with the domain's read tools from what is obtainable (a bounded closure, run on
  the state before the action), or
* fixed by the tool's schema (a boolean, an ``enum`` or ``const`` value, the default; an
  empty value carries nothing), or
* derived (:mod:`apigen_mt.tools.provenance.derivations`): a sum or difference of obtainable
  numbers, an arithmetic expression over them, a date relative to the domain's ``today`` or
  the day before or after an obtainable date, an amount the domain computes for the call
  (``Domain.derived_amounts``: a booking's price from the fares), the rest of a payment split
  over several methods (its total obtainable), or
* free text the domain declares exempt (``Domain.free_text_arguments``: a reason, a summary),
  or a value the tool's conventions give (``Domain.conventional_values``: ``cd ..``);

and every expected output must be obtainable the same way (or be the count of a returned list,
or the total the actions paid with one method).
A failure names the action, the argument path, the value and where it was looked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.checks.execution import execute_blueprint
from apigen_mt.tools.executor import ExecutionTrace
from apigen_mt.tools.provenance.closure import Closure
from apigen_mt.tools.provenance.derivations import derived_date, expression_numbers, neighbour_days
from apigen_mt.tools.provenance.knowledge import Knowledge
from apigen_mt.tools.provenance.said import Said, as_number

__all__ = [
    "Gap",
    "argument_leaves",
    "call_amounts",
    "fixed_by_schema",
    "grounding_errors",
    "grounding_gaps",
    "shown_path",
    "required_values",
    "unobtainable_arguments",
]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_LOOKUPS = 80
"""Read-tool calls the closure may make per blueprint."""


_DESCRIBED_ENUM = re.compile(r"\[Enum\]:\s*\[?([^\]\n]+)\]?")


def described_enum(schema: Mapping[str, Any]) -> list[str]:
    """The values a description enumerates (BFCL writes ``[Enum]: ["driver", "passenger"]`` there
    instead of an ``enum``)."""
    found = _DESCRIBED_ENUM.search(str(schema.get("description") or ""))
    return [part.strip().strip("'\"") for part in found.group(1).split(",") if part.strip()] if found else []


def argument_leaves(value: Any, schema: Mapping[str, Any] | None, path: str) -> Iterator[tuple[str, Any, Mapping[str, Any]]]:
    """``(path, leaf, its schema)`` of an argument value (``item_ids[1]``, ``address.city``); a
    list's items get the list's described enum."""
    schema = schema if isinstance(schema, Mapping) else {}
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), Mapping) else {}
        for key, item in value.items():
            yield from argument_leaves(item, properties.get(key, extra), f"{path}.{key}")
    elif isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        if "enum" not in items and described_enum(schema):
            items = {**items, "enum": described_enum(schema)}
        for index, item in enumerate(value):
            yield from argument_leaves(item, items, f"{path}[{index}]")
    else:
        yield path, value, schema


def fixed_by_schema(value: Any, schema: Mapping[str, Any]) -> bool:
    """A value the schema fixes: a boolean, null or empty, an ``enum`` or ``const`` member (or one
    its description enumerates, or an enum member of one of its ``anyOf`` / ``oneOf`` options:
    tau2's ``NetworkModePreference | str``), the default."""
    if value is None or isinstance(value, bool) or value == "":
        return True
    options = [o for o in [*(schema.get("anyOf") or []), *(schema.get("oneOf") or [])] if isinstance(o, Mapping)]
    if any("enum" in option and value in option["enum"] for option in options):
        return True
    if "enum" in schema and value in schema["enum"]:
        return True
    if isinstance(value, str) and value in described_enum(schema):
        return True
    if "const" in schema and value == schema["const"]:
        return True
    return "default" in schema and value == schema["default"]


@dataclass(frozen=True)
class Gap:
    """One value a blueprint needs that its instruction does not make obtainable."""

    value: Any
    action: int | None
    """The index of the action whose argument it is; None for an expected output."""
    tool: str = ""
    path: str = ""
    """The argument path (``payment_methods[3].amount``); the output's index for an output."""
    lookups: int = 0

    def reason(self) -> str:
        lookups = f"{self.lookups} lookup{'' if self.lookups == 1 else 's'}"
        if self.action is None:
            return (f"outputs[{self.path}] = {self.value!r} is not obtainable: not in the actions' results (nor a "
                    f"count, sum or difference of their values), nor found by {lookups}")
        earlier = f"actions[0..{self.action - 1}]" if self.action else "an earlier action"
        return (f"actions[{self.action}] {self.tool}{shown_path(self.path)} = {self.value!r} is not obtainable: not "
                f"said in the instruction, not returned by {earlier}, not found by {lookups}, not fixed by the "
                "schema nor derived")


MAX_GAPS = 6
"""Gaps named in full per blueprint; the rest are counted (feedback must fit small windows)."""


def grounding_errors(domain: Domain, raw: Mapping[str, Any], trace: ExecutionTrace, *,
                     max_lookups: int = MAX_LOOKUPS) -> list[str]:
    """One reason per argument value or expected output that q does not make obtainable (the
    first ``MAX_GAPS``, then how many more)."""
    gaps = grounding_gaps(domain, raw, trace, max_lookups=max_lookups)
    reasons = [gap.reason() for gap in gaps[:MAX_GAPS]]
    if len(gaps) > MAX_GAPS:
        reasons.append(f"and {len(gaps) - MAX_GAPS} more values are not obtainable")
    return reasons


def grounding_gaps(domain: Domain, raw: Mapping[str, Any], trace: ExecutionTrace, *,
                   max_lookups: int = MAX_LOOKUPS, lookups: list[tuple[int, str, dict[str, Any]]] | None = None) -> list[Gap]:
    """The values (of arguments, in the actions' order, then of outputs) that q does not make
    obtainable. ``lookups``, when given, receives the read calls the closure made that
    succeeded, as ``(index of the action they serve, tool, arguments)`` (the outputs': the
    number of actions): what an assistant would look up (an oracle's conversation)."""
    said = Said(str(raw.get("instruction") or ""))
    guided: Said | None = None  # what the assistant can tell the user: the instruction and the policy
    knowledge = Knowledge()
    closure = Closure(domain, said, knowledge, max_calls=max_lookups)
    gaps: list[Gap] = []
    for call in trace.calls:
        arguments = call.arguments if isinstance(call.arguments, Mapping) else {}
        amounts = call_amounts(domain, call.name, arguments, call.before)
        if call.by_user and guided is None:
            guided = Said(f"{raw.get('instruction') or ''}\n{domain.policy}")
        for path, value in unobtainable_arguments(domain, call.name, arguments, guided if call.by_user else said,
                                                  knowledge, amounts=amounts, state=call.before,
                                                  closure=None if call.by_user else closure, by_user=call.by_user):
            gaps.append(Gap(value, call.index, call.name, path, closure.calls))
        _take_lookups(closure, lookups, call.index)
        if call.ok:
            knowledge.add(call.observation, f"actions[{call.index}] {call.name}", call.name)
            knowledge.add_amounts(amounts, f"what actions[{call.index}] {call.name} costs")
        knowledge.add_own(arguments, f"actions[{call.index}] {call.name}'s own arguments")
    for index, output in enumerate(raw.get("outputs") or []):
        if not (knowledge.count_source(output) or _obtainable(output, said, knowledge, closure, trace.env, domain)):
            gaps.append(Gap(output, None, path=str(index), lookups=closure.calls))
    _take_lookups(closure, lookups, len(trace.calls))
    return gaps


def _take_lookups(closure: Closure, into: list[tuple[int, str, dict[str, Any]]] | None, index: int) -> None:
    if into is not None:
        into.extend((index, name, arguments) for name, arguments in closure.lookups)
    closure.lookups.clear()


def call_amounts(domain: Domain, name: str, arguments: Mapping[str, Any], state: Any) -> dict[float, str]:
    """What the domain says the call costs or refunds, on ``state`` (before the call); {} without
    one, and when the domain's code fails (a bug in a user domain must not stop the check)."""
    if state is None:
        return {}
    try:
        return dict(domain.derived_amounts(name, arguments, state) or {})
    except Exception:  # noqa: BLE001 - the domain's hook, not ours
        return {}


def unobtainable_arguments(domain: Domain, name: str, arguments: Mapping[str, Any], said: Said, knowledge: Knowledge,
                           *, amounts: Mapping[float, str] | None = None, state: Any = None,
                           closure: Closure | None = None, by_user: bool = False) -> list[tuple[str, Any]]:
    """``(path, value)`` of every argument leaf of one call that nothing obtainable explains:
    not fixed by the schema, not a declared free text, not said, not known, not derived, and
    (with a ``closure`` and the ``state`` before the call) not found by lookups. The
    conversation audit calls it without a closure: a conversation shows its lookups.
    ``by_user``: one of the user's own tools (their phone), whose values the user gets from
    the assistant: ``said`` is then what the assistant can say (the instruction and the policy)."""
    spec = domain.user_tool(name) if by_user else domain.tool(name)
    schema = spec.parameters if spec is not None else {}
    free = set((domain.free_text_arguments or {}).get(name, ()))
    conventional = (domain.conventional_values or {}).get(name, {})
    pending, exempt = [], set()
    for path, value, leaf_schema in argument_leaves(arguments, schema, ""):
        top = path.lstrip(".").split(".")[0].split("[")[0]
        if fixed_by_schema(value, leaf_schema) or top in free or value in conventional.get(top, ()):
            exempt.add(path)
        else:
            pending.append((path, value))
    return _unproven(pending, arguments, state if closure is not None else None, said, knowledge, closure, domain,
                     amounts or {}, exempt)


def required_values(domain: Domain, actions: list[Mapping[str, Any]], trace: ExecutionTrace | None = None, *,
                    limit: int = 12) -> list[Any]:
    """The values an instruction for ``actions`` must say: the walk's literals no lookup reaches.

    Found one at a time: the first value that a text holding the values found so far does not
    make obtainable is needed (an email, then nothing more when the lookups it opens reach
    the rest). What the grounded instruction writer is told to include; at most ``limit``."""
    trace = trace if trace is not None else execute_blueprint(domain, actions)
    needed: list[Any] = []
    for _ in range(limit):
        gaps = grounding_gaps(domain, {"instruction": " ".join(map(str, needed)), "outputs": []}, trace)
        if not gaps or gaps[0].value in needed:
            break
        needed.append(gaps[0].value)
    return needed


def _unproven(pending: list[tuple[str, Any]], arguments: Mapping[str, Any], before: Any, said: Said,
              knowledge: Knowledge, closure: Closure | None, domain: Domain,
              amounts: Mapping[float, str], exempt: set[str]) -> list[tuple[str, Any]]:
    """The ``(path, value)`` leaves of one call that no rule proves, in the arguments' order.

    What needs no lookup first, then one lookup at a time, hinted by the call's values proven
    so far (never by unproven ones: two unknown ids must not vouch for each other); after each,
    what it taught may prove others without lookups (the original date of a reservation proves
    "the day after" it, which then hints the flight search). Dates and amounts are looked up
    first: they follow from few lookups, and hint the searches."""
    order = {path: i for i, (path, _) in enumerate(pending)}
    proven: dict[str, list[Any]] = {}
    proven_paths: set[str] = set(exempt)  # fixed by the schema or free text: settled

    def settle(path: str, value: Any, env: Any) -> bool:
        if not _leaf_obtainable(arguments, path, value, said, knowledge, closure, env, domain, proven, amounts,
                                proven_paths):
            return False
        proven.setdefault(_leaf_name(path), []).append(value)
        proven_paths.add(path)
        return True

    while pending:
        pending = [(path, value) for path, value in pending if not settle(path, value, None)]
        pending.sort(key=lambda leaf: (not _is_date_or_number(leaf[1]), order[leaf[0]]))
        looked_up = None if before is None else next(
            (i for i, (path, value) in enumerate(pending) if settle(path, value, before)), None)
        if looked_up is None:
            break
        del pending[looked_up]
    return sorted(pending, key=lambda leaf: order[leaf[0]])


def _leaf_obtainable(arguments: Mapping[str, Any], path: str, value: Any, said: Said, knowledge: Knowledge,
                     closure: Closure | None, env: Any, domain: Domain, hints: Mapping[str, list[Any]],
                     amounts: Mapping[float, str], proven_paths: set[str]) -> bool:
    """One argument leaf: obtainable itself, or (a number in a split payment) the rest of a
    split whose total is obtainable and whose other parts are each proven on their own (two
    unknown parts must not vouch for each other)."""
    if _obtainable(value, said, knowledge, closure, env, domain, derive=not isinstance(value, str),
                   hints=hints, amounts=amounts):
        return True
    split = _split_total(arguments, path, value)
    if split is None or not set(split[1]) <= proven_paths:
        return False
    return _obtainable(split[0], said, knowledge, closure, env, domain, hints=hints, amounts=amounts)


def _obtainable(value: Any, said: Said, knowledge: Knowledge, closure: Closure | None, env: Any, domain: Domain,
                derive: bool = True, hints: Mapping[str, list[Any]] | None = None,
                amounts: Mapping[float, str] | None = None) -> bool:
    """``derive``: sums and differences may explain the value (an amount, or an expected output;
    not a string argument, where digits are an id or a zip code). ``amounts``: what the domain
    computes for the call being checked (:meth:`Domain.derived_amounts`)."""
    numbers = expression_numbers(value)
    if numbers is not None:  # "2 * (350 - 122)": every number in it must be obtainable
        return all(_obtainable(number, said, knowledge, closure, env, domain, hints=hints) for number in numbers)
    amounts = amounts or {}
    number = as_number(value) if derive else None
    if number is not None and round(number, 2) in amounts:
        return True
    if said.says(value) or knowledge.source(value, extra_numbers=said.numbers, derive=derive) is not None:
        return True
    if derived_date(value, domain.today, said.text) is not None:
        return True
    if isinstance(value, str) and _ISO_DATE.fullmatch(value[:10]) and value[:10] in neighbour_days(
            [*knowledge.dates(), *said.iso_dates(None)], said.text):
        return True
    if env is None or closure is None:
        return False
    def now() -> bool:  # what the lookups taught, without more lookups
        return _obtainable(value, said, knowledge, closure, None, domain, derive, hints, amounts)
    return closure.find(value, env, derive=derive, hints=hints, obtainable=now) is not None


def _is_date_or_number(value: Any) -> bool:
    return not isinstance(value, str) or bool(_ISO_DATE.fullmatch(value[:10]))


def _split_total(arguments: Mapping[str, Any], path: str, value: Any) -> tuple[float, list[str]] | None:
    """For a number in one item of a list of records (``payment_methods[3].amount``), the total
    it makes with the same field of the other items, and those items' paths: the rest of a
    payment split over several methods is obtainable when the total is (the assistant pays
    the rest with the last one)."""
    match = re.fullmatch(r"\.?(\w+)\[(\d+)\]\.(\w+)", path)
    number = as_number(value)
    if match is None or number is None or isinstance(value, (bool, str)):
        return None
    items = arguments.get(match.group(1))
    if not isinstance(items, list) or len(items) < 2:
        return None
    name, own, field = match.group(1), int(match.group(2)), match.group(3)
    if not all(isinstance(item, Mapping) for item in items):
        return None
    others = [as_number(item.get(field)) for i, item in enumerate(items) if i != own]
    if any(other is None for other in others):
        return None
    return round(number + sum(others), 2), [f".{name}[{i}].{field}" for i in range(len(items)) if i != own]


def _leaf_name(path: str) -> str:
    """``flights[1].date`` -> ``date``: the argument name a read tool would take the leaf as."""
    return re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])


def shown_path(path: str) -> str:
    """An argument path as a reason shows it after the tool's name: ``.flights[0].date``."""
    return "." + path.lstrip(".") if path else ""
