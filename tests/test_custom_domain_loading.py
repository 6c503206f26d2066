"""User domains: SimpleDomain (schemas from hints, docstrings, execution) and loading by module path."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from typing_extensions import TypedDict

import pytest
from pydantic import BaseModel, Field

from apigen_mt.domains.base import DomainError, PolicyRule, ToolKind
from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.simple import (
    Db,
    SimpleDomain,
    SimpleEnvironment,
    ToolExecutionError,
    parse_docstring,
    tool,
)
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.executor import execute_actions, run_call
from apigen_mt.tools.state_diff import StateDiff

# -- a tiny domain built in-process ----------------------------------------------------------------
DATA = {
    "accounts": {
        "a1": {"id": "a1", "owner": "u1", "balance": 100},
        "a2": {"id": "a2", "owner": "u2", "balance": 5},
    },
    "users": {"u1": {"id": "u1", "name": "Ann"}, "u2": {"id": "u2", "name": "Bo"}},
}


@tool
def get_account(db: Db, account_id: str) -> dict:
    """Get one account.

    Args:
        account_id: The account id.
    """
    account = db["accounts"].get(account_id)
    if account is None:
        raise ToolExecutionError(f"Account {account_id} not found")
    return account


@tool(kind="write")
def withdraw(db: Db, account_id: str, amount: int) -> dict:
    """Take money out of an account.

    Args:
        account_id: The account id.
        amount: How much, in whole dollars.
    """
    account = get_account(db, account_id)
    account["balance"] -= amount  # changed first, refused after: the call must change nothing
    if account["balance"] < 0:
        raise ValueError(f"Insufficient funds in {account_id}")
    return account


@tool(kind="write")
def buggy(db: Db, account_id: str) -> dict:
    """Change a record, then crash with a bug.

    Args:
        account_id: The account id.
    """
    db["accounts"][account_id]["balance"] = 0
    return {}["missing"]


@tool(kind="other")
def listing(db: Db) -> tuple:
    """Every account id, as a tuple (results become plain JSON)."""
    return tuple(sorted(db["accounts"]))


def _no_overdraft_rule(trace) -> list[str]:
    return [f"actions[{c.index}] withdraws more than 50" for c in trace.writes if c.arguments["amount"] > 50]


RULE = PolicyRule("max_withdrawal", "At most 50 per withdrawal.", ("withdraw",), _no_overdraft_rule)


def make(**overrides: Any) -> SimpleDomain:
    arguments: dict[str, Any] = dict(
        tools=[get_account, withdraw, buggy, listing], data=DATA, policy="Be careful.", rules=[RULE]
    )
    if "tools" in overrides:  # the rule is about `withdraw`, which other tool lists lack
        arguments["rules"] = []
    arguments.update(overrides)
    return SimpleDomain("bank", **arguments)


@pytest.fixture
def bank() -> SimpleDomain:
    return make(user_table="users")


# -- docstrings and schemas --------------------------------------------------------------------------
def test_parse_docstring_google_style():
    doc = """Move money between
    two accounts.

    Second paragraph.

    Args:
        source (str): Where the money
            comes from.
        target: Where it goes.
        **extra: Ignored keywords.

    Returns:
        source: not an argument (a Returns section).
    """
    summary, args = parse_docstring(doc)
    assert summary == "Move money between two accounts.\n\nSecond paragraph."
    assert args == {"source": "Where the money comes from.", "target": "Where it goes.", "extra": "Ignored keywords."}
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Just a line.") == ("Just a line.", {})


class Address(BaseModel):
    street: str
    title: str = ""  # a property named "title" is kept


class Item(TypedDict):
    sku: str
    qty: int


@tool(kind="write")
def rich(
    db: Db,
    title: str,
    mode: Literal["fast", "slow"],
    address: Address,
    items: list[Item],
    tags: Optional[list[str]] = None,
    weights: dict[str, float] | None = None,
    count: Annotated[int, Field(description="From the hint.", ge=0)] = 1,
) -> dict:
    """A tool with every kind of argument.

    Args:
        title: The title.
        mode: How to do it.
        address: Where.
        items: What.
        count: Ignored: the hint's description wins.
    """
    return {"address": type(address).__name__, "count": count, "items": items}


def test_schema_from_type_hints():
    spec = make(tools=[rich]).tool("rich")
    params = spec.parameters
    assert spec.kind is ToolKind.WRITE and spec.description == "A tool with every kind of argument."
    assert params["type"] == "object" and params["additionalProperties"] is False
    assert params["required"] == ["title", "mode", "address", "items"]
    props = params["properties"]
    assert props["title"] == {"type": "string", "description": "The title."}
    assert props["mode"] == {"enum": ["fast", "slow"], "type": "string", "description": "How to do it."}
    assert props["address"]["properties"]["title"] == {"default": "", "type": "string"}
    assert props["address"]["description"] == "Where."
    assert props["items"]["items"]["properties"]["qty"] == {"type": "integer"}
    assert props["count"]["description"] == "From the hint." and props["count"]["minimum"] == 0
    assert {"type": "null"} in props["tags"]["anyOf"]
    text = repr(params)
    assert "$ref" not in text and "$defs" not in text and "'title': 'Address'" not in text


def test_arguments_are_coerced_to_the_hints():
    env = make(tools=[rich]).new_env()
    out = env.execute("rich", {
        "title": "t", "mode": "fast", "address": {"street": "Main"}, "items": [{"sku": "x", "qty": 2.0}],
        "count": 3.0,
    })
    assert out == {"address": "Address", "count": 3, "items": [{"sku": "x", "qty": 2}]}
    assert isinstance(out["count"], int)
    negative = run_call(env, 0, "rich", {
        "title": "t", "mode": "fast", "address": {"street": "Main"}, "items": [], "count": -1
    })
    assert negative.error_type == "ArgumentError" and "count" in negative.error
    wrong_enum = run_call(env, 0, "rich", {"title": "t", "mode": "x", "address": {"street": "M"}, "items": []})
    assert wrong_enum.error_type == "ArgumentError" and "must be one of ['fast', 'slow']" in wrong_enum.error


# -- execution -------------------------------------------------------------------------------------
def test_execute_read_and_write(bank):
    env = bank.new_env()
    assert isinstance(env, SimpleEnvironment)
    assert env.execute("withdraw", {"account_id": "a1", "amount": 30}) == {"id": "a1", "owner": "u1", "balance": 70}
    assert env.execute("listing", {}) == ["a1", "a2"]
    diff = StateDiff.of(env)
    assert [(c.table, c.key, c.before["balance"], c.after["balance"]) for c in diff.changes] == [
        ("accounts", "a1", 100, 70)
    ]
    assert bank.data["accounts"]["a1"]["balance"] == 100 and bank.pristine_intact()


def test_business_errors_and_rollback(bank):
    env = bank.new_env()
    refused = run_call(env, 0, "withdraw", {"account_id": "a2", "amount": 10})
    assert (refused.error_type, refused.error) == ("ToolExecutionError", "Insufficient funds in a2")
    missing = run_call(env, 1, "get_account", {"account_id": "zz"})
    assert missing.error == "Account zz not found"
    crashed = run_call(env, 2, "buggy", {"account_id": "a1"})
    assert crashed.error_type == "ToolExecutionError" and crashed.error.startswith("KeyError")
    assert list(env.changed_records()) == [], "a failed call leaves no change behind"
    assert env.record("accounts", "a2")["balance"] == 5 and env.record("accounts", "a1")["balance"] == 100


def test_unknown_tool_and_bad_arguments(bank):
    env = bank.new_env()
    unknown = run_call(env, 0, "transfer", {})
    assert unknown.error_type == "UnknownToolError" and "get_account, withdraw" in unknown.error
    bad = run_call(env, 0, "withdraw", {"account_id": "a1", "amount": "ten"})
    assert bad.error_type == "ArgumentError" and "amount must be integer" in bad.error


def test_results_never_alias_records(bank):
    env = bank.new_env()
    account = env.execute("get_account", {"account_id": "a1"})
    account["balance"] = -1
    assert env.record("accounts", "a1")["balance"] == 100
    record = env.record("accounts", "a1")
    record["balance"] = -2
    assert env.record("accounts", "a1")["balance"] == 100


def test_fork_is_independent(bank):
    env = bank.new_env()
    env.execute("withdraw", {"account_id": "a1", "amount": 10})
    fork = env.fork()
    env.execute("withdraw", {"account_id": "a1", "amount": 10})
    assert fork.record("accounts", "a1")["balance"] == 90
    assert env.record("accounts", "a1")["balance"] == 80
    assert bank.new_env().record("accounts", "a1")["balance"] == 100
    assert env.record("accounts", "nope") is None and env.record("nope", "a1") is None


def test_changed_records_compare_like_the_state_diff():
    """1, 1.0 and True are equal in Python but different JSON values: both views must see a change."""

    @tool(kind="write")
    def retype(db: Db, account_id: str) -> dict:
        """Store the balance as a float and add a flag, with equal Python values.

        Args:
            account_id: The account id.
        """
        account = db["accounts"][account_id]
        account["balance"] = float(account["balance"])
        return account

    @tool(kind="write")
    def rewrite(db: Db, account_id: str) -> dict:
        """Write the same values back (no change).

        Args:
            account_id: The account id.
        """
        account = db["accounts"][account_id]
        account["balance"] = int(account["balance"])
        return account

    domain = make(tools=[retype, rewrite])
    env = domain.new_env()
    env.execute("rewrite", {"account_id": "a2"})  # touched, unchanged: not a change
    env.execute("retype", {"account_id": "a1"})
    changes = list(env.changed_records())
    assert [(c.table, c.key, c.before["balance"], c.after["balance"]) for c in changes] == [
        ("accounts", "a1", 100, 100.0)
    ]
    assert type(changes[0].after["balance"]) is float
    assert [(c.table, c.key) for c in StateDiff.of(env).changes] == [("accounts", "a1")]


def test_no_tool_function_accessor():
    assert not hasattr(SimpleDomain, "tool_function")  # the bound tool is bound_tool(name).function


def test_a_write_through_iteration_fails_with_the_named_error_and_changes_nothing():
    """The issue's three-line domain: before, three runs left `stock: 5` in every fresh environment."""
    @tool(kind="write")
    def restock(db: Db) -> str:
        """Add one to every item's stock, the wrong way (through iteration)."""
        for item in db["items"].values():
            item["stock"] += 1
        return "done"

    @tool(kind="write")
    def tag_all(db: Db, tag: str) -> str:
        """Tag every item, the wrong way (a nested list of an iterated record).

        Args:
            tag: The tag.
        """
        for item in db["items"].values():
            item["tags"].append(tag)
        return "done"

    domain = SimpleDomain("shop", tools=[restock, tag_all], policy="Be nice.",
                          data={"items": {"i1": {"stock": 2, "tags": []}}})
    for _ in range(3):
        call = run_call(domain.new_env(), 0, "restock", {})
        assert not call.ok and call.error.startswith("PristineStateError: tool 'restock' changed items['i1']['stock']")
        assert "Look the record up by key" in call.error
    call = run_call(domain.new_env(), 0, "tag_all", {"tag": "x"})
    assert not call.ok and "tool 'tag_all' changed items['i1']['tags']" in call.error
    assert domain.new_env().record("items", "i1") == {"stock": 2, "tags": []} and domain.pristine_intact()


