"""Measures which BFCL functions read and which write, and writes tool_kinds.json.

BFCL marks no function as read or write, so the split is measured:

1. **measured** - every ground-truth call of the four multi-turn files (base, miss_func,
   miss_param, long_context; 800 entries) is replayed turn by turn in the entry's own
   environment (``BFCLDomain.for_entry``). A function is ``write`` if any of its calls
   changed the public state of its class (the attributes BFCL's state checker compares),
   else ``read``.
2. **probe** - a function the ground truth never calls is run on a pristine single-class
   environment after a short setup (log in, press the brake, ...) with plausible arguments
   (:data:`PROBES`): ``write`` if any probe changed the public state, ``read`` if none did
   and at least one succeeded.
3. **code** - a function whose probes all fail is decided by reading its code
   (:data:`CODE_DECISIONS`, each with the reason).

Private state (the file system's current directory, the seeded random generators) is not
state in BFCL's sense; calls that change only private state are counted and noted (``cd``
is ``read``: it moves ``_current_dir`` only). MathAPI has no state at all: all ``read``.

Run ``python -m apigen_mt.domains.bfcl.classify`` to regenerate the file (about 2 s);
``--check`` compares instead of writing and exits 1 when the file is stale.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import ToolError
from apigen_mt.domains.bfcl import data
from apigen_mt.domains.bfcl.domain import (
    TOOL_KINDS_PATH,
    BFCLDomain,
    BFCLEnvironment,
    ground_truth_actions,
    public_state,
)
from apigen_mt.tools.jsonable import to_jsonable

Args = dict[str, Any] | Callable[[BFCLEnvironment], dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    """Setup calls (each ``(name, args)``), then the probed call's arguments."""

    arguments: Args = field(default_factory=dict)
    setup: tuple[tuple[str, Args], ...] = ()


def _twitter_login(env: BFCLEnvironment) -> dict[str, Any]:
    api = env.instances["TwitterAPI"]
    return {"username": api.username, "password": api.password}


def _travel_token(env: BFCLEnvironment) -> dict[str, Any]:
    return {"access_token": env.instances["TravelAPI"].access_token}


def _first_user_id(env: BFCLEnvironment) -> dict[str, Any]:
    return {"user_id": next(iter(env.instances["MessageAPI"].user_map.values()))}


_MSG_LOGIN = (("message_login", _first_user_id),)
_TWEET_LOGIN = (("authenticate_twitter", _twitter_login),)
_TICKET_LOGIN = (("ticket_login", {"username": "probe", "password": "probe"}),)
_TICKET_WITH_ONE = _TICKET_LOGIN + (("create_ticket", {"title": "probe ticket"}),)

