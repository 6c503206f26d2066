"""The API dependency graph: evidence, pruning, entry points, random walks and exports."""

from __future__ import annotations

import ast
import itertools
import json
import random
import re
from pathlib import Path

import networkx as nx
import pytest
from apigen_mt.tools.api_graph import (
    ApiGraph,
    api_graph,
    build_api_graph,
    random_walk,
    shape,
    to_dot,
)
from apigen_mt.tools import api_graph as api_graph_package
from apigen_mt.tools.api_graph import values
from fake_shop import ShopDomain


@pytest.fixture(scope="module")
def shop_graph():
    return build_api_graph(ShopDomain())


@pytest.fixture(scope="module")
def retail_graph(retail):
    return api_graph(retail)


@pytest.fixture(scope="module")
def airline_graph(airline):
    return api_graph(airline)


def _evidence_types(graph, source, target):
    return {item["type"] for item in graph.edges[source, target]["evidence"]}


# -- the fake shop ----------------------------------------------------------------------------
def test_shop_edges_come_from_names_values_and_ids(shop_graph):
    g = shop_graph
    assert set(g.nodes) == {"find_user_by_email", "get_user", "get_order", "cancel_order", "refund_order"}
    assert "note" in g.graph["excluded"]  # "other" tools are not chain members
    assert {"returns", "gold_flow"} <= _evidence_types(g, "find_user_by_email", "get_user")
    assert {"field", "gold_flow"} <= _evidence_types(g, "get_user", "get_order")  # orders: [...] -> order_id
    for write in ("cancel_order", "refund_order"):
        assert g.has_edge("get_order", write)
        assert "order_id" in g.edges["get_order", write]["arguments"]
    for _, _, data in g.edges(data=True):
        assert 0 < data["weight"] <= 1 and data["evidence"]


def test_shop_pruning_is_data_driven(shop_graph):
    g = shop_graph
    pruned = {(p["source"], p["target"]): p["reason"] for p in g.graph["pruned"]}
    # a cancelled order can never be refunded, a refunded one never cancelled
    assert not g.has_edge("cancel_order", "refund_order")
    assert (
        "status" in pruned[("cancel_order", "refund_order")]
        and "cancelled" in pruned[("cancel_order", "refund_order")]
    )
    assert not g.has_edge("refund_order", "cancel_order")
    # get_user already outputs the user id that find_user_by_email resolves
    assert not g.has_edge("get_user", "find_user_by_email")
    assert "redundant" in pruned[("get_user", "find_user_by_email")]
    assert g.entry_points == ["find_user_by_email"]


def test_domain_hooks_forbid_edges_and_name_entries():
    class Strict(ShopDomain):
        forbidden_edges = (("get_order", "refund_order"), ("*", "cancel_order"))
        entry_tools = ("get_user",)

    g = build_api_graph(Strict())
    assert not g.has_edge("get_order", "refund_order")
    assert not any(t == "cancel_order" for _, t in g.edges)
    assert all("forbidden" in p["reason"] for p in g.graph["pruned"] if p["target"] == "cancel_order")
    assert g.entry_points == ["get_user"]

    class ByMethod(ShopDomain):
        def forbidden_edges(self):
            return [("get_user", "get_order")]

    assert not build_api_graph(ByMethod()).has_edge("get_user", "get_order")


def test_graph_without_examples_uses_probes_and_user_data():
    g = build_api_graph(ShopDomain(examples=[]))
    assert g.graph["gold_traces"] == 0 and g.graph["probe_calls"] > 0
    assert g.has_edge("find_user_by_email", "get_user") and g.has_edge("get_order", "cancel_order")
    assert "find_user_by_email" in g.entry_points  # its argument (email) is in the users' records


