"""`apigen-mt check-domain`: every built-in domain passes; each defect fails, naming its cause."""

from __future__ import annotations

import json
import random
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from apigen_mt.cli import main
from apigen_mt.domains.base import Domain, Environment, RecordChange, ToolExecutionError, ToolKind, ToolSpec
from apigen_mt.domains.registry import BUILTIN, get_domain
from apigen_mt.domains.simple import Db, SimpleDomain, tool
from apigen_mt.tools.domain_check import CHECKS, check_domain

DATA = {"items": {"i1": {"item_id": "i1", "stock": 2, "views": 0, "price": 5}}}


@tool
def get_item(db: Db, item_id: str) -> dict:
    """Look an item up.

    Args:
        item_id: The item id.
    """
    if item_id not in db["items"]:
        raise ToolExecutionError(f"no item {item_id}")
    return db["items"][item_id]


@tool(kind="write")
def buy(db: Db, item_id: str) -> dict:
    """Buy one of an item.

    Args:
        item_id: The item id.
    """
    item = db["items"][item_id]
    item["stock"] -= 1
    return item


def shop(*tools: Any, examples: list[dict] | None = None, data: dict | None = None) -> SimpleDomain:
    return SimpleDomain("shop", tools=[get_item, buy, *tools], policy="Sell things.", data=data or DATA,
                        examples=examples if examples is not None else [example("buy")])


def example(*names: str, item_id: str = "i1") -> dict:
    return {"id": f"ex-{'-'.join(names)}", "domain": "shop", "instruction": f"Buy item {item_id}.", "outputs": [],
            "actions": [{"name": name, "arguments": {"item_id": item_id}} for name in names]}


def failures(report, check: str) -> list[str]:
    return [f.detail for f in report.findings if f.check == check and not f.ok]


def test_a_sound_domain_passes_every_check():
    report = check_domain(shop(examples=[example("get_item", "buy")]))
    assert report.ok, report.render()
    assert list(dict.fromkeys(f.check for f in report.findings)) == list(CHECKS)


def test_a_read_tool_that_changes_the_state_is_named():
    @tool
    def peek(db: Db, item_id: str) -> dict:
        """Look an item up (and count the view: a write marked read).

        Args:
            item_id: The item id.
        """
        item = db["items"][item_id]
        item["views"] += 1
        return item

    report = check_domain(shop(peek, examples=[example("peek", "buy")]))
    [problem] = failures(report, "kinds")
    assert problem.startswith("tool 'peek' is marked read but changed the state") and "items['i1']" in problem


def test_a_write_tool_that_changes_nothing_is_named():
    @tool(kind="write")
    def reserve(db: Db, item_id: str) -> dict:
        """Reserve an item (it changes nothing: a read marked write).

        Args:
            item_id: The item id.
        """
        return db["items"][item_id]

    report = check_domain(shop(reserve, examples=[example("reserve"), example("buy")]))
    assert failures(report, "kinds") == ["tool 'reserve' is marked write but changed nothing in 1 successful call"]


@pytest.mark.parametrize("source", ["clock", "randomness"])
def test_a_tool_using_the_clock_or_randomness_is_named(source):
    @tool
    def quote(db: Db, item_id: str) -> dict:
        """A price quote (stamped with the clock, or with a random discount).

        Args:
            item_id: The item id.
        """
        price = db["items"][item_id]["price"]
        return {"price": price, "at": time.time_ns()} if source == "clock" else {"price": price * random.random()}

    report = check_domain(shop(quote, examples=[example("quote", "buy")]))
    [problem] = failures(report, "determinism")
    assert problem.startswith("tool 'quote' answered differently on a second fresh environment")
    assert "must not read the clock, randomness" in problem


def test_a_mutation_through_iteration_fails_with_the_named_error():
    @tool(kind="write")
    def restock(db: Db) -> str:
        """Restock everything, the wrong way (through iteration)."""
        for item in db["items"].values():
            item["stock"] += 1
        return "done"

    domain = shop(restock, examples=[{**example("buy"), "actions": [{"name": "restock", "arguments": {}}]}])
    report = check_domain(domain)
    [example_problem] = failures(report, "examples")
    assert "fails the execution check" in example_problem and "PristineStateError: tool 'restock' changed" in example_problem
    [leak] = failures(report, "isolation")
    assert "tool 'restock' changed items['i1']['stock']" in leak and "Look the record up by key" in leak
    assert domain.new_env().record("items", "i1")["stock"] == 2


def test_an_example_that_does_not_execute_is_named():
    report = check_domain(shop(examples=[example("buy", item_id="nope")]))
    [problem] = failures(report, "examples")
    assert problem.startswith("example 'ex-buy' fails the execution check") and "nope" in problem


def test_a_dangling_reference_is_named():
    data = {
        "members": {"M1": {"member_id": "M1", "loans": ["L1", "L9"]}},
        "loans": {"L1": {"loan_id": "L1", "member_id": "M2"}},
        "items": DATA["items"],
    }
    report = check_domain(shop(data=data))
    assert sorted(failures(report, "data")) == [
        "loans['L1'].member_id names 'M2', which is no record of members",
        "members['M1'].loans names 'L9', which is no record of loans",
    ]


