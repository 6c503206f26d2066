"""The frozen pristine state: every change refused with a named error; copies plain and mutable."""

from __future__ import annotations

import copy
import json
import pickle
import re

import pytest
from pydantic import BaseModel

from apigen_mt.tools.frozen import FrozenDict, FrozenList, PristineStateError, acting_tool, freeze, thaw


class Item(BaseModel):
    name: str
    tags: list[str]


class Order(BaseModel):
    order_id: str
    items: list[Item]
    notes: dict[str, str]


DATA = {"orders": {"o1": {"items": [{"name": "pen", "tags": ["blue"]}], "total": 3}}}


MUTATIONS = [
    lambda d: d.__setitem__("x", 1), lambda d: d.__delitem__("orders"), lambda d: d.update(x=1),
    lambda d: d.setdefault("x", 1), lambda d: d.pop("orders"), lambda d: d.popitem(), lambda d: d.clear(),
    lambda d: d.__ior__({"x": 1}), lambda d: d.__init__(x=1),
    lambda d: d["orders"]["o1"]["items"].append(1), lambda d: d["orders"]["o1"]["items"].extend([1]),
    lambda d: d["orders"]["o1"]["items"].insert(0, 1), lambda d: d["orders"]["o1"]["items"].pop(),
    lambda d: d["orders"]["o1"]["items"].__setitem__(0, 1), lambda d: d["orders"]["o1"]["items"].__delitem__(0),
    lambda d: d["orders"]["o1"]["items"].__iadd__([1]), lambda d: d["orders"]["o1"]["items"].__imul__(2),
    lambda d: d["orders"]["o1"]["items"].sort(), lambda d: d["orders"]["o1"]["items"].reverse(),
    lambda d: d["orders"]["o1"]["items"].remove(0), lambda d: d["orders"]["o1"]["items"].clear(),
    lambda d: d["orders"]["o1"]["items"][0]["tags"].append("red"),
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_every_change_to_frozen_json_is_refused(mutate):
    frozen = freeze(copy.deepcopy(DATA), "db")
    with pytest.raises(PristineStateError, match="pristine state every environment shares"):
        mutate(frozen)
    assert frozen == DATA


def test_the_error_names_the_tool_and_the_place():
    frozen = freeze(copy.deepcopy(DATA), "orders")
    with acting_tool("restock"), pytest.raises(PristineStateError) as error:
        frozen["orders"]["o1"]["items"][0]["tags"][0] = "red"
    assert str(error.value).startswith("tool 'restock' changed orders['orders']['o1']['items'][0]['tags'][0]")
    assert "Look the record up by key" in str(error.value)


def test_frozen_json_reads_like_json_and_copies_to_plain_values():
    frozen = freeze(copy.deepcopy(DATA), "db")
    assert isinstance(frozen, dict) and json.dumps(frozen) == json.dumps(DATA)
    for copied in (copy.deepcopy(frozen), thaw(frozen), pickle.loads(pickle.dumps(frozen))):
        assert type(copied) is dict and type(copied["orders"]["o1"]["items"]) is list
        copied["orders"]["o1"]["items"][0]["tags"].append("red")  # plain: changes freely
    assert frozen["orders"]["o1"]["items"][0]["tags"] == ["blue"]
    assert type(copy.copy(frozen)) is dict and isinstance(FrozenList.__new__(FrozenList), list)
    with pytest.raises(PristineStateError):
        FrozenDict()["a"] = 1


def test_a_frozen_pydantic_record_refuses_changes_and_thaws_to_its_own_class():
    order = freeze(Order(order_id="o1", items=[Item(name="pen", tags=["blue"])], notes={"a": "b"}), "orders['o1']")
    assert isinstance(order, Order) and type(order).__name__ == "FrozenOrder" and repr(order).startswith("Order(")
    for mutate, place in (
        (lambda: setattr(order, "order_id", "x"), "orders['o1'].order_id"),
        (lambda: setattr(order.items[0], "name", "x"), "orders['o1'].items[0].name"),
        (lambda: order.items.append(Item(name="x", tags=[])), "orders['o1'].items"),
        (lambda: order.notes.update(c="d"), "orders['o1'].notes"),
        (lambda: delattr(order, "notes"), "orders['o1'].notes"),
    ):
        with pytest.raises(PristineStateError, match=re.escape(f"changed {place},")):
            mutate()
    plain = Order(order_id="o1", items=[Item(name="pen", tags=["blue"])], notes={"a": "b"})
    assert order == plain and plain == order and order.model_dump() == plain.model_dump()
    for copied in (copy.deepcopy(order), order.model_copy(deep=True), thaw(order), pickle.loads(pickle.dumps(order))):
        assert type(copied) is Order and type(copied.items[0]) is Item and copied == plain
        copied.items[0].tags.append("red")
        copied.order_id = "o2"
    assert order.items[0].tags == ["blue"] and order.order_id == "o1"


@pytest.mark.integration
def test_the_tau2_pristine_database_is_frozen_and_environments_are_not(retail):
    key = next(k for k, order in retail.pristine.orders.items() if order.status != "cancelled")
    with pytest.raises(PristineStateError, match=rf"changed orders\['{key}'\]\.status"):
        retail.pristine.orders[key].status = "cancelled"
    env = retail.new_env()
    own = env._tables["orders"][key]  # a keyed lookup: this environment's own, mutable copy
    own.status = "cancelled"
    assert env.record("orders", key)["status"] == "cancelled"
    assert retail.new_env().record("orders", key)["status"] != "cancelled"
