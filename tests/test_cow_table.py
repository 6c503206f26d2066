"""Copy-on-write tables: forks are independent and the pristine data never changes."""

from __future__ import annotations

import pytest

from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
from apigen_mt.tools.cow_table import CowTable
from apigen_mt.tools.executor import execute_actions
from apigen_mt.tools.state_diff import canonical_json


def test_keyed_access_copies_and_leaves_base_untouched():
    base = {"a": {"n": 1}, "b": {"n": 2}}
    table = CowTable(base)
    table["a"]["n"] = 10
    assert base["a"]["n"] == 1 and table["a"]["n"] == 10
    table["c"] = {"n": 3}
    del table["b"]
    assert sorted(table) == ["a", "c"] and "b" not in table and "b" in base
    assert len(table) == 2
    with pytest.raises(KeyError):
        table["b"]
    assert {k: (p, c) for k, p, c in table.touched()} == {
        "a": ({"n": 1}, {"n": 10}),
        "c": (None, {"n": 3}),
        "b": ({"n": 2}, None),
    }


def test_iteration_does_not_copy():
    base = {"a": {"n": 1}}
    table = CowTable(base)
    assert list(table.values())[0] is base["a"]
    assert list(table.touched()) == []


def test_fork_is_independent():
    table = CowTable({"a": {"n": 1}})
    table["a"]["n"] = 2
    fork = table.fork()
    fork["a"]["n"] = 3
    assert table["a"]["n"] == 2 and fork["a"]["n"] == 3


@pytest.mark.integration
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_gold_tasks_never_mutate_pristine(name, request):
    """Guards the CowTable invariant for tau2's tool code (no write through iteration)."""
    domain = request.getfixturevalue(name)
    pristine = domain.pristine
    before = canonical_json(pristine.model_dump(mode="json"))
    for split in ("train", "test"):
        for blueprint in tau2_blueprints(name, split):
            execute_actions(domain.new_env(), blueprint.actions)
    assert canonical_json(pristine.model_dump(mode="json")) == before


def test_keyed_access_while_iterating_is_allowed():
    """Find by iteration, then change by key: the documented pattern must not raise."""
    table = CowTable({"a": {"v": 1}, "b": {"v": 2}})
    table["new"] = {"v": 3}
    for key, record in table.items():
        if record["v"] == 1:
            table[key]["v"] = 99
            table["c"] = {"v": 4}
    assert table["a"]["v"] == 99 and "c" in table