def test_keyed_copies_and_returned_values_stay_inside_their_environment():
    @tool(kind="write")
    def restock(db: Db) -> list:
        """Add one to every item's stock (found by iteration, changed by key)."""
        for key in list(db["items"]):
            db["items"][key]["stock"] += 1
        return list(db["items"].values())

    domain = SimpleDomain("shop", tools=[restock], policy="Be nice.", data={"items": {"i1": {"stock": 2}}})
    env = domain.new_env()
    returned = env.execute("restock", {})
    returned[0]["stock"] = 100  # the caller's own copy
    assert env.record("items", "i1") == {"stock": 3}
    assert domain.new_env().record("items", "i1") == {"stock": 2}


def test_policy_rules_run_in_validation(bank):
    good = {"id": "1", "domain": "bank", "instruction": "Take out 20 from account a1.", "outputs": ["80"],
            "actions": [{"name": "withdraw", "arguments": {"account_id": "a1", "amount": 20}}]}
    assert validate_blueprint(bank, good).passed
    greedy = {**good, "actions": [{"name": "withdraw", "arguments": {"account_id": "a1", "amount": 60}}]}
    result = validate_blueprint(bank, greedy)
    assert result.stage == "policy" and result.reasons == ["[max_withdrawal] actions[0] withdraws more than 50"]


