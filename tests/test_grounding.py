"""Grounding: every rule with a passing and a failing case; the check on real domains."""

from __future__ import annotations

import importlib
import random
import re
from datetime import date

import pytest

from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.simple import Db, SimpleDomain, ToolExecutionError, tool
from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
from apigen_mt.tools.checks.execution import execute_blueprint
from apigen_mt.tools.checks.grounding import argument_leaves, fixed_by_schema, grounding_errors
from apigen_mt.tools.provenance.derivations import derived_amount, derived_date, derived_number, expression_numbers, neighbour_days
from apigen_mt.tools.provenance.knowledge import Knowledge
from apigen_mt.tools.provenance.said import Said

# -- what a text says: each normalisation rule, said and not said ------------------------------------


@pytest.mark.parametrize(("text", "value", "said"), [
    ("You are Yusuf  ROSSI.", "yusuf rossi", True),  # case and whitespace
    ("You are Yusuf Rossi.", "Yusuf Ross", False),
    ("about order W2378156", "#W2378156", True),  # an id's leading # is optional
    ("about order W2378156", "#W2378157", False),
    ("I am Rossi, Yusuf", "Yusuf Rossi", True),  # names split over words
    ("I am Rossi, Yusef", "Yusuf Rossi", False),
    ("it cost $1,000.50", 1000.5, True),  # number formats
    ("it cost $1,000.50", "1000.05", False),
    ("for two passengers", 2, True),  # number words
    ("for two passengers", 3, False),
    ("on May 15th, 2024", "2024-05-15", True),  # date formats
    ("on 15 May", "2024-05-15", True),
    ("on 5/15/2024", "2024-05-15", True),
    ("on the 6th day of October in 2026", "2026-10-06", True),
    ("on the 6th day of October in 2026", "2026-10-07", False),
    ("on May 15th, 2024", "2024-05-16", False),
    ("I live in New York", "NY", True),  # US states
    ("I live in New Jersey", "NY", False),
    ("state NY", "New York", True),
    ("flying in or out of JFK", "JFK", True),  # a short code in capitals must be written so
    ("flying in or out of JFK", "IN", False),
    ("flying in or out of JFK", "OR", False),
])
def test_what_a_text_says(text, value, said):
    assert Said(text).says(value) is said


# -- derivations --------------------------------------------------------------------------------------


def test_sums_and_differences_of_two_known_numbers():
    assert derived_number(15.5, [10, 5.5, 99]) == "the sum of 5.5 and 10"
    assert derived_number(4.5, [10, 5.5]) == "the difference of 10 and 5.5"
    assert derived_number(16, [10, 5.5, 99]) is None
    assert derived_number(10, [10]) is None  # itself is not a derivation


def test_amounts_pair_numbers_of_one_field_or_a_said_number_with_a_known_one():
    by_field = {"price": [218.0, 95.5], "available_seats": [2395.0, 4.0]}
    assert derived_amount(313.5, by_field, []) == "the sum of 95.5 and 218 (price)"
    assert derived_amount(2613, by_field, []) is None  # 218 + 2395: a price and a seat count
    assert derived_amount(2613, by_field, [218]) == "the sum of 218 and 2395"  # the user said 218
    assert derived_amount(2614, by_field, [218]) is None
    assert derived_amount(286.5, by_field, [3]) == "3 x 95.5"  # a said count times a known number
    assert derived_amount(287.5, by_field, [3]) is None


def test_arithmetic_expressions_are_their_numbers():
    assert expression_numbers("2 * ((350 - 122) + (499 - 127))") == ["2", "350", "122", "499", "127"]
    assert expression_numbers("652.61 - 642.72") == ["652.61", "642.72"]
    assert expression_numbers("1960-11-26") is None and expression_numbers("555-1234") is None
    assert expression_numbers("ten minus two") is None