class _LeakyEnvironment(Environment):
    """An environment written by hand that shares one mutable dict: the leak the check exists for."""

    def __init__(self, domain: _LeakyDomain) -> None:
        self.domain = domain

    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        if name == "bump":
            self.domain.shared["counter"] += 1  # written to the state every environment starts from
            return self.domain.shared["counter"]
        raise ToolExecutionError(f"no tool {name}")

    def changed_records(self) -> Iterator[RecordChange]:
        return iter(())

    def record(self, table: str, key: str) -> Any:
        return self.domain.shared.get(key) if table == "state" else None

    def fork(self) -> _LeakyEnvironment:
        return self

    def dump(self) -> dict[str, dict[str, Any]]:
        return {"state": dict(self.domain.shared)}


class _LeakyDomain(Domain):
    name = "leaky"
    shared: dict[str, int]
    kind = ToolKind.WRITE

    def __init__(self) -> None:
        self.shared = {"counter": 0}

    @property
    def policy(self) -> str:
        return "Count."

    @property
    def tools(self) -> list[ToolSpec]:
        return [ToolSpec("bump", "Add one.", {"type": "object", "properties": {}}, self.kind)]

    def new_env(self) -> Environment:
        return _LeakyEnvironment(self)

    def example_blueprints(self) -> list[Any]:
        return [{"id": "b", "domain": "leaky", "instruction": "Count.", "outputs": [], "actions": [{"name": "bump", "arguments": {}}]}]


def test_an_example_whose_instruction_does_not_give_its_values_fails():
    report = check_domain(shop(examples=[{**example("get_item", "buy"), "instruction": "Buy an item."}]))
    assert failures(report, "examples")[0].startswith(
        "example 'ex-get_item-buy' fails the grounding check: actions[0] get_item.item_id = 'i1' is not obtainable")


def test_a_read_tool_that_leaks_into_the_shared_state_fails_isolation():
    """The leak is caught whatever the tool's kind: marked read, its own environment shows no change."""
    domain = _LeakyDomain()
    domain.kind = ToolKind.READ
    report = check_domain(domain)
    assert failures(report, "isolation")[0].startswith("after example 'b', call 0 bump (ok) a fresh environment is no longer")


def test_a_non_deterministic_new_env_is_named():
    class Stamped(_LeakyDomain):
        def new_env(self) -> Environment:
            self.shared["counter"] = time.time_ns()  # every fresh environment differs
            return _LeakyEnvironment(self)

    report = check_domain(Stamped())
    assert failures(report, "determinism")[0].startswith("two fresh environments differ (state['counter']): new_env() must")


def test_a_hand_written_environment_that_leaks_fails_isolation():
    report = check_domain(_LeakyDomain())
    leak = failures(report, "isolation")[0]
    assert leak.startswith("after example 'b', call 0 bump (ok) a fresh environment is no longer pristine: state['counter']")


# -- the command ------------------------------------------------------------------------------------

MODULE = '''
from apigen_mt.domains.simple import SimpleDomain

from test_check_domain import buy  # this test module's tool: tests/ is on sys.path

DOMAIN = SimpleDomain("{name}.shop", tools=[buy], policy="Sell.", data={{"items": {{"i1": {{"stock": 2}}}}}},
                      examples=[{{"id": "e", "domain": "{name}.shop", "instruction": "Buy {item}.", "outputs": [],
                                  "actions": [{{"name": "buy", "arguments": {{"item_id": "{item}"}}}}]}}])
'''


@pytest.fixture
def user_domain(tmp_path, monkeypatch):
    """``make(item)``: the import path of a fresh user domain whose example buys ``item``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def make(item: str) -> str:
        package = f"userdom_{uuid.uuid4().hex[:8]}"
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "shop.py").write_text(textwrap.dedent(MODULE.format(name=package, item=item)))
        made.append(package)
        return f"{package}.shop"

    yield make
    for name in [m for m in sys.modules if m.split(".")[0] in made]:
        del sys.modules[name]


def test_the_command_reports_and_exits_by_the_verdict(user_domain, capsys):
    good = user_domain("i1")
    assert main(["check-domain", good]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"check-domain {good}\n") and out.rstrip().endswith("All checks passed.")
    bad = user_domain("i9")
    assert main(["check-domain", bad, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and any(f["check"] == "examples" and not f["ok"] for f in report["findings"])
    assert main(["check-domain", "no_such_domain"]) == 2


def test_generate_runs_the_cheap_part_before_any_model_call(user_domain, tmp_path, capsys):
    bad = user_domain("i9")
    run_dir = tmp_path / "run"
    assert main(["generate", "--domain", bad, "--blueprints", "1", "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"domain {bad} is not fit to generate from (nothing was run)" in err
    assert "examples: example 'e' fails the execution check" in err and not run_dir.exists()


@pytest.mark.integration
@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_built_in_domain_passes(name):
    report = check_domain(get_domain(name), samples=6)
    assert report.ok, report.render()