# -- hooks ----------------------------------------------------------------------------------------
def test_default_user_hooks(bank):
    assert bank.user_ids() == ["u1", "u2"]
    assert bank.user_context("u1") == {
        "user": {"id": "u1", "name": "Ann"},
        "accounts": [{"id": "a1", "owner": "u1", "balance": 100}],
    }
    with pytest.raises(DomainError, match="no user 'u9'"):
        bank.user_context("u9")
    plain = make()
    assert plain.user_ids() == []
    with pytest.raises(DomainError, match="no per-user data"):
        plain.user_context("u1")


def test_user_hooks_from_arguments_and_subclass():
    domain = make(user_ids=lambda data: ["u2"], user_context=lambda data, uid: {"name": data["users"][uid]["name"]})
    assert domain.user_ids() == ["u2"] and domain.user_context("u2") == {"name": "Bo"}

    class Bank(SimpleDomain):
        def user_ids(self) -> list[str]:
            return sorted(self.data["users"], reverse=True)

    assert Bank("bank", tools=[get_account], data=DATA, policy="p").user_ids() == ["u2", "u1"]


def test_examples_from_list_and_file(tmp_path):
    example = {"id": "e1", "domain": "bank", "instruction": "Look.", "actions": [], "outputs": []}
    assert [b.id for b in make(examples=[example]).example_blueprints()] == ["e1"]
    path = tmp_path / "examples.jsonl"
    path.write_text('{"id": "e1", "domain": "bank", "instruction": "x", "actions": [], "outputs": []}\n\n')
    assert make(examples=path).example_blueprints()[0].instruction == "x"
    path.write_text('{"id": "e1"\n')
    with pytest.raises(DomainError, match="examples.jsonl line 1: invalid JSON"):
        make(examples=path)
    good = '{"id": "e1", "domain": "bank", "instruction": "x", "actions": [], "outputs": []}'
    path.write_text(f"{good}\n\n   \n{{oops\n")  # blank lines are skipped but still counted
    with pytest.raises(DomainError, match=r"examples.jsonl line 4: invalid JSON \(Expecting"):
        make(examples=path)
    path.write_text(f'{good}\n{{"id": "e2", "domain": "bank"}}\n')
    with pytest.raises(DomainError, match="examples.jsonl line 2 is not a blueprint: instruction"):
        make(examples=path)
    with pytest.raises(DomainError, match="cannot read the examples file .*missing.jsonl"):
        make(examples=tmp_path / "missing.jsonl")
    with pytest.raises(DomainError, match="example 0 is not a blueprint: instruction"):
        make(examples=[{"id": "e1", "domain": "bank"}])