def test_dates_relative_to_today():
    today = date(2024, 5, 15)
    assert derived_date("2024-05-16", today, "i fly tomorrow") == "tomorrow (2024-05-15 + 1 days)"
    assert derived_date("2024-05-18", today, "in 3 days") == "3 days after today (2024-05-15)"
    assert derived_date("2024-05-19", today, "in 3 days") is None
    assert derived_date("2024-05-16", None, "tomorrow") is None


def test_the_day_before_or_after_a_known_date():
    assert neighbour_days(["2024-05-23"], "the day after the original flight") == {"2024-05-24": "the day after 2024-05-23"}
    assert neighbour_days(["2024-05-23"], "the day before") == {"2024-05-22": "the day before 2024-05-23"}
    assert neighbour_days(["2024-05-23"], "the same day") == {}


def test_knowledge_of_returned_values():
    knowledge = Knowledge()
    knowledge.add({"user": {"orders": ["#W1", "#W2"], "payment_methods": {"card_7": {"balance": 10}}},
                   "items": [{"price": 2.5}, {"price": 4}]}, "actions[0] get_user")
    knowledge.add("yusuf_rossi_9620", "actions[1] find_user_id_by_email", "find_user_id_by_email")
    assert knowledge.source("#w2") == "actions[0] get_user" and knowledge.source("card_7") == "actions[0] get_user"
    assert knowledge.source(6.5) == "actions[0] get_user (the total of price)"  # a list's total
    assert knowledge.source(1.5) == "the difference of 4 and 2.5 (items.price)"  # two numbers of one field
    assert knowledge.source(12.5) is None  # a price and a balance: not a pair (see derived_amount)
    assert knowledge.source(12, extra_numbers=[2]) == "the sum of 2 and 10"  # a said number and a known one
    assert knowledge.count_source("2") == "actions[0] get_user (a count)"
    assert list(knowledge.by_field["find_user_id_by_email"]) == ["yusuf_rossi_9620"]  # a bare value keeps its tool
    assert knowledge.source("#W3") is None


def test_an_enum_written_in_the_description_fixes_the_value_and_a_lists_items():
    doors = {"type": "array", "items": {"type": "string"},
             "description": 'The doors. [Enum]: ["driver", "passenger", "rear_left"]'}
    currency = {"type": "string", "description": "The target currency. [Enum]: USD, EUR, JPY"}
    assert fixed_by_schema("USD", currency) and not fixed_by_schema("GBP", currency)
    leaves = list(argument_leaves({"door": ["driver", "trunk"]}, {"properties": {"door": doors}}, ""))
    assert [fixed_by_schema(value, schema) for _, value, schema in leaves] == [True, False]


def test_the_schema_fixes_booleans_enums_constants_defaults_and_empty_values():
    assert fixed_by_schema(True, {}) and fixed_by_schema("", {"type": "string"}) and fixed_by_schema(None, {})
    assert fixed_by_schema("economy", {"enum": ["economy", "business"]})
    assert fixed_by_schema("x", {"const": "x"}) and fixed_by_schema(3, {"default": 3})
    assert not fixed_by_schema("first", {"enum": ["economy", "business"]}) and not fixed_by_schema("x", {"type": "string"})


# -- the check on a small domain: lookups, failures named -------------------------------------------------

DATA = {
    "users": {"u_ada_1": {"user_id": "u_ada_1", "email": "ada@example.org", "orders": ["o7"]},
              "u_bob_2": {"user_id": "u_bob_2", "email": "bob@example.org", "orders": ["o8"]}},
    "orders": {"o7": {"order_id": "o7", "status": "open"}, "o8": {"order_id": "o8", "status": "open"}},
}


@tool
def find_user(db: Db, email: str) -> str:
    """Find a user id by email.

    Args:
        email: The email.
    """
    for user_id, user in db["users"].items():
        if user["email"] == email:
            return user_id
    raise ToolExecutionError("no such user")


@tool
def get_user(db: Db, user_id: str) -> dict:
    """A user's profile and order ids.

    Args:
        user_id: The user id.
    """
    return db["users"][user_id]


