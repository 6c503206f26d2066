"""The library example domain: its tools, its policy rules, its data and its examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import apigen_mt.domains.library as library_package
from apigen_mt.blueprint import Blueprint
from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.library import DOMAIN, get_domain as library_get_domain
from apigen_mt.domains.library.domain import TODAY
from apigen_mt.domains.library.rules import RULES
from apigen_mt.domains.registry import BUILTIN, get_domain
from apigen_mt.domains.simple import SimpleDomain
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.executor import ExecutedCall, execute_actions, run_call
from apigen_mt.tools.state_diff import StateDiff

LIBRARY_DIR = Path(library_package.__file__).parent
EXAMPLES = LIBRARY_DIR / "examples.jsonl"


@pytest.fixture(autouse=True)
def pristine_untouched():
    """Every test leaves the shared pristine data as loaded (the copy-on-write invariant)."""
    yield
    assert DOMAIN.pristine_intact(), "a tool changed a pristine record reached by iteration"


@pytest.fixture
def env():
    return DOMAIN.new_env()


def call(env, name: str, **arguments) -> ExecutedCall:
    return run_call(env, 0, name, arguments)


def ok(env, name: str, **arguments):
    result = call(env, name, **arguments)
    assert result.ok, result.error
    return result.observation


def fails(env, name: str, **arguments) -> str:
    result = call(env, name, **arguments)
    assert not result.ok, f"{name} should have failed"
    assert result.error_type == "ToolExecutionError", result.error
    return result.error


# -- registration and shape ------------------------------------------------------------------
def test_registered_as_builtin():
    assert "library" in BUILTIN
    domain = get_domain("library")
    assert domain is DOMAIN is library_get_domain()
    assert isinstance(domain, SimpleDomain) and domain.name == "library"


def test_loadable_by_module_path():
    assert get_domain("apigen_mt.domains.library") is DOMAIN


def test_tools_and_kinds():
    kinds = {spec.name: spec.kind for spec in DOMAIN.tools}
    assert kinds == {
        "find_member_by_email": ToolKind.READ,
        "get_member_details": ToolKind.READ,
        "search_books": ToolKind.READ,
        "get_book_details": ToolKind.READ,
        "borrow_book": ToolKind.WRITE,
        "return_book": ToolKind.WRITE,
        "renew_loan": ToolKind.WRITE,
        "pay_fine": ToolKind.WRITE,
        "transfer_to_librarian": ToolKind.OTHER,
    }
    for spec in DOMAIN.tools:
        assert spec.description and "Args" not in spec.description
        params = spec.parameters
        assert params["type"] == "object" and params["additionalProperties"] is False
        for name, prop in params["properties"].items():
            assert prop.get("description"), f"{spec.name}.{name} has no description"
            assert "title" not in prop
    pay = DOMAIN.tool("pay_fine").parameters
    assert pay["required"] == ["fine_id", "payment_method_id"]
    assert pay["properties"]["fine_id"] == {"type": "string", "description": "The fine id, such as 'F0001'."}
    assert "required" not in DOMAIN.tool("search_books").parameters


def test_policy_states_today_and_limits():
    assert TODAY in DOMAIN.policy
    for phrase in ("3 active loans", "$10.00", "at most twice", "find_member_by_email"):
        assert phrase in DOMAIN.policy


def test_data_is_consistent():
    data = DOMAIN.data
    assert len(data["members"]) >= 20 and len(data["books"]) >= 40
    on_loan = {
        (book_id, copy_id)
        for book_id, book in data["books"].items()
        for copy_id, copy in book["copies"].items()
        if copy["status"] == "on_loan"
    }
    active = {(l["book_id"], l["copy_id"]) for l in data["loans"].values() if l["status"] == "active"}
    assert on_loan == active
    for loan_id, loan in data["loans"].items():
        assert loan["loan_id"] == loan_id and loan_id in data["members"][loan["member_id"]]["loans"]
        assert loan["copy_id"] in data["books"][loan["book_id"]]["copies"]
    for fine_id, fine in data["fines"].items():
        assert fine_id in data["members"][fine["member_id"]]["fines"]
        assert data["loans"][fine["loan_id"]]["member_id"] == fine["member_id"]
    methods = [pm for m in data["members"].values() for pm in m["payment_methods"]]
    assert len(methods) == len(set(methods)), "payment method ids must be unique"
    overdue = [l for l in data["loans"].values() if l["status"] == "active" and l["due_date"] < TODAY]
    assert len(overdue) >= 3


def test_user_hooks():
    ids = DOMAIN.user_ids()
    assert ids[0] == "M1001" and len(ids) == 20
    context = DOMAIN.user_context("M1003")
    assert context["user"]["email"] == "chloe.nguyen@example.com"
    assert {l["loan_id"] for l in context["loans"]} == {"L0004", "L0006"}
    assert {f["fine_id"] for f in context["fines"]} == {"F0003", "F0004"}
    assert "books" not in context
    assert DOMAIN.persona_set == "library"


# -- read tools --------------------------------------------------------------------------------
def test_find_member_by_email(env):
    assert ok(env, "find_member_by_email", email="alice.moreno@example.com") == "M1001"
    assert ok(env, "find_member_by_email", email="  Alice.Moreno@Example.com ") == "M1001"
    assert fails(env, "find_member_by_email", email="nobody@example.com") == "Member not found"


def test_get_member_details(env):
    details = ok(env, "get_member_details", member_id="M1003")
    assert details["unpaid_fines_total"] == 12.5
    assert {f["fine_id"] for f in details["unpaid_fines"]} == {"F0003", "F0004"}
    assert details["active_loans"] == []
    overdue = ok(env, "get_member_details", member_id="M1004")["active_loans"]
    assert overdue == [
        {"loan_id": "L0013", "book_id": "B005", "title": "Nineteen Eighty-Four",
         "due_date": "2024-06-03", "renewals": 0, "overdue": True}
    ]
    due_today = ok(env, "get_member_details", member_id="M1016")["active_loans"][0]
    assert due_today["due_date"] == TODAY and due_today["overdue"] is False
    assert "M9999 not found" in fails(env, "get_member_details", member_id="M9999")
    assert not StateDiff.of(env), "reads change nothing"


def test_observations_are_copies(env):
    details = ok(env, "get_member_details", member_id="M1001")
    details["email"] = "changed@example.com"
    details["payment_methods"].clear()
    assert env.record("members", "M1001")["email"] == "alice.moreno@example.com"
    assert env.record("members", "M1001")["payment_methods"]


def test_search_books(env):
    le_guin = ok(env, "search_books", author="le guin")
    assert [b["book_id"] for b in le_guin] == ["B008", "B011"]
    assert {b["title"] for b in ok(env, "search_books", title="HISTORY")} == {
        "Sapiens: A Brief History of Humankind",
        "A Brief History of Time",
    }
    sci_fi = ok(env, "search_books", genre="science fiction")
    assert "B007" in [b["book_id"] for b in sci_fi]
    available = ok(env, "search_books", genre="science fiction", available_only=True)
    assert "B007" not in [b["book_id"] for b in available]  # both copies of Dune are out
    assert ok(env, "search_books", title="no such title") == []
    assert len(ok(env, "search_books", genre="fiction")) <= 10
    assert "title, an author or a genre" in fails(env, "search_books")


def test_get_book_details(env):
    dune = ok(env, "get_book_details", book_id="B007")
    assert dune["title"] == "Dune" and dune["available_copies"] == 0
    assert set(dune["copies"]) == {"B007-1", "B007-2"}
    assert "Book B999 not found" in fails(env, "get_book_details", book_id="B999")


# -- write tools -------------------------------------------------------------------------------
def test_borrow_book(env):
    loan = ok(env, "borrow_book", member_id="M1009", book_id="B011")
    assert loan == {
        "loan_id": "L0027", "member_id": "M1009", "book_id": "B011", "copy_id": "B011-1",
        "borrowed_on": TODAY, "due_date": "2024-07-05", "renewals": 0, "status": "active",
        "returned_on": None,
    }
    assert env.record("books", "B011")["copies"]["B011-1"]["status"] == "on_loan"
    assert env.record("members", "M1009")["loans"][-1] == "L0027"
    second = ok(env, "borrow_book", member_id="M1009", book_id="B011")
    assert (second["loan_id"], second["copy_id"]) == ("L0028", "B011-2")
    assert "No copy of 'A Wizard of Earthsea' is available" in fails(
        env, "borrow_book", member_id="M1001", book_id="B011"
    )
    diff = StateDiff.of(env)
    assert {(c.table, c.key) for c in diff.changes} == {
        ("loans", "L0027"), ("loans", "L0028"), ("books", "B011"), ("members", "M1009")
    }


def test_borrow_book_errors(env):
    assert "M1006 is suspended" in fails(env, "borrow_book", member_id="M1006", book_id="B001")
    assert "Member M0000 not found" in fails(env, "borrow_book", member_id="M0000", book_id="B001")
    assert "Book B000 not found" in fails(env, "borrow_book", member_id="M1001", book_id="B000")
    assert "No copy of 'Dune'" in fails(env, "borrow_book", member_id="M1001", book_id="B007")
    assert not StateDiff.of(env)


def test_return_book_on_time(env):
    result = ok(env, "return_book", loan_id="L0020")
    assert result["fine"] is None
    assert result["loan"]["status"] == "returned" and result["loan"]["returned_on"] == TODAY
    assert env.record("books", "B012")["copies"]["B012-1"]["status"] == "available"
    due_today = ok(env, "return_book", loan_id="L0014")
    assert due_today["fine"] is None


def test_return_book_late_creates_fine(env):
    fine = ok(env, "return_book", loan_id="L0013")["fine"]
    assert fine["fine_id"] == "F0007" and fine["amount"] == 2.75  # 11 days x $0.25
    assert fine["member_id"] == "M1004" and fine["status"] == "unpaid"
    assert env.record("members", "M1004")["fines"][-1] == "F0007"
    week_late = ok(env, "return_book", loan_id="L0010")["fine"]  # 7 days late
    assert week_late["amount"] == 1.75
    capped = ok(env, "return_book", loan_id="L0011")["fine"]  # 49 days late: $12.25, capped
    assert capped["amount"] == 10.0 and capped["fine_id"] == "F0009"


def test_return_book_errors(env):
    assert "already returned on 2024-03-28" in fails(env, "return_book", loan_id="L0001")
    assert "Loan L9999 not found" in fails(env, "return_book", loan_id="L9999")
    ok(env, "return_book", loan_id="L0020")
    assert "already returned" in fails(env, "return_book", loan_id="L0020")


def test_renew_loan(env):
    loan = ok(env, "renew_loan", loan_id="L0020")
    assert loan["due_date"] == "2024-07-09" and loan["renewals"] == 1
    assert "cannot be renewed" in fails(env, "renew_loan", loan_id="L0001")
    assert "not found" in fails(env, "renew_loan", loan_id="L0000")


def test_pay_fine_with_card_and_credit(env):
    fine = ok(env, "pay_fine", fine_id="F0005", payment_method_id="card_8120")
    assert (fine["status"], fine["paid_on"], fine["payment_method_id"]) == ("paid", TODAY, "card_8120")
    paid = ok(env, "pay_fine", fine_id="F0006", payment_method_id="credit_1014")
    assert paid["status"] == "paid"
    assert env.record("members", "M1014")["payment_methods"]["credit_1014"]["balance"] == 0.0


def test_pay_fine_errors(env):
    assert "Insufficient library credit: balance $5.00, fine $7.50" in fails(
        env, "pay_fine", fine_id="F0005", payment_method_id="credit_1007"
    )
    assert "already paid on 2024-01-30" in fails(env, "pay_fine", fine_id="F0002", payment_method_id="card_4095")
    assert "Fine F9999 not found" in fails(env, "pay_fine", fine_id="F9999", payment_method_id="card_4095")
    assert "Payment method card_0000 not found" in fails(
        env, "pay_fine", fine_id="F0005", payment_method_id="card_0000"
    )
    assert not StateDiff.of(env)


def test_transfer_to_librarian(env):
    assert ok(env, "transfer_to_librarian", summary="wants a fine waived") == "Transfer successful"
    result = call(env, "transfer_to_librarian")
    assert result.error_type == "ArgumentError" and "missing required argument summary" in result.error


def test_argument_errors(env):
    wrong_type = call(env, "get_member_details", member_id=1001)
    assert wrong_type.error_type == "ArgumentError" and "member_id must be string" in wrong_type.error
    extra = call(env, "renew_loan", loan_id="L0020", days=7)
    assert extra.error_type == "ArgumentError" and "unexpected argument days" in extra.error
    unknown = call(env, "delete_member", member_id="M1001")
    assert unknown.error_type == "UnknownToolError" and "borrow_book" in unknown.error
    assert not StateDiff.of(env)


def test_environments_are_independent(env):
    other = DOMAIN.new_env()
    ok(env, "renew_loan", loan_id="L0020")
    snapshot = env.fork()
    ok(env, "renew_loan", loan_id="L0020")
    assert env.record("loans", "L0020")["renewals"] == 2
    assert snapshot.record("loans", "L0020")["renewals"] == 1
    assert other.record("loans", "L0020")["renewals"] == 0
    assert DOMAIN.data["loans"]["L0020"]["renewals"] == 0


# -- policy rules ------------------------------------------------------------------------------
RULE = {rule.name: rule for rule in RULES}


def find(email: str) -> dict:
    return {"name": "find_member_by_email", "arguments": {"email": email}}


def act(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def violations(rule_name: str, actions: list[dict]) -> list[str]:
    trace = execute_actions(DOMAIN.new_env(), actions, snapshots=True)
    assert not trace.failed, [c.error for c in trace.failed]
    return RULE[rule_name].check(trace)


def test_rules_are_all_registered():
    assert [rule.name for rule in DOMAIN.policy_rules] == [
        "verify_identity", "max_active_loans", "no_borrowing_with_fines", "no_renewing_overdue",
        "renewal_limit", "own_payment_method", "transfer_is_final",
    ]
    for rule in RULES:
        assert rule.description and all(DOMAIN.tool(t) for t in rule.tools)


ALICE, CHLOE, DANIEL = "alice.moreno@example.com", "chloe.nguyen@example.com", "daniel.fischer@example.com"

RULE_CASES = {
    "verify_identity": (
        [find(ALICE), act("renew_loan", loan_id="L0020"), act("search_books", title="dune")],
        [find(CHLOE), act("renew_loan", loan_id="L0020")],
        "changes member M1001's account before their identity was verified",
    ),
    "max_active_loans": (
        [find("mei.chen@example.com"), act("borrow_book", member_id="M1013", book_id="B001")],
        [find("ben.okafor@example.com"), act("borrow_book", member_id="M1002", book_id="B001")],
        "already has 3 active loans; a member can have at most 3",
    ),
    "no_borrowing_with_fines": (
        [find(CHLOE), act("pay_fine", fine_id="F0003", payment_method_id="card_3386"),
         act("borrow_book", member_id="M1003", book_id="B028")],
        [find(CHLOE), act("borrow_book", member_id="M1003", book_id="B028")],
        "whose unpaid fines total $12.50",
    ),
    "no_renewing_overdue": (
        [find("priya.patel@example.com"), act("renew_loan", loan_id="L0014")],  # due today
        [find(DANIEL), act("renew_loan", loan_id="L0013")],
        "which was overdue (due 2024-06-03, today is 2024-06-14)",
    ),
    "renewal_limit": (
        [find("k.nowak@example.com"), act("renew_loan", loan_id="L0015")],  # second renewal
        [find("emma.rossi@example.com"), act("renew_loan", loan_id="L0012")],
        "already renewed 2 times; a loan can be renewed at most 2 times",
    ),
    "own_payment_method": (
        [find("grace.kim@example.com"), act("pay_fine", fine_id="F0005", payment_method_id="card_8120")],
        [find("grace.kim@example.com"), act("pay_fine", fine_id="F0005", payment_method_id="credit_1011")],
        "with credit_1011, which is not one of their payment methods (credit_1007, card_8120)",
    ),
    "transfer_is_final": (
        [find(ALICE), act("get_member_details", member_id="M1001"),
         act("transfer_to_librarian", summary="lost book")],
        [find(ALICE), act("transfer_to_librarian", summary="lost book"),
         act("get_member_details", member_id="M1001")],
        "but get_member_details follow it",
    ),
}


@pytest.mark.parametrize("rule_name", list(RULE_CASES))
def test_rule_passes_and_fails(rule_name):
    passing, failing, message = RULE_CASES[rule_name]
    assert violations(rule_name, passing) == []
    found = violations(rule_name, failing)
    assert len(found) == 1 and message in found[0], found


def test_rule_cases_cover_every_rule():
    assert set(RULE_CASES) == set(RULE)


def test_identity_rule_follows_loans_and_fines_to_their_member():
    # Verified as Daniel, but returning Alice's loan and paying Chloe's fine.
    found = violations("verify_identity", [
        find(DANIEL),
        act("return_book", loan_id="L0020"),
        act("pay_fine", fine_id="F0004", payment_method_id="card_3386"),
        act("return_book", loan_id="L0013"),
    ])
    assert [m.split(" changes ")[1][:14] for m in found] == ["member M1001's", "member M1003's"]


def test_failed_calls_are_not_policy_breaches():
    trace = execute_actions(
        DOMAIN.new_env(), [act("borrow_book", member_id="M1002", book_id="B007")], snapshots=True
    )
    assert trace.failed
    assert all(rule.check(trace) == [] for rule in RULES)


def test_rules_use_the_shared_trace_queries():
    """The template shows the shared helpers, not private copies of them."""
    import apigen_mt.domains.library.rules as library_rules
    from apigen_mt.tools.checks import trace_queries

    for name in ("ok_calls", "where", "before", "record_before", "calls_after"):
        assert getattr(library_rules, name) is getattr(trace_queries, name)
    assert not {"_calls", "_before", "_where"} & set(vars(library_rules))
    trace = execute_actions(
        DOMAIN.new_env(),
        [find(ALICE), act("renew_loan", loan_id="L0020"), act("renew_loan", loan_id="L9999")],
        snapshots=True,
    )
    renew = next(trace_queries.ok_calls(trace, "renew_loan"))
    assert [c.index for c in trace_queries.ok_calls(trace)] == [0, 1]  # the failed call is left out
    assert trace_queries.where(renew) == "actions[1] renew_loan"
    assert trace_queries.record_before(renew, "loans", "L0020")["renewals"] == 0
    assert trace_queries.record_before(renew, "loans", 20) is None
    assert trace.env.record("loans", "L0020")["renewals"] == 1
    assert [c.index for c in trace_queries.calls_after(trace, 0)] == [1, 2]
    assert trace_queries.initial_state(trace).record("loans", "L0020")["renewals"] == 0
    assert library_rules.account_of(renew) == "M1001"


def test_rules_need_snapshots():
    trace = execute_actions(DOMAIN.new_env(), [find(ALICE), act("renew_loan", loan_id="L0020")])
    with pytest.raises(ValueError, match="snapshots"):
        RULE["no_renewing_overdue"].check(trace)


def test_policy_stage_reports_rule_names():
    result = validate_blueprint(DOMAIN, {
        "id": "bad", "domain": "library", "instruction": "Renew my overdue book.",
        "actions": [act("renew_loan", loan_id="L0013")], "outputs": [],
    })
    assert result.stage == "policy" and not result.passed
    assert any(r.startswith("[verify_identity]") for r in result.reasons)
    assert any(r.startswith("[no_renewing_overdue]") for r in result.reasons)


# -- examples ----------------------------------------------------------------------------------
def test_examples_all_validate():
    raw = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    assert 5 <= len(raw) <= 8
    assert len({r["id"] for r in raw}) == len(raw)
    tools_used = set()
    for blueprint in raw:
        result = validate_blueprint(DOMAIN, blueprint)
        assert result.passed, (blueprint["id"], result.stage, result.reasons)
        tools_used |= {a["name"] for a in blueprint["actions"]}
    assert tools_used == {spec.name for spec in DOMAIN.tools}, "examples should show every tool"


def test_example_blueprints_hook():
    examples = DOMAIN.example_blueprints()
    assert all(isinstance(b, Blueprint) and b.domain == "library" for b in examples)
    assert [b.id for b in examples] == [
        json.loads(line)["id"] for line in EXAMPLES.read_text().splitlines() if line.strip()
    ]


def test_cli_validate_examples(tmp_path, capsys):
    from apigen_mt.cli import main

    out = tmp_path / "results.jsonl"
    assert main(["validate", str(EXAMPLES), "--domain", "library", "--out", str(out), "--fail-on-reject"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(row["passed"] for row in rows)
