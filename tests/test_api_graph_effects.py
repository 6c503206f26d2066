"""Writes whose arguments are the schema's choices: reached through the reads that show their
effect (check the state, then act), with values the schema offers, never made up."""

from __future__ import annotations

import random

import pytest

from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.simple import Db, SimpleDomain, ToolExecutionError, tool
from apigen_mt.tools.api_graph import api_graph
from apigen_mt.tools.api_graph.graph import build_api_graph
from apigen_mt.tools.api_graph.specs import schema_choices
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.grounded_walk import as_blueprint, grounded_walk


def test_the_choices_a_schema_offers():
    assert schema_choices({"type": "string", "enum": ["a", "b"]}) == ["a", "b"]
    assert schema_choices({"type": "string", "description": 'The mode. [Enum]: ["on", "off", "auto"]'}) == ["on", "off", "auto"]
    doors = {"type": "array", "items": {"type": "string"}, "description": 'Doors. [Enum]: ["driver", "passenger"]'}
    assert schema_choices(doors) == ["driver", "passenger"]
    assert schema_choices({"type": "boolean"}) == [True, False]
    assert schema_choices({"type": "integer", "description": "[Enum]: [1, \"x\", 2]"}) == [1, 2]
    assert schema_choices({"type": "string", "description": "Any name, such as 'Ann'."}) == []
    assert schema_choices({"type": "number"}) == []


@tool
def get_lamp(db: Db) -> dict:
    """The lamp's state."""
    return db["lamp"]["lamp"]


@tool
def get_clock(db: Db) -> dict:
    """The time; no write changes it."""
    return {"time": "12:00"}


@tool(kind="write")
def switch_lamp(db: Db, on: bool, colour: str) -> dict:
    """Switch the lamp on or off, in a colour.

    Args:
        on: True to switch it on, False to switch it off.
        colour: The colour. [Enum]: ["warm", "cold"]
    """
    if colour not in ("warm", "cold"):
        raise ToolExecutionError("unknown colour")
    lamp = db["lamp"]["lamp"]
    lamp["lit"], lamp["tint"] = on, colour
    return "switched"


@tool(kind="write")
def set_alarm(db: Db, alarm_at: str) -> str:
    """Set the alarm; nothing tells the time to set it to.

    Args:
        alarm_at: The alarm time.
    """
    db["lamp"]["lamp"]["alarm"] = alarm_at
    return "set"


def _lamp_domain() -> SimpleDomain:
    return SimpleDomain("lamp", tools=[get_lamp, get_clock, switch_lamp, set_alarm],
                        data={"lamp": {"lamp": {"lit": False, "tint": "warm", "alarm": None}}}, policy="Be kind.")


def test_a_read_that_shows_a_write_s_effect_gets_an_edge_to_it():
    graph = build_api_graph(_lamp_domain())
    assert graph.has_edge("get_lamp", "switch_lamp")
    assert [e["type"] for e in graph.edges["get_lamp", "switch_lamp"]["evidence"]] == ["effect"]  # no value feeds it
    assert not graph.has_edge("get_clock", "switch_lamp")  # it shows nothing a write changes
    assert not graph.in_degree("set_alarm")  # its argument has no value anywhere: it is not probed
    assert graph.nodes["get_lamp"]["entry"]


def test_walks_check_the_state_then_act_with_the_schema_s_values():
    domain = _lamp_domain()
    for seed in range(10):
        walk = grounded_walk(domain, random.Random(seed))
        assert walk is not None and walk.chain == ["get_lamp", "switch_lamp"]
        arguments = walk.actions[-1]["arguments"]
        assert arguments["on"] in (True, False) and arguments["colour"] in ("warm", "cold")
        assert arguments != {"on": False, "colour": "warm"}  # that would change nothing
        assert validate_blueprint(domain, as_blueprint(walk, domain, "Do it.")).stage not in ("format", "execution", "policy")


@pytest.mark.parametrize("name", ["retail", "airline", "library"])
def test_domains_whose_writes_are_all_fed_get_no_effect_edges(name):
    graph = api_graph(get_domain(name))
    assert not [e for e in graph.edges(data="evidence") if any(x.get("type") == "effect" for x in e[2])]