@tool(kind="write")
def cancel(db: Db, order_id: str, reason: str) -> dict:
    """Cancel an order.

    Args:
        order_id: The order id.
        reason: Why, in the user's words.
    """
    order = db["orders"][order_id]
    order["status"] = "cancelled"
    return order


SHOP = SimpleDomain("shop", tools=[find_user, get_user, cancel], policy="Help.", data=DATA,
                    free_text_arguments={"cancel": ("reason",)})


def check(instruction: str, actions: list[dict], outputs: list[str] | None = None) -> list[str]:
    raw = {"id": "b", "domain": "shop", "instruction": instruction, "actions": actions, "outputs": outputs or []}
    trace = execute_blueprint(SHOP, actions)
    assert not trace.failed, [c.error for c in trace.failed]
    return grounding_errors(SHOP, raw, trace)


def test_a_value_no_action_returned_is_found_by_lookups():
    """The gold omits the lookups: find_user then get_user give the order id."""
    actions = [{"name": "cancel", "arguments": {"order_id": "o7", "reason": "I changed my mind"}}]
    assert check("I am ada@example.org and want my only order cancelled.", actions, ["cancelled"]) == []


def test_an_order_of_another_user_is_not_obtainable_and_the_failure_names_it():
    actions = [{"name": "cancel", "arguments": {"order_id": "o8", "reason": "I changed my mind"}}]
    [problem] = check("I am ada@example.org and want my only order cancelled.", actions)
    assert problem.startswith("actions[0] cancel.order_id = 'o8' is not obtainable: not said in the instruction, "
                              "not returned by an earlier action, ")
    assert re.search(r"not found by \d+ lookups?, not fixed by the schema nor derived$", problem)


def test_many_gaps_are_named_up_to_a_bound_then_counted():
    actions = [{"name": "get_user", "arguments": {"user_id": f"u_{n}"}} for n in range(9)]
    raw = {"id": "b", "domain": "shop", "instruction": "Hi.", "actions": actions, "outputs": []}
    problems = grounding_errors(SHOP, raw, execute_blueprint(SHOP, actions))
    assert len(problems) == 7 and problems[-1] == "and 3 more values are not obtainable"


def test_an_output_the_assistant_cannot_know_fails():
    actions = [{"name": "find_user", "arguments": {"email": "ada@example.org"}}]
    assert check("I am ada@example.org.", actions, ["u_ada_1"]) == []
    [problem] = check("I am ada@example.org.", actions, ["u_bob_2"])
    assert problem.startswith("outputs[0] = 'u_bob_2' is not obtainable")


# -- real domains -----------------------------------------------------------------------------------------


def test_the_library_examples_are_grounded():
    library = get_domain("library")
    for example in library.example_blueprints():
        raw = example.to_json()
        assert grounding_errors(library, raw, execute_blueprint(library, raw["actions"])) == [], raw["id"]


QUICKSTART_BLUEPRINTS = [  # what `make quickstart` kept on the embedded model before grounding (issue 11)
    {"id": "library-0", "domain": "library", "instruction": "Your training data will be stored in a JSON file named",
     "actions": [{"name": "find_member_by_email", "arguments": {"email": "olivia.brown@example.com"}},
                 {"name": "get_member_details", "arguments": {"member_id": "M1015"}},
                 {"name": "return_book", "arguments": {"loan_id": "L0025"}}], "outputs": []},
    {"id": "library-1", "domain": "library", "instruction": "You are a 48-year-old Korean-American small business "
     "owner in Queens who wants to borrow books on accounting and has never used the library before.",
     "actions": [{"name": "find_member_by_email", "arguments": {"email": "ben.okafor@example.com"}},
                 {"name": "get_member_details", "arguments": {"member_id": "M1002"}},
                 {"name": "renew_loan", "arguments": {"loan_id": "L0018"}},
                 {"name": "return_book", "arguments": {"loan_id": "L0018"}}], "outputs": []},
]


