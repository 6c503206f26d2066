"""Grounded walks: chains run on real entities, so every returned walk executes as is."""

from __future__ import annotations

import json
import random
import re

import pytest
from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.simple import Db, SimpleDomain, ToolExecutionError, tool
from apigen_mt.tools.api_graph.pool import fill_arguments, mostly_keyed_map, new_pool, grow_pool, user_pool
from apigen_mt.tools.checks.grounding import required_values
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.grounded_walk import GroundedWalk, as_blueprint, grounded_walk
from fake_shop import ORDERS, USERS, ShopDomain

SEEDS = range(30)
DOMAINS = ("retail", "airline", "library", "bfcl.file_system")


@pytest.fixture(scope="module")
def walks() -> dict[str, list[GroundedWalk]]:
    """The walks found for each seed of :data:`SEEDS`, per domain (None-free)."""
    found = {}
    for name in DOMAINS:
        domain = get_domain(name)
        found[name] = [w for w in (grounded_walk(domain, random.Random(seed)) for seed in SEEDS) if w]
    return found


def test_same_seed_same_walk():
    domain = get_domain("retail")
    for seed in (0, 7, 21):
        first = grounded_walk(domain, random.Random(seed))
        second = grounded_walk(domain, random.Random(seed))
        assert first is not None and first.to_json() == second.to_json()
    assert grounded_walk(domain, random.Random(1)).to_json() != grounded_walk(domain, random.Random(2)).to_json()


@pytest.mark.parametrize("name", DOMAINS)
def test_walks_are_found_and_execute_cleanly(walks, name):
    domain = get_domain(name)
    found = walks[name]
    assert len(found) >= 5, f"{name}: only {len(found)} walks out of {len(SEEDS)} seeds"
    for walk in found:
        assert len(walk.actions) == len(walk.chain) == len(walk.observations)
        assert [a["name"] for a in walk.actions] == walk.chain
        assert domain.tool(walk.actions[-1]["name"]).kind == ToolKind.WRITE
        assert all(isinstance(o, str) for o in walk.observations)
        json.dumps(walk.to_json())  # plain JSON
        result = validate_blueprint(domain, as_blueprint(walk, domain, "Do it."))
        assert result.stage not in ("format", "execution"), result.reasons
        assert result.diff, "the walk's writes change the state"


def test_arguments_name_real_entities(walks):
    retail = get_domain("retail")
    users = set(retail.user_ids())
    for walk in walks["retail"]:
        assert walk.user_id in users
        context = json.dumps(retail.user_context(walk.user_id))
        for action in walk.actions:
            if "user_id" in action["arguments"]:
                assert action["arguments"]["user_id"] in users
            if "order_id" in action["arguments"]:  # one of this user's own orders
                assert json.dumps(action["arguments"]["order_id"]) in context
    airline = get_domain("airline")
    for walk in walks["airline"]:
        for action in walk.actions:
            reservation = action["arguments"].get("reservation_id")
            if reservation is not None:
                assert airline.new_env().record("reservations", reservation) is not None


def test_failed_calls_are_retried_and_values_never_made_up():
    """In the fake shop only delivered orders can be refunded, and half the orders are pending.

    ``cancel_order`` also needs a ``reason`` that neither the data nor its schema gives, so
    no walk may end in it: values are looked up, never invented.
    """
    shop = ShopDomain()
    for seed in range(20):
        walk = grounded_walk(shop, random.Random(seed))
        assert walk is not None
        last = walk.actions[-1]
        assert last["name"] == "refund_order"
        order = last["arguments"]["order_id"]
        assert order in USERS[walk.user_id]["orders"]  # the user's own order, not anyone's
        assert ORDERS[order]["status"] == "delivered"


@tool
def get_note(db: Db, note_id: str) -> dict:
    """Look a note up.

    Args:
        note_id: The note id, such as 'N001'.
    """
    note = db["notes"].get(note_id)
    if note is None:
        raise ToolExecutionError("Note not found")
    return note


@tool(kind="write")
def wipe(db: Db, secret_code: str) -> str:
    """Delete every note; needs a code that no tool reveals.

    Args:
        secret_code: The code.
    """
    raise ToolExecutionError("Wrong code")