def test_walks_on_the_shop(shop_graph):
    rng = random.Random(0)
    walks = [random_walk(shop_graph, rng, 5) for _ in range(50)]
    assert all(
        w is not None and w[0] == "find_user_by_email" and w[-1] in ("cancel_order", "refund_order")
        for w in walks
    )
    assert random_walk(shop_graph, rng, 1) is None  # an entry point (a read) cannot be a chain alone
    assert random_walk(shop_graph, rng, 6, end="note") is None  # not a chain member
    assert random_walk(shop_graph, rng, 6, start="get_user", end="find_user_by_email") is None  # a read
    dead_end = nx.DiGraph()
    dead_end.add_node("look", kind="read", entry=True)
    dead_end.add_node("other_look", kind="read")
    dead_end.add_node("change", kind="write")
    dead_end.add_edges_from([("look", "other_look"), ("change", "look")])
    assert random_walk(dead_end, rng, 6) is None  # no write reachable from the entry point


def test_shape():
    assert re.fullmatch(shape("#W0000000"), "#W2378156")
    assert not re.fullmatch(shape("#W0000000"), "#W23781")
    assert re.fullmatch(shape("credit_card_7815826"), "gift_card_1234567")


# -- retail and airline -----------------------------------------------------------------------
@pytest.mark.integration
def test_retail_key_edges(retail_graph):
    g = retail_graph
    for source, target in [
        ("find_user_id_by_email", "get_user_details"),
        ("find_user_id_by_name_zip", "get_user_details"),
        ("get_user_details", "get_order_details"),
        ("get_order_details", "cancel_pending_order"),
        ("get_order_details", "return_delivered_order_items"),
        ("get_order_details", "get_product_details"),
        ("get_product_details", "exchange_delivered_order_items"),
        ("list_all_product_types", "get_product_details"),
    ]:
        assert g.has_edge(source, target), (source, target)
    assert {"returns", "gold_flow"} <= _evidence_types(g, "find_user_id_by_email", "get_user_details")
    assert {"field", "gold_flow"} <= _evidence_types(g, "get_user_details", "get_order_details")
    # the order feeds order id, item ids and payment method; a product only item ids
    assert (
        g.edges["get_order_details", "return_delivered_order_items"]["weight"]
        > g.edges["get_product_details", "return_delivered_order_items"]["weight"]
    )
    assert {"calculate", "transfer_to_human_agents"} <= set(g.graph["excluded"])
    assert not {"calculate", "transfer_to_human_agents"} & set(g.nodes)
    assert {"find_user_id_by_email", "find_user_id_by_name_zip"} <= set(g.entry_points)
    assert len(g.read_tools) == 6 and len(g.write_tools) == 7


@pytest.mark.integration
def test_retail_dead_orders_are_pruned(retail_graph):
    g = retail_graph
    for source, target in [
        ("cancel_pending_order", "modify_pending_order_items"),
        ("cancel_pending_order", "return_delivered_order_items"),
        ("modify_pending_order_items", "cancel_pending_order"),
        ("return_delivered_order_items", "exchange_delivered_order_items"),
        ("get_user_details", "find_user_id_by_email"),
    ]:
        assert not g.has_edge(source, target), (source, target)
    reasons = {(p["source"], p["target"]): p["reason"] for p in g.graph["pruned"]}
    assert "orders.status" in reasons[("cancel_pending_order", "modify_pending_order_items")]
    # a changed address leaves the order pending: it can still be cancelled
    assert g.has_edge("modify_pending_order_address", "cancel_pending_order")


