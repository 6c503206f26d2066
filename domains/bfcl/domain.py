"""BFCL's executable multi-turn API classes as apigen-mt domains.

A :class:`BFCLDomain` wraps one or more of BFCL's API classes (``GorillaFileSystem``,
``TradingBot``, ...) loaded with an initial config, exactly as BFCL's own checker loads them:
``cls()`` then ``_load_scenario(deepcopy(config), long_context=...)`` (not for the stateless
MathAPI). BFCL's own method code runs every call; nothing is reimplemented.

State model (see domains/base.py): one *table* per class, one *record* per public attribute
of its instance (names not starting with ``_``, as BFCL's state checker compares them), as
JSON data. File-system ``Directory``/``File`` objects become nested dicts in the same shape
as BFCL's scenario configs (``{"type": "directory", "contents": {...}}``); the
``Directory.parent`` back-link is skipped (it makes the tree cyclic); sets become sorted
lists. Integral floats are written as ints in state dumps, because BFCL compares states with
Python ``==`` where ``20 == 20.0``; observations keep their exact values. Values are always
valid JSON (:func:`bfcl_json`): mpmath/Decimal results become floats, non-finite numbers and
ints beyond 64 bits their text.

Math limits: BFCL's MathAPI sets process-wide precision and has no bounds, so one call could
stall a worker (``logarithm(precision=100000)``) or leak its precision into other
conversations. Precision-, decimal-places- and exponent-like arguments are checked against
:data:`ARGUMENT_RANGES` (an :class:`ArgumentError` names the range), and every call runs in
:func:`numeric_context`, which restores mpmath's and decimal's precision afterwards.

What is *not* state: private attributes such as the file system's current directory
(``_current_dir``) or the seeded random generators (``_random``). They still travel with
forks and new environments (instances are deep-copied whole), so replays are
deterministic, but two environments that differ only there compare equal, as in BFCL.

Forking deep-copies the instances; BFCL states are small, see :data:`FORK_COST_NOTE`.

Errors: BFCL methods mostly *return* an error instead of raising. A returned dict with an
``"error"`` key (``{"error": "..."}``, also ``{"booking_status": False, "error": ...}``)
becomes a :class:`ToolExecutionError` with that message; so do the list-wrapped forms some
methods use when the user is not logged in (``[{"error": ...}]`` from TicketAPI and
TradingBot, ``["Error: ..."]`` from ``get_watchlist``), and any exception the method
raises (``get_flight_cost`` raises ``ValueError`` for unknown routes). A failed write
leaves the state as it was (the contract of ``Environment.execute``): the instance is
restored from a copy taken before the call. Read-classified functions were measured not
to change public state, so they run without that copy.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import decimal
import functools
import inspect
import json
import math
import numbers
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from apigen_mt.domains.base import (
    ArgumentError,
    Domain,
    DomainError,
    Environment,
    RecordChange,
    ToolExecutionError,
    ToolKind,
    ToolSpec,
    UnknownToolError,
)
from apigen_mt.domains.bfcl import data
from apigen_mt.domains.bfcl.call_parser import parse_call
from apigen_mt.domains.bfcl.stated_arguments import STATED_ARGUMENTS
from apigen_mt.tools.json_schema import TYPE_ALIASES, argument_errors
from apigen_mt.tools.state_diff import canonical_json

TOOL_KINDS_PATH = Path(__file__).with_name("tool_kinds.json")

FORK_COST_NOTE = (
    "fork()/new_env() deep-copy the API instances (their seeded random generators included). "
    "Measured on 2 cores: single-class pristine states 0.005-0.4 ms per copy (MathAPI 0.005, "
    "GorillaFileSystem 0.03, VehicleControlAPI 0.35: mostly copying the Mersenne-Twister state), "
    "long-context entries up to ~2 ms; changed_records()/state_hash() 0.01-0.8 ms. tau2 deep-copies "
    "its database in ~100-370 ms, so copy-on-write is not worth its complexity here."
)

# -- JSON views of BFCL values -------------------------------------------------------------


#: Integers outside the signed 64-bit range are written as decimal strings: JSON readers in
#: other languages lose their digits, and Python's own ``json.dumps`` refuses ints of more
#: than 4300 digits (``power(base=10, exponent=5000)``), which would break rendering.
MAX_JSON_INT = 2**63


def bfcl_json(value: Any, *, state: bool = False, _path: frozenset[int] = frozenset()) -> Any:
    """A BFCL value (return value or attribute) as plain JSON data: always a fresh copy.

    Unlike the generic :func:`apigen_mt.tools.jsonable.to_jsonable`, this knows BFCL's
    values: file-system ``Directory``/``File`` trees (scenario-config shape, no parent
    back-link, cycle-safe), sets (sorted lists), plain objects (their public attributes), and
    numbers that are not Python floats (mpmath's ``mpf`` from ``logarithm``, ``Decimal`` from
    ``square_root``): those become floats. A number that is not finite (or too large for a
    float) becomes its text, and so does an int outside the 64-bit range
    (:data:`MAX_JSON_INT`), so the result is always valid JSON that ``json.dumps`` accepts.
    An object with no public attributes (``mpc``, a complex) is written as its text.

    ``state=True`` is for state dumps: integral floats become ints (BFCL compares with ``==``).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return _int_json(value)
    if isinstance(value, float):  # inlined: state dumps are hot
        if state and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value if math.isfinite(value) else str(value)
    if id(value) in _path:  # a cycle (possible with odd cp/mv calls): do not recurse forever
        return {"<cycle>": getattr(value, "name", type(value).__name__)}
    inner = _path | {id(value)}
    if isinstance(value, dict) or isinstance(value, Mapping):  # dict first: ABC checks are slow
        return {_key(k): bfcl_json(v, state=state, _path=inner) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bfcl_json(v, state=state, _path=inner) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [bfcl_json(v, state=state, _path=inner) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, default=str))
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    kind = type(value).__name__
    if kind == "Directory" and hasattr(value, "contents"):
        return {
            "type": "directory",
            "name": value.name,
            "contents": {_key(k): _file_node(v, state, inner) for k, v in value.contents.items()},
        }
    if kind == "File" and hasattr(value, "content"):
        return {"type": "file", "name": value.name, "content": value.content}
    if isinstance(value, numbers.Integral):  # checked late: ABC checks are slow, state dumps are hot
        return _int_json(value)
    if isinstance(value, (numbers.Real, decimal.Decimal)) or hasattr(value, "__float__"):
        return _float_json(value, state)
    public = {
        name: attr
        for name, attr in getattr(value, "__dict__", {}).items()
        if not name.startswith("_") and name != "parent"
    }
    if public:
        return {name: bfcl_json(attr, state=state, _path=inner) for name, attr in public.items()}
    return _text(value)