def test_tools_from_a_module_in_definition_order(tmp_path, monkeypatch):
    name = write_package(tmp_path, monkeypatch, {"tools.py": TOOLS_SOURCE})
    module = __import__(f"{name}.tools", fromlist=["x"])
    domain = SimpleDomain("notes", tools=module, data={"notes": {}}, policy="p")
    assert [t.name for t in domain.tools] == ["add_note", "count_notes"]
    assert domain.tool("count_notes").kind is ToolKind.READ


# -- construction errors -------------------------------------------------------------------------
def _fn(source: str):
    namespace: dict[str, Any] = {"tool": tool, "Db": Db, "Any": Any}
    exec(textwrap.dedent(source), namespace)
    return namespace["f"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('@tool\ndef f(account_id: str):\n    "Doc."\n', "first parameter must be `db`"),
        ('@tool\ndef f(db, account_id):\n    "Doc."\n', "parameter 'account_id' has no type hint"),
        ('@tool\ndef f(db, *ids: str):\n    "Doc."\n', "*args/**kwargs are not allowed"),
        ('@tool\ndef f(db, a: str):\n    pass\n', "has no description: give it a docstring"),
        ('@tool\ndef f(db, a: str):\n    """Doc.\n\n    Args:\n        b: Nope.\n    """\n',
         "documents unknown parameters ['b']"),
        ('@tool\ndef f(db, a: "NoSuchType"):\n    "Doc."\n', "type hint of parameter 'a' cannot be resolved"),
        ('class Thing: pass\n@tool\ndef f(db, thing: Thing):\n    "Doc."\n',
         "tool 'f': no JSON schema for parameter 'thing'"),
        ('from typing import Callable\n@tool\ndef f(db, callback: Callable[[], int]):\n    "Doc."\n',
         "tool 'f': no JSON schema for parameter 'callback'"),
    ],
)
def test_bad_tool_definitions(source, message):
    with pytest.raises(DomainError) as caught:
        make(tools=[_fn(source)])
    assert message in str(caught.value)