@pytest.mark.parametrize("blueprint", QUICKSTART_BLUEPRINTS, ids=lambda bp: bp["id"])
def test_the_quickstart_blueprints_unrelated_to_their_actions_are_rejected(blueprint):
    library = get_domain("library")
    problems = grounding_errors(library, blueprint, execute_blueprint(library, blueprint["actions"]))
    assert problems and problems[0].startswith("actions[0] find_member_by_email.email = ")


def _gold(name: str) -> list[tuple[dict, object]]:
    from apigen_mt.tools.checks.validate import validate_blueprint

    domain = get_domain(name)
    gold = []
    for split in ("train", "test"):
        for blueprint in tau2_blueprints(name, split):
            raw = blueprint.to_json()
            result = validate_blueprint(domain, raw, grounding=False)
            if result.passed:  # those that reach the grounding stage
                gold.append((raw, result.trace))
    return gold


@pytest.mark.integration
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_gold_tasks_are_grounded_but_the_listed_exceptions(name):
    """Of the gold tasks that reach the grounding stage, all pass but those the domain lists with
    their reasons, and those are at most 5%."""
    exceptions = importlib.import_module(f"apigen_mt.domains.{name}.domain").GROUNDING_EXCEPTIONS
    domain = get_domain(name)
    gold = _gold(name)
    failing = {raw["id"] for raw, trace in gold if grounding_errors(domain, raw, trace)}
    assert failing == set(exceptions)
    assert 1 - len(failing) / len(gold) >= 0.95


@pytest.mark.integration
def test_what_tau2_writes_cost_is_derived_as_their_tools_charge():
    """The airline booking's price and the retail refund, as the domains derive them, are what
    the tools charge and refund (the payments add up to it; the refund is the payment's)."""
    airline = get_domain("airline")
    raw = next(bp.to_json() for s in ("train", "test") for bp in tau2_blueprints("airline", s) if bp.id == "tau2-airline-14")
    booking = execute_blueprint(airline, raw["actions"]).calls[1]
    [(price, how)] = airline.derived_amounts("book_reservation", booking.arguments, booking.before).items()
    assert price == sum(p["amount"] for p in booking.arguments["payment_methods"]) == 2613 and "x 3 passengers" in how
    retail = get_domain("retail")
    env = retail.new_env()
    order = next(o for o in (env.record("orders", key) for key in retail.pristine.orders) if o["status"] == "delivered")
    arguments = {"order_id": order["order_id"], "item_ids": [order["items"][0]["item_id"]],
                 "payment_method_id": order["payment_history"][0]["payment_method_id"]}
    [refund] = retail.derived_amounts("return_delivered_order_items", arguments, env)
    result = env.execute("return_delivered_order_items", arguments)
    assert refund == order["items"][0]["price"] and result["status"] == "return requested"
    assert airline.derived_amounts("book_reservation", {"flights": "bad"}, env) == {}  # invalid: execution says so


def _user_of(raw: dict, trace) -> str | None:
    for call in trace.calls:
        if isinstance(call.arguments, dict) and "user_id" in call.arguments:
            return call.arguments["user_id"]
        if call.name.startswith("find_user_id") and call.ok:
            return call.observation
    return None


@pytest.mark.integration
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_actions_of_one_user_under_another_users_instruction_are_rejected(name):
    domain = get_domain(name)
    pool = [(raw, trace, _user_of(raw, trace)) for raw, trace in _gold(name)
            if not grounding_errors(domain, raw, trace) and _user_of(raw, trace)
            and any(spec.kind is ToolKind.WRITE for spec in map(domain.tool, (a["name"] for a in raw["actions"])) if spec)]
    rng = random.Random(0)
    swaps = 0
    while swaps < 60:
        (first, trace, user), (second, _, other) = rng.sample(pool, 2)
        if user == other:
            continue
        swaps += 1
        assert grounding_errors(domain, {**first, "instruction": second["instruction"]}, trace), (first["id"], second["id"])


# -- lookups hinted by the call's own values; split payments; totals of what was paid --------------------