@pytest.mark.integration
def test_airline_key_edges(airline_graph):
    g = airline_graph
    for source, target in [
        ("get_user_details", "get_reservation_details"),
        ("get_reservation_details", "update_reservation_flights"),
        ("get_reservation_details", "cancel_reservation"),
        ("get_reservation_details", "search_direct_flight"),
        ("search_direct_flight", "update_reservation_flights"),
        ("get_user_details", "send_certificate"),
    ]:
        assert g.has_edge(source, target), (source, target)
    assert nx.has_path(g, "get_user_details", "update_reservation_flights")
    assert "reservation_id" in g.edges["get_user_details", "get_reservation_details"]["arguments"]
    for write in (
        "update_reservation_flights",
        "update_reservation_baggages",
        "update_reservation_passengers",
    ):
        assert not g.has_edge("cancel_reservation", write)  # a cancelled reservation is over
    assert {"get_user_details", "get_reservation_details"} <= set(g.entry_points)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_walks_start_at_entries_follow_edges_end_in_writes(name, request):
    g = request.getfixturevalue(f"{name}_graph")
    entries, writes = set(g.entry_points), set(g.write_tools)
    rng = random.Random(7)
    seen_writes = set()
    for _ in range(300):
        walk = g.random_walk(rng, max_len=6, min_len=rng.randint(2, 4))
        assert walk is not None
        assert walk[0] in entries and walk[-1] in writes and len(walk) <= 6
        assert len(set(walk)) == len(walk)
        assert all(g.has_edge(a, b) for a, b in itertools.pairwise(walk))
        seen_writes.add(walk[-1])
    assert len(seen_writes) >= 4
    for write in sorted(writes):  # every write can be the end of a chain
        walk = g.random_walk(rng, max_len=6, end=write)
        assert walk is not None and walk[-1] == write
    first = [g.random_walk(random.Random(3)) for _ in range(5)]
    assert first == [g.random_walk(random.Random(3)) for _ in range(5)]


@pytest.mark.integration
def test_airline_chain_reaches_flight_change(airline_graph):
    rng = random.Random(1)
    walks = [
        airline_graph.random_walk(rng, 6, end="update_reservation_flights", min_len=3) for _ in range(100)
    ]
    assert ["get_user_details", "get_reservation_details", "update_reservation_flights"] in walks or any(
        w[:2] == ["get_user_details", "get_reservation_details"] for w in walks
    )


@pytest.mark.integration
def test_graphml_round_trip(retail_graph, tmp_path):
    path = retail_graph.to_graphml(tmp_path / "retail.graphml")
    back = nx.read_graphml(path)
    assert set(back.nodes) == set(retail_graph.nodes)
    assert set(back.edges) == set(retail_graph.edges)
    for source, target, data in retail_graph.edges(data=True):
        assert back.edges[source, target]["weight"] == pytest.approx(data["weight"])
        assert json.loads(back.edges[source, target]["evidence"]) == data["evidence"]
    assert back.nodes["find_user_id_by_email"]["entry"] is True
    assert json.loads(back.graph["pruned"]) == retail_graph.graph["pruned"]
    walk = random_walk(back, random.Random(0), 6)  # the exported graph is walkable as is
    assert walk is not None and back.nodes[walk[-1]]["kind"] == "write"


@pytest.mark.integration
def test_dot_export(airline_graph):
    dot = to_dot(airline_graph)
    assert dot.startswith('digraph "airline" {') and dot.rstrip().endswith("}")
    edges = set(re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', dot, flags=re.MULTILINE))
    assert edges == set(airline_graph.edges)
    nodes = set(re.findall(r'^\s*"([^"]+)" \[kind=', dot, flags=re.MULTILINE))
    assert nodes == set(airline_graph.nodes)
    assert airline_graph.to_dot() == dot


@pytest.mark.integration
def test_graph_is_cached_per_domain(retail):
    assert api_graph(retail) is api_graph(retail)
    assert isinstance(api_graph(retail), ApiGraph)


@pytest.mark.integration
@pytest.mark.parametrize("name, nodes, edges, pruned", [("retail", 13, 60, 28), ("airline", 12, 74, 3)])
def test_graph_sizes(name, nodes, edges, pruned, request):
    stats = build_api_graph(request.getfixturevalue(name)).stats()
    assert (stats["nodes"], stats["edges"], stats["pruned"]) == (nodes, edges, pruned)


def test_modules_share_only_public_names():
    """A name imported from another module of the package has no leading underscore."""
    package = Path(api_graph_package.__file__).parent
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("apigen_mt.tools.api_graph"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{module.name} imports {private} from {node.module}"
    assert not hasattr(values, "_canonical")  # one canonical JSON: apigen_mt.tools.state_diff.canonical_json