#: Probes for functions the ground truth may never call, by class and function.
PROBES: dict[str, dict[str, list[Probe]]] = {
    "GorillaFileSystem": {
        "pwd": [Probe(), Probe(setup=(("cd", {"folder": "document"}),))],
        "ls": [Probe(), Probe({"a": True})],
        "du": [Probe({"human_readable": True})],
        "find": [Probe({"path": ".", "name": "report"})],
    },
    "MathAPI": {
        "absolute_value": [Probe({"number": -3.5})],
        "add": [Probe({"a": 1.5, "b": 2})],
        "divide": [Probe({"a": 6, "b": 3})],
        "imperial_si_conversion": [Probe({"value": 10, "unit_in": "miles", "unit_out": "km"})],
        "logarithm": [Probe({"value": 1000, "base": 10, "precision": 5})],
        "max_value": [Probe({"numbers": [1, 5, 3]})],
        "mean": [Probe({"numbers": [1, 2, 3]})],
        "min_value": [Probe({"numbers": [1, 5, 3]})],
        "multiply": [Probe({"a": 3, "b": 4})],
        "percentage": [Probe({"part": 1, "whole": 4})],
        "power": [Probe({"base": 2, "exponent": 10})],
        "round_number": [Probe({"number": 3.14159, "decimal_places": 2})],
        "si_unit_conversion": [Probe({"value": 1500, "unit_in": "m", "unit_out": "km"})],
        "square_root": [Probe({"number": 16, "precision": 3})],
        "standard_deviation": [Probe({"numbers": [1, 2, 3, 4]})],
        "subtract": [Probe({"a": 5, "b": 3})],
        "sum_values": [Probe({"numbers": [1, 2, 3]})],
    },
    "MessageAPI": {
        "get_message_stats": [Probe(setup=_MSG_LOGIN)],
        "list_users": [Probe()],
        "message_get_login_status": [Probe(), Probe(setup=_MSG_LOGIN)],
        "search_messages": [Probe({"keyword": "file"}, _MSG_LOGIN)],
        "get_user_id": [Probe({"user": "Alice"})],
        "view_messages_sent": [Probe(setup=_MSG_LOGIN)],
    },
    "TwitterAPI": {
        "follow_user": [Probe({"username_to_follow": "probe_user"}, _TWEET_LOGIN)],
        "unfollow_user": [
            Probe(lambda env: {"username_to_unfollow": env.instances["TwitterAPI"].following_list[0]}, _TWEET_LOGIN)
        ],
        "get_tweet": [Probe({"tweet_id": 0})],
        "get_tweet_comments": [
            Probe({"tweet_id": 0}),
            Probe({"tweet_id": 0}, _TWEET_LOGIN + (("comment", {"tweet_id": 0, "comment_content": "probe"}),)),
        ],
        "get_user_stats": [Probe(lambda env: {"username": env.instances["TwitterAPI"].username})],
        "get_user_tweets": [Probe(lambda env: {"username": env.instances["TwitterAPI"].username})],
        "list_all_following": [Probe(setup=_TWEET_LOGIN)],
        "posting_get_login_status": [Probe(), Probe(setup=_TWEET_LOGIN)],
        "search_tweets": [Probe({"keyword": "analysis"})],
    },
    "TicketAPI": {
        "get_user_tickets": [Probe(setup=_TICKET_WITH_ONE), Probe({"status": "Open"}, _TICKET_WITH_ONE)],
        "logout": [Probe(setup=_TICKET_LOGIN)],
        "ticket_get_login_status": [Probe(), Probe(setup=_TICKET_LOGIN)],
        "get_ticket": [Probe({"ticket_id": 1}, _TICKET_WITH_ONE)],
    },
    "TradingBot": {
        "filter_stocks_by_price": [Probe({"stocks": ["AAPL", "GOOG", "NVDA"], "min_price": 100, "max_price": 500})],
        "get_order_history": [Probe()],
        "get_symbol_by_name": [Probe({"name": "Apple"})],
        "get_transaction_history": [
            Probe(),
            Probe({"start_date": "2024-01-01", "end_date": "2024-12-31"}, (("fund_account", {"amount": 100}),)),
        ],
        "notify_price_change": [Probe({"stocks": ["AAPL", "TSLA"], "threshold": 0.1})],
        "trading_get_login_status": [Probe()],
        "trading_login": [
            Probe({"username": "probe", "password": "probe"}, (("trading_logout", {}),)),
            Probe({"username": "probe", "password": "probe"}),
        ],
        "trading_logout": [Probe()],
        "get_current_time": [Probe()],
    },
    "TravelAPI": {
        "get_all_credit_cards": [Probe()],
        "get_booking_history": [Probe(_travel_token)],
        "get_budget_fiscal_year": [Probe(), Probe({"lastModifiedAfter": "2024-01-01T00:00:00"})],
        "travel_get_login_status": [Probe()],
        "list_all_airports": [Probe()],
        "get_nearest_airport_by_city": [Probe({"location": "Rivermist"})],
    },
    "VehicleControlAPI": {
        "adjustClimateControl": [
            Probe({"temperature": 18.0, "unit": "celsius", "fanSpeed": 30, "mode": "cool"}),
            Probe({"temperature": 70, "unit": "fahrenheit"}),
        ],
        "display_log": [Probe({"messages": ["probe message"]})],
        "get_current_speed": [Probe()],
        "get_outside_temperature_from_weather_com": [Probe()],
        "get_outside_temperature_from_google": [Probe()],
        "releaseBrakePedal": [Probe(setup=(("pressBrakePedal", {"pedalPosition": 1.0}),))],
        "check_tire_pressure": [Probe()],
        "find_nearest_tire_shop": [Probe()],
    },
}