TILL_DATA = {
    "items": {"i1": {"item_id": "i1", "price": 30}, "i2": {"item_id": "i2", "price": 12}},
    "owners": {"o7": {"order_id": "o7", "user_id": "u_ada_1"}, "o8": {"order_id": "o8", "user_id": "u_bob_2"}},
    "users": {"u_ada_1": {"user_id": "u_ada_1", "email": "ada@example.org", "orders": ["o7"]},
              "u_bob_2": {"user_id": "u_bob_2", "email": "bob@example.org", "orders": ["o8"]}},
}


@tool
def get_item(db: Db, item_id: str) -> dict:
    """An item and its price.

    Args:
        item_id: The item id.
    """
    return db["items"][item_id]


@tool
def get_order_owner(db: Db, order_id: str) -> dict:
    """Who placed an order.

    Args:
        order_id: The order id.
    """
    return db["owners"][order_id]


@tool
def get_account(db: Db, user_id: str) -> dict:
    """A user's account and order ids.

    Args:
        user_id: The user id.
    """
    return db["users"][user_id]


@tool(kind="write")
def buy(db: Db, item_id: str, payments: list[dict]) -> dict:
    """Buy an item, paying with one or more methods.

    Args:
        item_id: The item id.
        payments: Objects with a method id and an amount; the amounts add up to the price.
    """
    if sum(p["amount"] for p in payments) != db["items"][item_id]["price"]:
        raise ToolExecutionError("the payments do not add up to the price")
    return {"item_id": item_id, "paid": len(payments)}


@tool(kind="write")
def transfer_order(db: Db, order_id: str, user_id: str) -> dict:
    """Move an order to its owner's archive.

    Args:
        order_id: The order id.
        user_id: The owner's user id.
    """
    return {"order_id": order_id, "user_id": user_id}


TILL = SimpleDomain("till", tools=[get_item, get_order_owner, get_account, buy, transfer_order],
                    policy="Help.", data=TILL_DATA)


def till_check(instruction: str, actions: list[dict], outputs: list[str] | None = None) -> list[str]:
    raw = {"id": "b", "domain": "till", "instruction": instruction, "actions": actions, "outputs": outputs or []}
    trace = execute_blueprint(TILL, actions)
    assert not trace.failed, [c.error for c in trace.failed]
    return grounding_errors(TILL, raw, trace)


def _buy(item: str, *amounts: float) -> dict:
    return {"name": "buy", "arguments": {"item_id": item, "payments": [
        {"method": f"m{i}", "amount": amount} for i, amount in enumerate(amounts)]}}


def test_the_rest_of_a_split_payment_is_obtainable_when_its_total_is():
    said = "Buy item i1; pay 7 with m0, 4 with m1 and the rest with m2."
    assert till_check(said, [_buy("i1", 7, 4, 19)]) == []  # 19 = the price 30 - 7 - 4
    problems = till_check("Buy it; pay 7 with m0, 4 with m1 and the rest with m2.", [_buy("i1", 7, 4, 19)])
    assert [p.split(" = ")[0] for p in problems] == [  # no item said: no price, so no rest either
        "actions[0] buy.item_id", "actions[0] buy.payments[2].amount"]


def test_what_was_paid_with_one_method_over_the_actions_adds_up():
    actions = [_buy("i1", 30), _buy("i2", 12), _buy("i1", 30)]
    said = "Buy i1, i2 and i1 again, all with m0, and tell me what m0 was charged in all."
    assert till_check(said, actions, ["72"]) == []
    [problem] = till_check(said, actions, ["71"])
    assert problem.startswith("outputs[0] = '71' is not obtainable")


def test_two_unknown_values_of_one_call_do_not_vouch_for_each_other():
    """get_order_owner(o8) returns u_bob_2 and get_account(u_bob_2) returns o8: neither is given."""
    actions = [{"name": "transfer_order", "arguments": {"order_id": "o8", "user_id": "u_bob_2"}}]
    problems = till_check("Please archive my order.", actions)
    assert [p.split(" = ")[0] for p in problems] == ["actions[0] transfer_order.order_id",
                                                     "actions[0] transfer_order.user_id"]
    assert till_check("Please archive my order o8.", actions) == []  # the owner is looked up from the order