def test_bad_domain_definitions(tmp_path):
    undecorated = lambda db: None  # noqa: E731
    cases = [
        (dict(tools=[get_account, get_account]), "two tools are named 'get_account'"),
        (dict(tools=[undecorated]), "is not a tool: decorate it with @tool"),
        (dict(tools=[]), "has no tools"),
        (dict(tools="get_account"), "tools must be a list of @tool functions"),
        (dict(rules=[PolicyRule("r", "d", ("nope",), lambda t: [])]), "rule 'r' names unknown tools ['nope']"),
        (dict(rules=["not a rule"]), "rules must be PolicyRule objects"),
        (dict(data={"t": {"k": {"v": {1, 2}}}}), "data must be plain JSON data"),
        (dict(data={"t": {"k": [1]}}), "data record t['k'] must be a JSON object"),
        (dict(data={"t": [1]}), "data table 't' must map keys to records"),
        (dict(data={"t": {1: {}}}), "record keys must be strings"),
        (dict(data=tmp_path / "missing.json"), "cannot read the data file"),
        (dict(policy=tmp_path / "missing.md"), "cannot read the policy file"),
        (dict(policy="  "), "the policy text is empty"),
        (dict(user_table="nope"), "user_table 'nope' is not a table"),
    ]
    for overrides, message in cases:
        with pytest.raises(DomainError) as caught:
            make(**overrides)
        assert message in str(caught.value), (overrides, str(caught.value))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DomainError, match="is not valid JSON"):
        make(data=tmp_path / "broken.json")
    with pytest.raises(DomainError, match="kind must be one of"):
        tool(kind="delete")
    with pytest.raises(DomainError, match=r"write @tool\(kind='write'\)"):
        tool("write")


# -- loading a user domain by module path ---------------------------------------------------------
TOOLS_SOURCE = '''
from __future__ import annotations

from apigen_mt.domains.simple import Db, ToolExecutionError, tool


@tool(kind="write")
def add_note(db: Db, note_id: str, text: str) -> dict:
    """Add a note.

    Args:
        note_id: A new id.
        text: What to write.
    """
    if note_id in db["notes"]:
        raise ToolExecutionError(f"Note {note_id} exists")
    db["notes"][note_id] = {"text": text}
    return db["notes"][note_id]


def helper() -> None:
    """Not a tool: not collected."""


@tool
def count_notes(db: Db) -> int:
    """How many notes there are."""
    return len(db["notes"])
'''

DOMAIN_SOURCE = '''
from pathlib import Path  # the files sit in the package folder, next to this module

from apigen_mt.domains.simple import SimpleDomain

from . import tools

DOMAIN = SimpleDomain(
    "notes",
    tools=tools,
    data=Path(__file__).parent / "data.json",
    policy=Path(__file__).parent / "policy.md",
    examples=Path(__file__).parent / "examples.jsonl",
)
'''


@pytest.fixture(autouse=True)
def _forget_user_modules():
    yield
    for name in [m for m in sys.modules if m.startswith("userdom_")]:
        del sys.modules[name]