def _int_json(value: int) -> int | str:
    value = int(value)  # a plain int, also for IntEnum-like subclasses
    return value if -MAX_JSON_INT <= value < MAX_JSON_INT else _int_text(value)


def _float_json(value: Any, state: bool) -> Any:
    """A float (a finite one), else the number's text."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # a complex, a Fraction too big for a float
        return _text(value)
    if not math.isfinite(number):
        return _text(value)
    if state and number.is_integer() and abs(number) < 2**53:
        return int(number)
    return number


def _int_text(value: int) -> str:
    """All digits of a big int (``str()`` refuses more than 4300; ``Decimal`` does not)."""
    return str(decimal.Decimal(value))


def _text(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # a number whose digits exceed Python's int-to-text limit
        return f"<{type(value).__name__} too large to show>"


def _file_node(value: Any, state: bool, path: frozenset[int]) -> Any:
    """A child in a directory: like the scenario configs, names are only the keys."""
    node = bfcl_json(value, state=state, _path=path)
    if isinstance(node, dict) and node.get("type") in ("file", "directory"):
        node = {k: v for k, v in node.items() if k != "name"}
    return node


def _key(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key) if not isinstance(key, (int, float)) else str(key)


def public_state(instance: Any) -> dict[str, Any]:
    """The public attributes of a BFCL instance as JSON data (one record per attribute)."""
    return {
        name: bfcl_json(value, state=True)
        for name, value in vars(instance).items()
        if not name.startswith("_")
    }


def error_message(result: Any) -> str | None:
    """The error a BFCL method *returned*, or None when the result is not an error."""
    if isinstance(result, Mapping) and "error" in result:
        return str(result["error"])
    if isinstance(result, list) and len(result) == 1:
        (item,) = result
        if isinstance(item, Mapping) and "error" in item:
            return str(item["error"])
        if isinstance(item, str) and item.startswith("Error:"):
            return item.removeprefix("Error:").strip()
    return None


# -- tool specs ------------------------------------------------------------------------------


def normalise_schema(schema: Any) -> Any:
    """BFCL's parameter schema in standard JSON-schema terms.

    ``dict`` -> ``object``, ``float`` -> ``number``, ``tuple`` -> ``array`` (and the other
    Python type names), ``any`` -> no type constraint, ``"default": "None"`` -> ``null``.
    """
    if isinstance(schema, list):
        return [normalise_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            names = value if isinstance(value, list) else [value]
            names = [TYPE_ALIASES.get(n, n) for n in names]
            if "any" in names:
                continue
            out["type"] = names if isinstance(value, list) else names[0]
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {name: normalise_schema(sub) for name, sub in value.items()}
        elif key == "default" and value == "None":
            out["default"] = None
        else:
            out[key] = normalise_schema(value)
    return out


def checking_schema(schema: Any) -> Any:
    """The schema arguments are checked against: optional properties also accept ``null``.

    BFCL's optional parameters are ``Optional[...] = None`` in the code while the docs give
    a plain type with ``"default": "None"``, and its ``edit_ticket`` skips ``None`` update
    values; an LLM that writes ``null`` for "not given" does what the function accepts.
    Numbers are already lenient in ``tools.json_schema``: ints pass as ``number`` (BFCL's
    gold calls pass ``fuelAmount=50`` for a float) and integral floats as ``integer``.
    """
    if isinstance(schema, list):
        return [checking_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {key: checking_schema(value) for key, value in schema.items() if key != "properties"}
    if isinstance(schema.get("properties"), Mapping):
        required = set(schema.get("required") or [])
        properties = {}
        for name, sub in schema["properties"].items():
            sub = checking_schema(sub)
            if name not in required and isinstance(sub, Mapping) and "type" in sub:
                types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
                if "null" not in types:
                    sub = {**sub, "type": [*types, "null"]}
            properties[name] = sub
        out["properties"] = properties
    return out


#: Where BFCL's own data contradicts its docs, the checker accepts what the data uses:
#: TicketAPI's docs declare ``ticket_id`` an integer, but scenario configs also hold string ids
#: (``"ticket_001"`` in multi_turn_*_173), and the ground truth closes that ticket with
#: ``close_ticket(ticket_id='ticket_001')``, which BFCL's code does (it compares ids with ``==``).
#: The exposed schema stays as BFCL documents it.
CHECK_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "TicketAPI": {"ticket_id": ["integer", "string"]},
}


def _override_types(schema: dict[str, Any], overrides: Mapping[str, list[str]]) -> dict[str, Any]:
    properties = dict(schema.get("properties") or {})
    for name, types in overrides.items():
        if name in properties and isinstance(properties[name], Mapping):
            current = properties[name].get("type")
            extra = [t for t in (current if isinstance(current, list) else [current]) if t == "null"]
            properties[name] = {**properties[name], "type": [*types, *extra]}
    return {**schema, "properties": properties}


#: Allowed ranges of the arguments that set how much work a math call does, checked before
#: the call (BFCL has no limits: ``logarithm(precision=100000)`` takes seconds,
#: ``power(base=10, exponent=10**7)`` forever, ``round_number(5, decimal_places=-10**8)``
#: builds a 10**8-digit int). Results are floats, so more than ~17 digits of precision is
#: never visible anyway; BFCL's ground truth uses precision 2-10 and no other of these.
ARGUMENT_RANGES: dict[str, dict[str, dict[str, tuple[int, int]]]] = {
    "MathAPI": {
        "logarithm": {"precision": (1, 100)},
        "square_root": {"precision": (1, 100)},
        "round_number": {"decimal_places": (-100, 100)},
        "power": {"exponent": (-1000, 1000)},
    },
}

#: An integer ``power`` may have at most this many digits (``power(base=10**400,
#: exponent=1000)`` is in range but would be a 400,000-digit number).
MAX_POWER_DIGITS = 10_000


def argument_limit_errors(class_name: str, name: str, arguments: Mapping[str, Any]) -> list[str]:
    """Arguments outside :data:`ARGUMENT_RANGES` (or a too-large integer power), as messages."""
    problems = []
    for param, (low, high) in ARGUMENT_RANGES.get(class_name, {}).get(name, {}).items():
        value = arguments.get(param)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            problems.append(f"{param} must be between {low} and {high}, got {value!r:.60}")
    if class_name == "MathAPI" and name == "power" and not problems:
        base, exponent = arguments.get("base"), arguments.get("exponent")
        if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
            digits = exponent * math.log10(abs(base))
            if digits > MAX_POWER_DIGITS:
                problems.append(
                    f"the result would be an integer of about {digits:,.0f} digits; at most "
                    f"{MAX_POWER_DIGITS:,} are allowed (use a smaller exponent or a float base)"
                )
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: BFCL's math methods set process-wide precision (``mpmath.mp.dps`` in ``logarithm``, the
#: thread's decimal context in ``square_root``). :func:`numeric_context` restores both after
#: every call; this lock keeps concurrent calls (threads) from seeing each other's mpmath setting.
_NUMERIC_LOCK = threading.RLock()


@contextlib.contextmanager
def numeric_context() -> Iterator[None]:
    """Run a BFCL call with mpmath's and decimal's precision saved and restored afterwards."""
    mpmath = sys.modules.get("mpmath")  # imported with MathAPI; if not, nothing can change it
    with _NUMERIC_LOCK, decimal.localcontext():
        saved = mpmath.mp.prec if mpmath is not None else None
        try:
            yield
        finally:
            if mpmath is not None:
                mpmath.mp.prec = saved


@functools.cache
def tool_kinds() -> dict[str, dict[str, str]]:
    """``{class: {function: "read"|"write"|"other"}}`` from tool_kinds.json (classify.py)."""
    try:
        raw = json.loads(TOOL_KINDS_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {
        class_name: {name: info["kind"] for name, info in functions.items()}
        for class_name, functions in raw.get("classes", {}).items()
    }


def tool_kind(class_name: str, function: str) -> ToolKind:
    kind = tool_kinds().get(class_name, {}).get(function)
    return ToolKind(kind) if kind in ("read", "write", "other") else ToolKind.OTHER


@functools.cache
def _method_owner() -> dict[str, str]:
    """Function name -> class name over all eight classes (BFCL's names never collide)."""
    return {doc["name"]: class_name for class_name in data.CLASS_NAMES for doc in data.func_docs(class_name)}


def method_resolver(name: str) -> Any:
    """The BFCL method called ``name`` (for mapping positional arguments), or None."""
    owner = _method_owner().get(name)
    return getattr(data.api_class(owner), name, None) if owner else None


def parse_bfcl_call(text: str) -> tuple[str, dict[str, Any]]:
    """A BFCL call string as ``(name, arguments)``, positional arguments named."""
    return parse_call(text, method_resolver)


def ground_truth_actions(entry_id: str) -> list[list[dict[str, Any]]]:
    """The entry's ground truth as actions, one list per turn."""
    turns = []
    for calls in data.ground_truth(entry_id):
        turn = []
        for text in calls:
            name, arguments = parse_bfcl_call(text)
            turn.append({"name": name, "arguments": arguments})
        turns.append(turn)
    return turns


# -- the environment -----------------------------------------------------------------------


class BFCLEnvironment(Environment):
    """Live BFCL instances (one per class) with their methods as tools."""

    def __init__(self, domain: "BFCLDomain", instances: dict[str, Any]) -> None:
        self.domain = domain
        self._instances = instances

    @property
    def instances(self) -> Mapping[str, Any]:
        """The live BFCL instances by class name (read them; change them only through tools)."""
        return MappingProxyType(self._instances)

    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        domain = self.domain
        owner = domain.owner(name)
        if owner is None:
            raise UnknownToolError(f"Tool '{name}' not found. Available tools: {', '.join(domain.tool_names)}")
        problems = argument_errors(arguments, domain.checking_schema(name))
        if not problems:
            problems = argument_limit_errors(owner, name, arguments)
        if problems:
            raise ArgumentError(f"Invalid arguments for {name}: " + "; ".join(problems))
        method = getattr(self._instances[owner], name)
        # Arguments are copied: BFCL stores some of them in its state as they are (post_tweet's
        # tags, a ticket's updates), and a caller's action must never change with the state.
        kwargs = copy.deepcopy(dict(arguments))
        # BFCL has mutable defaults (post_tweet(tags=[], mentions=[])) that later calls mutate in
        # place (mention() extends a tweet's mentions): pass fresh copies instead.
        for param, default in domain.mutable_defaults(name).items():
            if param not in kwargs:
                kwargs[param] = copy.deepcopy(default)
        spec = domain.tool(name)
        saved = None if spec.kind is ToolKind.READ else copy.deepcopy(self._instances[owner])
        with numeric_context():  # converted inside: an mpmath value prints at the call's precision
            try:
                result = method(**kwargs)
            except Exception as error:  # BFCL also raises (ValueError for unknown routes, ...)
                self._restore(owner, saved)
                raise ToolExecutionError(str(error) or type(error).__name__) from error
            message = error_message(result)
            if message is not None:
                self._restore(owner, saved)
                raise ToolExecutionError(message)
            return bfcl_json(result)

    def _restore(self, owner: str, saved: Any) -> None:
        if saved is not None:
            self._instances[owner] = saved

    def dump(self) -> dict[str, dict[str, Any]]:
        """The whole public state: ``{class: {attribute: value}}`` as JSON data."""
        return {class_name: public_state(instance) for class_name, instance in self._instances.items()}

    def changed_records(self) -> Iterator[RecordChange]:
        """Changed records; ``before`` is a copy of the pristine value, never the shared one."""
        for class_name, instance in self._instances.items():
            pristine = self.domain._pristine_state[class_name]
            pristine_text = self.domain._pristine_text[class_name]
            current = public_state(instance)
            for key in list(pristine) + [k for k in current if k not in pristine]:
                after = current.get(key)
                if pristine_text.get(key, "null") != canonical_json(after):
                    yield RecordChange(class_name, key, copy.deepcopy(pristine.get(key)), after)

    def record(self, table: str, key: str) -> Any:
        if not isinstance(table, str) or not isinstance(key, str):
            return None
        instance = self._instances.get(table)
        if instance is None or key.startswith("_") or key not in vars(instance):
            return None
        return bfcl_json(vars(instance)[key], state=True)

    def fork(self) -> "BFCLEnvironment":
        return BFCLEnvironment(self.domain, copy.deepcopy(self._instances))


# -- the domain --------------------------------------------------------------------------------

_POLICY_HEAD = """You are an assistant that operates the following systems for the user through function calls:
{systems}

Rules:
- Use the functions to do what the user asks; never invent results, ids or file contents you have not seen.
- If a request lacks a value that a function requires (a name, an id, an amount), ask the user for it instead of guessing.
- If no available function can do what is asked, say so instead of calling an unrelated function.
- Within a turn, keep calling functions until the request is fulfilled, then tell the user the outcome.
- When a function returns an error, read it and fix the cause (log in first, use the right id) before retrying."""

_CLASS_NOTES = {
    "GorillaFileSystem": "File system: commands act on the current directory; `cd` moves one level at a time "
    "(`..` goes up), file and directory names may not contain paths.",
    "MessageAPI": "Messaging: log in with message_login(user_id) before sending, viewing or deleting messages.",
    "TwitterAPI": "Posting: authenticate_twitter(username, password) before posting, commenting or following.",
    "TicketAPI": "Tickets: ticket_login(username, password) before creating or listing tickets.",
    "TradingBot": "Trading: trading_login before placing orders, funding or viewing the account.",
    "TravelAPI": "Travel: authenticate_travel returns the access_token that the booking, card and invoice "
    "functions need.",
    "VehicleControlAPI": "Vehicle: the engine starts only with all doors locked and the brake pedal fully pressed.",
}


FREE_TEXT = {  # what the user asks to be written, which the assistant words itself
    "send_message": ("message",), "post_tweet": ("content",), "comment": ("comment_content",),
    "create_ticket": ("title", "description"), "resolve_ticket": ("resolution",),
}
"""The BFCL arguments the grounding check treats as free text (a message body, a post)."""
CONVENTIONS = {"cd": {"folder": ("..",)}}
"""Values a shell user knows without being told: ``cd ..`` goes up a level."""
FORBIDDEN_EDGES = (("add_contact", "message_login"),)
"""Chains the API graph must not suggest: the contact just added is not the user who logs in."""


class BFCLDomain(Domain):
    """One or more BFCL API classes loaded with an initial config."""

    persona_set = "bfcl"

    @property
    def free_text_arguments(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        return {tool: args for tool, args in FREE_TEXT.items() if self.owner(tool)}

    @property
    def stated_arguments(self) -> dict[str, list[dict[str, Any]]]:  # type: ignore[override]
        """The requests :mod:`.stated_arguments` writes for this domain's tools (shared: do not change)."""
        return self._stated

    @property
    def forbidden_edges(self) -> list[tuple[str, str]]:
        return [(source, target) for source, target in FORBIDDEN_EDGES if self.owner(source) and self.owner(target)]

    @property
    def conventional_values(self) -> dict[str, dict[str, tuple[Any, ...]]]:  # type: ignore[override]
        return {tool: values for tool, values in CONVENTIONS.items() if self.owner(tool)}

    def __init__(
        self,
        class_names: Sequence[str],
        initial_config: Mapping[str, Any] | None = None,
        *,
        long_context: bool = False,
        name: str | None = None,
        description: str = "",
        excluded_functions: Sequence[str] = (),
        scenario_ids: Sequence[str] | None = None,
    ) -> None:
        if isinstance(class_names, str):
            class_names = [class_names]
        classes = list(dict.fromkeys(data.check_class(c) for c in class_names))
        if not classes:
            raise DomainError("a BFCL domain needs at least one API class")
        config = dict(initial_config or {})
        self.class_names: tuple[str, ...] = tuple(classes)
        self.long_context = bool(long_context)
        self.name = name or "bfcl." + "+".join(_short_name(c) for c in classes)
        self.description = description or "BFCL multi-turn APIs: " + ", ".join(classes)
        self._config = {c: copy.deepcopy(config.get(c) or {}) for c in classes}
        # Loaded like BFCL's checker does, then deep-copied once more: _load_scenario keeps
        # references to module-level data in places (long-context TravelAPI cards), which
        # calls would otherwise change for every later load in the process.
        self._prototype = copy.deepcopy(
            {c: data.load_instance(c, self._config[c], self.long_context) for c in classes}
        )
        self._pristine_state = {c: public_state(inst) for c, inst in self._prototype.items()}
        self._pristine_text = {
            c: {key: canonical_json(value) for key, value in state.items()} for c, state in self._pristine_state.items()
        }
        excluded = set(excluded_functions)
        self._owners: dict[str, str] = {}
        self._check_schemas: dict[str, Any] = {}
        self._mutable_defaults: dict[str, dict[str, Any]] = {}
        tools = []
        for class_name in classes:
            instance = self._prototype[class_name]
            for doc in data.func_docs(class_name):
                fname = doc["name"]
                if fname in excluded:
                    continue
                parameters = normalise_schema(doc.get("parameters") or {"type": "dict", "properties": {}})
                parameters.setdefault("type", "object")
                parameters.setdefault("properties", {})
                tools.append(ToolSpec(fname, doc.get("description", ""), parameters, tool_kind(class_name, fname)))
                self._owners[fname] = class_name
                self._check_schemas[fname] = _override_types(
                    checking_schema(parameters), CHECK_OVERRIDES.get(class_name, {})
                )
                signature = inspect.signature(getattr(instance, fname))
                self._mutable_defaults[fname] = {
                    p.name: copy.deepcopy(p.default)
                    for p in signature.parameters.values()
                    if isinstance(p.default, (list, dict, set))
                }
        self._tools = tools
        self._stated = {
            tool: requests
            for class_name in classes
            for tool, requests in STATED_ARGUMENTS.get(class_name, {}).items()
            if self._owners.get(tool) == class_name
        }
        self._scenario_ids = list(scenario_ids) if scenario_ids is not None else None

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def for_entry(cls, entry: Mapping[str, Any] | str, *, exclude_functions: bool = True) -> "BFCLDomain":
        """The domain of one multi-turn entry: all its involved classes, its initial config.

        Long-context entries load with ``long_context=True`` as BFCL's checker does. The
        entry's ``excluded_function`` are left out of the tools (as BFCL leaves them out of
        the model's function list) unless ``exclude_functions=False``. Functions held back
        for some turns in miss_func entries stay available: the ground truth uses them.
        """
        if isinstance(entry, str):
            entry = data.get_entry(entry)
        entry_id = entry["id"]
        return cls(
            entry["involved_classes"],
            entry.get("initial_config") or {},
            long_context=data.is_long_context(entry),
            name=f"bfcl.{entry_id}",
            description=f"BFCL entry {entry_id}: " + ", ".join(entry["involved_classes"]),
            excluded_functions=(entry.get("excluded_function") or ()) if exclude_functions else (),
            scenario_ids=[entry_id],
        )

    @classmethod
    def for_class(cls, class_name: str, state: str | None = None) -> "BFCLDomain":
        """The single-class domain ``bfcl.<short name>``, or with ``state`` (an entry id of
        :meth:`state_pool`) the same class in that entry's initial state, ``bfcl.<short
        name>@<entry id>``.

        The pristine state is the config of the first multi_turn_base entry that involves the
        class (:func:`data.pristine_entry_id`; MathAPI is stateless). Its scenarios
        (``user_ids``) are the multi-turn entries that load the class in the same state.
        """
        class_name = data.SHORT_NAMES.get(class_name, class_name)
        data.check_class(class_name)
        short = _short_name(class_name)
        if state is None:
            entry_id = data.pristine_entry_id(class_name)
            return cls([class_name], {class_name: data.pristine_config(class_name)}, name=f"bfcl.{short}",
                       description=f"BFCL {class_name} (pristine state: the initial config of {entry_id})")
        if state == data.pristine_entry_id(class_name):
            raise DomainError(f"{state!r} holds the pristine state of BFCL {class_name}: use bfcl.{short}")
        if state not in data.state_entries(class_name):
            raise DomainError(
                f"{state!r} is not one of the initial states of BFCL {class_name}: use an entry id that "
                f"bfcl.{short}'s state pool lists (apigen-mt domains), e.g. {', '.join(data.state_entries(class_name)[:3]) or 'none: it is stateless'}"
            )
        return cls([class_name], {class_name: data.entry_config(state, class_name)}, name=f"bfcl.{short}@{state}",
                   description=f"BFCL {class_name} in the initial state of {state}")

    def state_pool(self) -> list[str]:
        """The domains of this one's class in each initial state BFCL's entries load it in
        (``bfcl.ticket@multi_turn_base_23``), the pristine one first; Phase 1 draws one per
        blueprint, so tasks do not all start in one world. The name records the entry whose
        state it is, which the contamination guard compares against. Exact duplicates are
        told apart by state too (the same calls in two worlds are two tasks; near-duplicate
        instructions still count across them). Empty for a domain of
        several classes, a scenario, a state of the pool itself or a stateless class."""
        if len(self.class_names) != 1 or self.name != f"bfcl.{_short_name(self.class_names[0])}":
            return []
        short = _short_name(self.class_names[0])
        entries = data.state_entries(self.class_names[0])
        return [self.name, *[f"bfcl.{short}@{entry_id}" for entry_id in entries[1:]]] if entries else []

    # -- Domain -------------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        systems = []
        for class_name in self.class_names:
            about = str(getattr(self._prototype[class_name], "_api_description", class_name))
            for prefix in ("This tool belongs to the ", "This tool belongs to "):
                if about.startswith(prefix):
                    about = about[len(prefix)].upper() + about[len(prefix) + 1 :]
                    break
            note = _CLASS_NOTES.get(class_name)
            systems.append(f"- {about}" + (f"\n  {note}" if note else ""))
        return _POLICY_HEAD.format(systems="\n".join(systems))

    @property
    def tools(self) -> list[ToolSpec]:
        return self._tools

    def new_env(self) -> BFCLEnvironment:
        return BFCLEnvironment(self, copy.deepcopy(self._prototype))

    def user_ids(self) -> list[str]:
        """Ids of the multi-turn entries (scenarios) whose data *is* this domain's state.

        Only entries that load these classes with exactly this domain's initial config count:
        a blueprint written from a scenario's data must run on that data. Every other
        scenario is its own domain: ``bfcl.<entry id>`` (:meth:`for_entry`).
        """
        if self._scenario_ids is None:
            wanted = {c: canonical_json(cfg) for c, cfg in self._config.items()}
            self._scenario_ids = [
                e["id"]
                for e in data.all_entries()
                if set(wanted) <= set(e["involved_classes"])
                and data.is_long_context(e) == self.long_context
                and all(canonical_json(data.entry_config(e, c)) == text for c, text in wanted.items())
            ]
        return list(self._scenario_ids)

    def user_context(self, user_id: str, max_chars: int = 6000) -> dict[str, Any]:
        """One scenario's initial state of this domain's classes, bounded to ``max_chars``: its
        config as loaded, with the class's defaults for what the config leaves out (the
        posting account's username and password), which the user knows as their own."""
        if user_id not in set(self.user_ids()):
            raise DomainError(f"{user_id!r} is not a scenario of domain {self.name!r}")
        entry = data.get_entry(user_id)
        state = {c: self.pristine_state(c) for c in self.class_names if c in entry["involved_classes"]}
        return {
            "scenario_id": user_id,
            "involved_classes": list(entry["involved_classes"]),
            "initial_state": bounded(state, max_chars),
        }

    def check_runs(self, max_entries: int = 8) -> list[tuple[str, list[dict[str, Any]]]]:
        """BFCL's ground truth of the scenarios whose data is this state (its calls to these
        classes, all turns in order): for check-domain only, never for a prompt."""
        runs = []
        for entry_id in self.user_ids()[:max_entries]:
            actions = [a for turn in ground_truth_actions(entry_id) for a in turn if self.owner(a["name"])]
            if actions:
                runs.append((f"BFCL ground truth of {entry_id}", actions))
        return runs

    # -- helpers -------------------------------------------------------------------------------
    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self._tools]

    def owner(self, tool_name: str) -> str | None:
        """The class a tool belongs to, or None for a tool this domain does not have."""
        return self._owners.get(tool_name) if isinstance(tool_name, str) else None

    def checking_schema(self, tool_name: str) -> Any:
        return self._check_schemas[tool_name]

    def mutable_defaults(self, tool_name: str) -> dict[str, Any]:
        return self._mutable_defaults.get(tool_name, {})

    def pristine_state(self, class_name: str) -> dict[str, Any]:
        """A copy of the pristine public state of one class as JSON data."""
        return copy.deepcopy(self._pristine_state[class_name])

    def initial_config(self) -> dict[str, Any]:
        """A copy of the config this domain was loaded with."""
        return copy.deepcopy(self._config)

    def parse_call(self, text: str) -> tuple[str, dict[str, Any]]:
        """A BFCL call string as ``(name, arguments)``."""
        return parse_bfcl_call(text)


def _short_name(class_name: str) -> str:
    for short, full in data.SHORT_NAMES.items():
        if full == class_name:
            return short
    return class_name  # pragma: no cover


def bounded(value: Any, max_chars: int = 6000) -> Any:
    """``value`` with long strings, lists and dicts cut (marked) until its JSON fits ``max_chars``."""
    for max_string, max_items in ((400, 40), (200, 20), (100, 10), (60, 5), (30, 3), (20, 2)):
        cut = _cut(value, max_string, max_items)
        if len(canonical_json(cut)) <= max_chars:
            return cut
    return cut


def _cut(value: Any, max_string: int, max_items: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= max_string else value[:max_string] + f"... ({len(value) - max_string} more chars)"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): _cut(v, max_string, max_items) for k, v in items[:max_items]}
        if len(items) > max_items:
            out["..."] = f"{len(items) - max_items} more entries"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [_cut(v, max_string, max_items) for v in value[:max_items]]
        if len(value) > max_items:
            out_list.append(f"... {len(value) - max_items} more items")
        return out_list
    return value