def test_no_reachable_write_gives_none():
    notes = SimpleDomain(
        "notes",
        tools=[get_note, wipe],
        data={"notes": {"N001": {"note_id": "N001", "text": "hi"}}},
        policy="Be nice.",
        user_table="notes",
    )
    assert grounded_walk(notes, random.Random(0), tries=5) is None


def test_pool_helpers():
    spec = get_domain("retail").tool("find_user_id_by_name_zip")
    context = {"user": {"name": {"first_name": "Ann", "last_name": "Lee"}, "address": {"address1": "1 Main", "city": "Oslo", "zip": "12345"}}}
    assert "zip" not in user_pool(context)  # the graph's reading: address1 makes "address" look id-keyed
    assert user_pool(context, mostly_keyed_map)["zip"] == ["12345"]
    assert mostly_keyed_map({"gift_card_1": {}, "credit_card_2": {}}) and not mostly_keyed_map({"a": 1, "b2": 2, "c": 3})
    pool = new_pool()
    grow_pool(pool, context, "user", mostly_keyed_map)
    grow_pool(pool, {"first_name": "Bea", "zip": "12345"}, "lookup", mostly_keyed_map)
    assert pool["first_name"] == [("Ann", "user"), ("Bea", "lookup")]
    assert pool["zip"] == [("12345", "user")]  # known values keep their first source
    assert fill_arguments(spec, pool) == (
        {"first_name": "Ann", "last_name": "Lee", "zip": "12345"},
        {"first_name": "user", "last_name": "user", "zip": "user"},
    )
    drawn = {fill_arguments(spec, pool, rng=random.Random(seed))[0]["first_name"] for seed in range(20)}
    assert drawn == {"Ann", "Bea"}


@tool
def get_vault(db: Db) -> dict:
    """The vault: whether it is open, and what it holds."""
    return db["vault"]["vault"]


@tool(kind="write")
def open_vault(db: Db, pin: str) -> str:
    """Open the vault with the owner's PIN (any four digits the owner chose).

    Args:
        pin: The owner's PIN.
    """
    if not (len(pin) == 4 and pin.isdigit()):
        raise ToolExecutionError("a PIN is four digits")
    db["vault"]["vault"]["open"] = True
    return "open"


@tool(kind="write")
def withdraw(db: Db, amount: float) -> dict:
    """Take money out of the open vault.

    Args:
        amount: How much to take.
    """
    vault = db["vault"]["vault"]
    if not vault["open"]:
        raise ToolExecutionError("the vault is closed")
    if amount > vault["cash"]:
        raise ToolExecutionError("not that much in it")
    vault["cash"] -= amount
    return {"cash": vault["cash"]}


def _vault(**options):
    return SimpleDomain("vault", tools=[get_vault, open_vault, withdraw], policy="Be careful.",
                        data={"vault": {"vault": {"open": False, "cash": 100.0}}}, **options)


def test_the_user_s_stated_values_open_what_no_record_holds():
    assert grounded_walk(_vault(), random.Random(0), tries=5) is None  # no PIN anywhere
    domain = _vault(stated_arguments={"open_vault": [{"pin": "2468"}], "withdraw": [{"amount": 40.0}, {"amount": 500.0}]})
    from apigen_mt.tools.api_graph import api_graph

    assert api_graph(domain).nodes["withdraw"]["needs"] == "open_vault"  # closed before, open after
    walks = [grounded_walk(domain, random.Random(seed)) for seed in range(10)]
    assert all(w is not None and w.actions[1] == {"name": "open_vault", "arguments": {"pin": "2468"}} for w in walks)
    withdrawals = [w.actions[-1]["arguments"] for w in walks if w.chain[-1] == "withdraw"]
    assert withdrawals and all(a == {"amount": 40.0} for a in withdrawals)  # 500 fails: more than it holds
    assert "2468" in required_values(domain, walks[0].actions)  # the instruction must say the PIN


@pytest.mark.parametrize("stated, message", [
    ({"close_vault": [{"pin": "1"}]}, "unknown tool 'close_vault'"),
    ({"open_vault": [{"code": "1234"}]}, "does not take: ['code']"),
    ({"open_vault": ["1234"]}, "not a dict of arguments"),
])
def test_bad_stated_arguments_are_named(stated, message):
    from apigen_mt.domains.base import DomainError

    with pytest.raises(DomainError, match=re.escape(message)):
        _vault(stated_arguments=stated)