#: Functions whose probes cannot succeed, decided by reading their code.
CODE_DECISIONS: dict[str, dict[str, tuple[str, str]]] = {
    "VehicleControlAPI": {
        "get_outside_temperature_from_weather_com": (
            "read",
            "its body is `return {\"error\": 404}`: it touches no attribute at all",
        ),
    },
}


def _resolve(arguments: Args, env: BFCLEnvironment) -> dict[str, Any]:
    return arguments(env) if callable(arguments) else dict(arguments)


def private_fingerprint(instance: Any) -> dict[str, Any]:
    """Private attributes (``_current_dir``, ``_random``, ...) in a comparable form."""
    out = {}
    for name, value in vars(instance).items():
        if not name.startswith("_") or name == "_api_description":
            continue
        if isinstance(value, random.Random):
            out[name] = repr(value.getstate())
        elif type(value).__name__ in ("Directory", "File"):
            out[name] = id(value)  # where it points (the current directory), not its content
        else:  # floats and dicts (TravelAPI's _flight_cost_lookup): the generic conversion suffices
            out[name] = json.dumps(to_jsonable(value), sort_keys=True, default=str)
    return out


@dataclass
class Tally:
    calls: int = 0
    state_changing_calls: int = 0
    errors: int = 0
    private_only_changes: int = 0
    private_attributes: set[str] = field(default_factory=set)
    entries: set[str] = field(default_factory=set)

    def add(self, changed: bool, private_changed: set[str], failed: bool, entry_id: str | None = None) -> None:
        self.calls += 1
        self.state_changing_calls += changed
        self.private_only_changes += bool(private_changed) and not changed
        self.private_attributes |= private_changed
        self.errors += failed
        if entry_id:
            self.entries.add(entry_id)


def _run(env: BFCLEnvironment, name: str, arguments: dict[str, Any]) -> tuple[bool, set[str], bool]:
    """(public state changed, private attributes changed, call failed) of one call."""
    owner = env.domain.owner(name)
    instance = env.instances[owner] if owner else None
    before = public_state(instance) if instance is not None else None
    private_before = private_fingerprint(instance) if instance is not None else None
    failed = False
    try:
        env.execute(name, arguments)
    except ToolError:
        failed = True
    if instance is None:
        return False, set(), True
    private_after = private_fingerprint(instance)
    private_changed = {k for k in private_before.keys() | private_after.keys() if private_before.get(k) != private_after.get(k)}
    return public_state(instance) != before, private_changed, failed


def measure_ground_truth() -> dict[tuple[str, str], Tally]:
    """Replays all ground truth; a tally per (class, function)."""
    tallies: dict[tuple[str, str], Tally] = {}
    for entry in data.all_entries():
        domain = BFCLDomain.for_entry(entry, exclude_functions=False)
        env = domain.new_env()
        for turn in ground_truth_actions(entry["id"]):
            for action in turn:
                owner = domain.owner(action["name"])
                if owner is None:
                    raise SystemExit(f"{entry['id']}: ground truth calls {action['name']!r}, not a function of its classes")
                changed, private_changed, failed = _run(env, action["name"], action["arguments"])
                tallies.setdefault((owner, action["name"]), Tally()).add(changed, private_changed, failed, entry["id"])
    return tallies


