"""The library policy (policy.md) as executable checks over an execution trace.

A rule is a :class:`PolicyRule`: a name, a description, the tools it is about (so the
generator is shown only the rules relevant to the tools it sampled) and ``check(trace)``
returning one message per breach. Messages go back to the generator as feedback, so each
says what happened and what the policy requires.

The generic ways of reading a trace come from
:mod:`apigen_mt.tools.checks.trace_queries`, shared by every domain's rules:

* ``ok_calls(trace, "renew_loan")``: the successful calls of those tools, in order (a
  refused call changed nothing, so only successful calls are checked);
* ``before(call)``: the state just before the call, a snapshot environment;
  ``before(call).record("loans", "L0001")`` is the loan as it was then;
* ``where(call)``: how a message names the call, ``actions[2] renew_loan``;
* ``calls_after(trace, index)``, ``record_before(call, table, key)``, ``initial_state(trace)``.

The helpers under "this domain's helpers" below are specific to the library (whose account a
call changes, a member's loans and unpaid fines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apigen_mt.domains.base import Environment, PolicyRule
from apigen_mt.tools.checks.trace_queries import before, calls_after, ok_calls, record_before, where
from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace

from .domain import BORROWING_FINE_LIMIT, MAX_ACTIVE_LOANS, MAX_RENEWALS, TODAY

ACCOUNT_CHANGES = ("borrow_book", "return_book", "renew_loan", "pay_fine")


# -- this domain's helpers ------------------------------------------------------------------------
def account_of(call: ExecutedCall) -> str | None:
    """The member whose account a write call changes, read from the state before the call."""
    args = call.arguments
    if call.name == "borrow_book":
        return args.get("member_id")
    if call.name in ("return_book", "renew_loan"):
        loan = record_before(call, "loans", args.get("loan_id"))
        return loan["member_id"] if loan else None
    if call.name == "pay_fine":
        fine = record_before(call, "fines", args.get("fine_id"))
        return fine["member_id"] if fine else None
    return None


def _member_loans(state: Environment, member_id: str) -> list[dict[str, Any]]:
    member = state.record("members", member_id) or {"loans": []}
    return [loan for loan in (state.record("loans", i) for i in member["loans"]) if loan]


def _unpaid_total(state: Environment, member_id: str) -> float:
    member = state.record("members", member_id) or {"fines": []}
    fines = [state.record("fines", i) for i in member["fines"]]
    return round(sum(f["amount"] for f in fines if f and f["status"] == "unpaid"), 2)


# -- the rules --------------------------------------------------------------------------------------
def verify_identity(trace: ExecutionTrace) -> list[str]:
    verified: set[str] = set()
    messages = []
    for call in ok_calls(trace, "find_member_by_email", *ACCOUNT_CHANGES):
        if call.name == "find_member_by_email":
            verified.add(call.observation)
            continue
        member_id = account_of(call)
        if member_id is not None and member_id not in verified:
            messages.append(
                f"{where(call)} changes member {member_id}'s account before their identity was "
                "verified: look the member up with find_member_by_email first"
            )
    return messages


def max_active_loans(trace: ExecutionTrace) -> list[str]:
    messages = []
    for call in ok_calls(trace, "borrow_book"):
        member_id = call.arguments["member_id"]
        active = [l for l in _member_loans(before(call), member_id) if l["status"] == "active"]
        if len(active) >= MAX_ACTIVE_LOANS:
            messages.append(
                f"{where(call)} lends a book to member {member_id}, who already has {len(active)} "
                f"active loans; a member can have at most {MAX_ACTIVE_LOANS}"
            )
    return messages


def no_borrowing_with_fines(trace: ExecutionTrace) -> list[str]:
    messages = []
    for call in ok_calls(trace, "borrow_book"):
        member_id = call.arguments["member_id"]
        unpaid = _unpaid_total(before(call), member_id)
        if unpaid > BORROWING_FINE_LIMIT:
            messages.append(
                f"{where(call)} lends a book to member {member_id}, whose unpaid fines total "
                f"${unpaid:.2f}; members with more than ${BORROWING_FINE_LIMIT:.2f} unpaid cannot "
                "borrow until they pay"
            )
    return messages


def no_renewing_overdue(trace: ExecutionTrace) -> list[str]:
    messages = []
    for call in ok_calls(trace, "renew_loan"):
        loan = before(call).record("loans", call.arguments["loan_id"])
        if loan and loan["due_date"] < TODAY:
            messages.append(
                f"{where(call)} renews loan {loan['loan_id']}, which was overdue (due "
                f"{loan['due_date']}, today is {TODAY}); overdue loans cannot be renewed"
            )
    return messages


def renewal_limit(trace: ExecutionTrace) -> list[str]:
    messages = []
    for call in ok_calls(trace, "renew_loan"):
        loan = before(call).record("loans", call.arguments["loan_id"])
        if loan and loan["renewals"] >= MAX_RENEWALS:
            messages.append(
                f"{where(call)} renews loan {loan['loan_id']}, already renewed {loan['renewals']} "
                f"times; a loan can be renewed at most {MAX_RENEWALS} times"
            )
    return messages


def own_payment_method(trace: ExecutionTrace) -> list[str]:
    messages = []
    for call in ok_calls(trace, "pay_fine"):
        state = before(call)
        fine = state.record("fines", call.arguments["fine_id"])
        if fine is None:
            continue
        member = state.record("members", fine["member_id"]) or {"payment_methods": {}}
        method = call.arguments["payment_method_id"]
        if method not in member["payment_methods"]:
            messages.append(
                f"{where(call)} pays fine {fine['fine_id']} of member {fine['member_id']} with "
                f"{method}, which is not one of their payment methods "
                f"({', '.join(member['payment_methods']) or 'none on file'})"
            )
    return messages


def transfer_is_final(trace: ExecutionTrace) -> list[str]:
    for call in ok_calls(trace, "transfer_to_librarian"):
        later = calls_after(trace, call.index)
        if later:
            return [
                f"{where(call)} transfers the member to a librarian, but "
                f"{', '.join(c.name for c in later)} follow it; make no tool calls after a transfer"
            ]
    return []


def _rule(name: str, description: str, tools: tuple[str, ...], check: Callable[[ExecutionTrace], list[str]]) -> PolicyRule:
    return PolicyRule(name=name, description=description, tools=tools, check=check)


RULES: list[PolicyRule] = [
    _rule(
        "verify_identity",
        "Verify the member's identity with find_member_by_email before any account change.",
        ("find_member_by_email", *ACCOUNT_CHANGES),
        verify_identity,
    ),
    _rule(
        "max_active_loans",
        f"A member can have at most {MAX_ACTIVE_LOANS} active loans.",
        ("borrow_book",),
        max_active_loans,
    ),
    _rule(
        "no_borrowing_with_fines",
        f"Members with more than ${BORROWING_FINE_LIMIT:.2f} in unpaid fines cannot borrow.",
        ("borrow_book", "pay_fine"),
        no_borrowing_with_fines,
    ),
    _rule(
        "no_renewing_overdue",
        "Overdue loans cannot be renewed.",
        ("renew_loan",),
        no_renewing_overdue,
    ),
    _rule(
        "renewal_limit",
        f"Each loan can be renewed at most {MAX_RENEWALS} times.",
        ("renew_loan",),
        renewal_limit,
    ),
    _rule(
        "own_payment_method",
        "A fine is paid only with a payment method of the member it belongs to.",
        ("pay_fine",),
        own_payment_method,
    ),
    _rule(
        "transfer_is_final",
        "No tool calls after transferring the member to a librarian.",
        ("transfer_to_librarian",),
        transfer_is_final,
    ),
]