def write_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> str:
    """A fresh package under ``tmp_path`` on sys.path (unique name: get_domain is cached)."""
    name = f"userdom_{uuid.uuid4().hex[:10]}"
    package = tmp_path / name
    package.mkdir()
    files = {"__init__.py": "", **files}
    for filename, text in files.items():
        (package / filename).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_load_user_domain_by_module_path(tmp_path, monkeypatch):
    name = write_package(tmp_path, monkeypatch, {
        "tools.py": TOOLS_SOURCE,
        "mydomain.py": DOMAIN_SOURCE,
        "data.json": '{"notes": {"n1": {"text": "hello"}}}',
        "policy.md": "Never delete notes.",
        "examples.jsonl": '{"id": "x1", "domain": "notes", "instruction": "Add a note n2 that says hi.", '
                          '"actions": [{"name": "add_note", "arguments": {"note_id": "n2", "text": "hi"}}], '
                          '"outputs": []}\n',
    })
    domain = get_domain(f"{name}.mydomain")
    assert get_domain(f"{name}.mydomain") is domain, "built once per process"
    assert domain.name == "notes" and domain.policy == "Never delete notes."
    env = domain.new_env()
    assert env.execute("count_notes", {}) == 1
    assert env.execute("add_note", {"note_id": "n2", "text": "hi"}) == {"text": "hi"}
    assert env.execute("count_notes", {}) == 2
    (example,) = domain.example_blueprints()
    assert validate_blueprint(domain, example.to_json()).passed
    twice = execute_actions(domain.new_env(), [example.actions[0], example.actions[0]])
    assert twice.failed[0].error == "Note n2 exists"


def test_load_user_domain_from_get_domain_function(tmp_path, monkeypatch):
    name = write_package(tmp_path, monkeypatch, {
        "tools.py": TOOLS_SOURCE,
        "mydomain.py": '''
            from apigen_mt.domains.simple import SimpleDomain
            from . import tools

            def get_domain():
                return SimpleDomain("notes", tools=tools, data={"notes": {}}, policy="p")
        ''',
    })
    assert get_domain(f"{name}.mydomain").tool_names == ["add_note", "count_notes"]


def _load_error(tmp_path, monkeypatch, files: dict[str, str], module: str = "mydomain") -> str:
    name = write_package(tmp_path, monkeypatch, files)
    with pytest.raises(DomainError) as caught:
        get_domain(f"{name}.{module}")
    return str(caught.value)


def test_missing_module(tmp_path, monkeypatch):
    message = _load_error(tmp_path, monkeypatch, {}, module="nothere")
    assert "cannot import domain module" in message and "PYTHONPATH" in message
    with pytest.raises(DomainError, match="unknown domain 'nosuchdomain'"):
        get_domain("nosuchdomain")


def test_module_that_fails_to_import(tmp_path, monkeypatch):
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "raise RuntimeError('db password missing')\n"})
    assert "failed to import: RuntimeError: db password missing" in message
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "def broken(:\n"})
    assert "failed to import: SyntaxError" in message
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "import userdom_no_such_dependency\n"})
    assert "userdom_no_such_dependency" in message


def test_module_without_domain(tmp_path, monkeypatch):
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "x = 1\n"})
    assert "must define DOMAIN" in message and "found NoneType" in message
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "DOMAIN = {'name': 'x'}\n"})
    assert "found dict" in message
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": "def get_domain():\n    raise KeyError('cfg')\n"})
    assert "get_domain() failed: KeyError" in message


def test_module_with_a_bad_tool_schema(tmp_path, monkeypatch):
    message = _load_error(tmp_path, monkeypatch, {"mydomain.py": '''
        from apigen_mt.domains.simple import Db, SimpleDomain, tool

        class Connection:
            pass

        @tool
        def lookup(db: Db, conn: Connection) -> dict:
            """Look something up."""
            return {}

        DOMAIN = SimpleDomain("bad", tools=[lookup], data={}, policy="p")
    '''})
    assert "failed to import: DomainError: tool 'lookup': no JSON schema for parameter 'conn'" in message


def test_module_whose_new_env_fails(tmp_path, monkeypatch):
    message = _load_error(tmp_path, monkeypatch, {
        "tools.py": TOOLS_SOURCE,
        "mydomain.py": '''
            from apigen_mt.domains.simple import SimpleDomain
            from . import tools

            class Broken(SimpleDomain):
                def new_env(self):
                    raise RuntimeError("database offline")

            DOMAIN = Broken("notes", tools=tools, data={"notes": {}}, policy="p")
        ''',
    })
    assert "is not usable: new_env() failed: RuntimeError: database offline" in message