def test_two_unknown_parts_of_a_split_do_not_vouch_for_each_other():
    """The total (the price, 30) is known, but neither part is said: only one part may be the rest."""
    [*problems] = till_check("Buy item i1; split it over m0 and m1.", [_buy("i1", 13.5, 16.5)])
    assert [p.split(" = ")[0] for p in problems] == ["actions[0] buy.payments[0].amount", "actions[0] buy.payments[1].amount"]
    assert till_check("Buy item i1; pay 13.5 with m0 and the rest with m1.", [_buy("i1", 13.5, 16.5)]) == []


def test_numbers_of_one_name_in_different_records_are_not_one_field():
    """A seat count and a price both keyed "economy" do not pair; two balances of one map of
    payment methods (keyed by id) do."""
    knowledge = Knowledge()
    knowledge.add({"available_seats": {"economy": 7}, "prices": {"economy": 122}}, "a flight")
    assert knowledge.source(129) is None
    knowledge.add({"payment_methods": {"gift_card_1": {"amount": 198}, "gift_card_2": {"amount": 129}}}, "a user")
    assert knowledge.source(327) == "the sum of 129 and 198 (payment_methods.amount)"



@pytest.mark.integration
def test_bfcl_ground_truth_that_gives_its_values_is_grounded_and_another_questions_is_not():
    """BFCL domains go through the same contract: an entry whose question says every value
    passes; the same calls under another entry's question do not. (Measured on the single-class
    slices of BFCL's ground truth: 21 of 26 scenarios ground; math's misses are numbers another
    class's calls return, outside its slice.)"""
    from apigen_mt.domains.bfcl import data
    from apigen_mt.domains.bfcl.domain import ground_truth_actions

    message = get_domain("bfcl.message")

    def blueprint(entry_id, question_of=None):
        entry = data.get_entry(question_of or entry_id)
        text = "\n".join(m["content"] for turn in entry["question"] for m in turn if m.get("role") == "user")
        actions = [a for turn in ground_truth_actions(entry_id) for a in turn if message.owner(a["name"])]
        return {"id": entry_id, "instruction": text, "actions": actions, "outputs": []}

    grounded = [bp for bp in map(blueprint, message.user_ids()[:8]) if bp["actions"]
                and not grounding_errors(message, bp, execute_blueprint(message, bp["actions"]))]
    assert len(grounded) >= 2
    first, second = grounded[0]["id"], grounded[1]["id"]
    swapped = blueprint(first, question_of=second)
    assert grounding_errors(message, swapped, execute_blueprint(message, swapped["actions"]))



@pytest.mark.integration
@pytest.mark.parametrize(("name", "entry_id", "needs_words"), [
    ("bfcl.vehicle", "multi_turn_base_50", False),   # "all of my car doors": the described enum fixes every value
    ("bfcl.trading", "multi_turn_base_100", True),   # "10 share of Nvidia worth of money": a lookup by name, 10 x price
    ("bfcl.trading", "multi_turn_base_104", True),   # 'Quasar Ltd.': a quoted company name looked up
    ("bfcl.file_system", "multi_turn_base_0", True),  # cd ..: the tool's convention; the files are named
])
def test_bfcl_paraphrases_that_rules_can_trace(name, entry_id, needs_words):
    from apigen_mt.domains.bfcl import data
    from apigen_mt.domains.bfcl.domain import ground_truth_actions

    domain = get_domain(name)
    entry = data.get_entry(entry_id)
    text = "\n".join(m["content"] for turn in entry["question"] for m in turn if m.get("role") == "user")
    actions = [a for turn in ground_truth_actions(entry_id) for a in turn if domain.owner(a["name"])]
    raw = {"instruction": text, "actions": actions, "outputs": []}
    assert grounding_errors(domain, raw, execute_blueprint(domain, actions)) == []
    assert bool(grounding_errors(domain, {**raw, "instruction": "Do it."}, execute_blueprint(domain, actions))) is needs_words