def probe(class_name: str, function: str) -> Tally | None:
    """Runs the function's probes on fresh pristine environments; None without probes."""
    probes = PROBES.get(class_name, {}).get(function)
    if not probes:
        return None
    domain = BFCLDomain.for_class(class_name)
    tally = Tally()
    for item in probes:
        env = domain.new_env()
        for setup_name, setup_args in item.setup:
            env.execute(setup_name, _resolve(setup_args, env))  # a failing setup is a bug in PROBES
        changed, private_changed, failed = _run(env, function, _resolve(item.arguments, env))
        tally.add(changed, private_changed, failed)
    return tally


def classify() -> dict[str, Any]:
    """The content of tool_kinds.json."""
    measured = measure_ground_truth()
    classes: dict[str, dict[str, Any]] = {}
    for class_name in data.CLASS_NAMES:
        functions: dict[str, Any] = {}
        for doc in data.func_docs(class_name):
            name = doc["name"]
            tally = measured.get((class_name, name))
            if tally is not None:
                info = {
                    "kind": "write" if tally.state_changing_calls else "read",
                    "decided_by": "measured",
                    "calls": tally.calls,
                    "state_changing_calls": tally.state_changing_calls,
                    "error_calls": tally.errors,
                    "entries": len(tally.entries),
                }
            else:
                tally = probe(class_name, name)
                code = CODE_DECISIONS.get(class_name, {}).get(name)
                if tally is not None and (tally.state_changing_calls or tally.errors < tally.calls):
                    info = {
                        "kind": "write" if tally.state_changing_calls else "read",
                        "decided_by": "probe",
                        "calls": 0,
                        "probe_calls": tally.calls,
                        "probe_state_changing_calls": tally.state_changing_calls,
                        "probe_error_calls": tally.errors,
                    }
                elif code is not None:
                    info = {"kind": code[0], "decided_by": "code", "calls": 0, "reason": code[1]}
                    if tally is not None:
                        info["probe_calls"], info["probe_error_calls"] = tally.calls, tally.errors
                else:
                    raise SystemExit(
                        f"{class_name}.{name} is never called by the ground truth and has no working probe: "
                        "add one to PROBES or a decision to CODE_DECISIONS in classify.py"
                    )
            if tally is not None and tally.private_attributes:
                info["private_attributes_changed"] = sorted(tally.private_attributes)
                info["private_only_changes"] = tally.private_only_changes
            if tally is not None and tally.private_attributes and not tally.state_changing_calls:
                info["note"] = "changes private attributes only, which BFCL's state checker does not compare"
            functions[name] = info
        classes[class_name] = functions
    totals = {
        class_name: {kind: sum(1 for f in functions.values() if f["kind"] == kind) for kind in ("read", "write", "other")}
        for class_name, functions in classes.items()
    }
    return {
        "about": (
            "Read/write kinds of BFCL's multi-turn functions, generated by "
            "`python -m apigen_mt.domains.bfcl.classify` (do not edit by hand). write = changes the "
            "public state (attributes not starting with '_', what BFCL's state checker compares). "
            "decided_by: measured = from replaying all ground-truth calls of the base, miss_func, "
            "miss_param and long_context files; probe = never called there, run on a pristine "
            "environment with plausible arguments; code = decided by reading the function."
        ),
        "source": {"bfcl_eval": _bfcl_version(), "entries": len(data.all_entries())},
        "totals": totals,
        "classes": classes,
    }


def _bfcl_version() -> str:
    try:
        from importlib.metadata import version

        return version("bfcl-eval")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


def render(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with tool_kinds.json instead of writing it")
    parser.add_argument("--output", default=str(TOOL_KINDS_PATH), help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render(classify())
    if args.check:
        current = TOOL_KINDS_PATH.read_text(encoding="utf-8") if TOOL_KINDS_PATH.exists() else ""
        if current != text:
            print(f"{TOOL_KINDS_PATH} is stale: run python -m apigen_mt.domains.bfcl.classify", file=sys.stderr)
            return 1
        print("tool_kinds.json is up to date")
        return 0
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(text)
    result = json.loads(text)
    for class_name, counts in result["totals"].items():
        print(f"{class_name:20s} read {counts['read']:2d}  write {counts['write']:2d}  other {counts['other']:2d}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
