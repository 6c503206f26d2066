"""Grounded walks on the BFCL classes (issue 12): executed chains that reach writes (MathAPI,
stateless, has none: its chains end in the calculation the user asks for), policy-clean, for
at least 90% of 30 seeds on each of the eight classes. Ticket and travel reach their writes
through the values a user states (credentials, routes, dates) and the preconditions the write
probes find (a login before a ticket, a lower budget before a booking)."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("bfcl_eval")

from apigen_mt.domains.bfcl.data import SHORT_NAMES  # noqa: E402
from apigen_mt.domains.registry import get_domain  # noqa: E402
from apigen_mt.tools.api_graph import api_graph  # noqa: E402
from apigen_mt.tools.checks.validate import validate_blueprint  # noqa: E402
from apigen_mt.tools.grounded_walk import as_blueprint, grounded_walk  # noqa: E402

SEEDS = range(30)


def _clean_walks(name):
    domain = get_domain(name)
    walks = [grounded_walk(domain, random.Random(seed)) for seed in SEEDS]
    return [w for w in walks if w is not None
            and validate_blueprint(domain, as_blueprint(w, domain, "Do it.")).stage not in ("format", "execution", "policy")]


@pytest.mark.parametrize("name", [f"bfcl.{short}" for short in sorted(SHORT_NAMES)])
def test_walks_reach_a_write_for_90_percent_of_the_seeds(name):
    assert len(_clean_walks(name)) >= 27


def test_a_ticket_is_opened_after_logging_in_and_closed_by_the_id_it_got():
    graph = api_graph(get_domain("bfcl.ticket"))
    assert graph.nodes["create_ticket"]["needs"] == "ticket_login"  # it fails before, with values to hand
    assert graph.edges["create_ticket", "close_ticket"]["arguments"] == "ticket_id"  # the new ticket's id
    assert not graph.nodes["close_ticket"]["needs"]  # a value flow, not a precondition
    chains = [w.chain for w in _clean_walks("bfcl.ticket")]
    assert all(c.index("ticket_login") < c.index("create_ticket") for c in chains if "create_ticket" in c)
    assert any("create_ticket" in c for c in chains)


def test_a_flight_is_booked_once_the_budget_allows_it():
    graph = api_graph(get_domain("bfcl.travel"))
    assert "set_budget_limit" in graph.nodes["book_flight"]["needs"].split(",")  # the budget exceeds the balance
    booked = [w for w in _clean_walks("bfcl.travel") if w.chain[-1] == "book_flight"]
    assert booked and all({"set_budget_limit", "register_credit_card"} & set(w.chain) for w in booked)


def test_calculations_chain_results_and_end_in_the_answer():
    walks = _clean_walks("bfcl.math")
    assert all(len(w.actions) >= 2 for w in walks)
    fed = [w for w in walks if json.loads(w.observations[0])["result"] in w.actions[1]["arguments"].values()]
    assert len(fed) >= len(walks) // 2  # the first result feeds the next calculation


def test_preconditions_name_only_what_must_run_first():
    """A write that failed with values to hand, then succeeded after another: that one is its
    precondition; not the writes probed after it, nor a login that changed nothing."""
    posting = api_graph(get_domain("bfcl.posting"))
    needs = {name: value for name, value in posting.nodes(data="needs") if value}
    assert needs and set(needs.values()) == {"authenticate_twitter"}
    trading = api_graph(get_domain("bfcl.trading"))  # its pristine user is logged in already
    assert not trading.nodes["trading_login"]["needs"]


def test_the_vehicle_is_controlled_after_checking_its_state():
    assert api_graph(get_domain("bfcl.vehicle")).has_edge("displayCarStatus", "lockDoors")  # an effect edge
    assert len({w.chain[-1] for w in _clean_walks("bfcl.vehicle")}) >= 3


def test_a_user_found_in_a_list_of_users_is_logged_in():
    graph = api_graph(get_domain("bfcl.message"))
    assert graph.has_edge("list_users", "get_user_id") and graph.has_edge("get_user_id", "message_login")
    assert not graph.has_edge("add_contact", "message_login")  # forbidden: the new contact is not who logs in
    chains = {tuple(w.chain) for w in _clean_walks("bfcl.message")}
    assert {("list_users", "get_user_id", "message_login"), ("get_user_id", "message_login")} & chains
    assert all(chain[chain.index("message_login") - 1] == "get_user_id" for chain in chains if "message_login" in chain)
