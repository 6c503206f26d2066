"""Reading an execution trace, for policy rules of any domain.

A policy rule (:class:`~apigen_mt.domains.base.PolicyRule`) sees the calls of one blueprint
in order: each an :class:`~apigen_mt.tools.executor.ExecutedCall` with its name, arguments,
observation or error, and ``before``, a snapshot of the environment just before the call.
Only successful calls count as having happened: a failed call changed nothing, and the
execution check already reports it.

These helpers are domain-independent; a domain's ``rules.py`` imports them::

    from apigen_mt.tools.checks.trace_queries import before, ok_calls, where

    def no_renewing_overdue(trace):
        messages = []
        for call in ok_calls(trace, "renew_loan"):
            loan = before(call).record("loans", call.arguments["loan_id"])
            if loan and loan["due_date"] < TODAY:
                messages.append(f"{where(call)} renews overdue loan {loan['loan_id']}; ...")
        return messages

The validator runs every trace with snapshots (:func:`~apigen_mt.tools.checks.execution.
execute_blueprint`); :func:`before` raises ``ValueError`` on a trace recorded without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.domains.base import Environment
    from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace

__all__ = ["before", "calls_after", "initial_state", "ok_calls", "record_before", "where"]


def ok_calls(trace: "ExecutionTrace", *names: str) -> Iterator["ExecutedCall"]:
    """The successful calls, in order; with ``names``, only the calls of those tools."""
    for call in trace.calls:
        if call.ok and (not names or call.name in names):
            yield call


def where(call: "ExecutedCall") -> str:
    """How a message names a call: ``actions[3] cancel_pending_order``."""
    return f"actions[{call.index}] {call.name}"


def before(call: "ExecutedCall") -> "Environment":
    """The state just before ``call`` (a snapshot environment: read it, do not run tools on it)."""
    if call.before is None:
        raise ValueError(
            "the trace was recorded without snapshots: run it with execute_blueprint, or "
            "execute_actions(..., snapshots=True)"
        )
    return call.before


def record_before(call: "ExecutedCall", table: str, key: Any) -> Any:
    """One record as it was just before ``call``; None when absent or ``key`` is not a string."""
    if not isinstance(key, str):
        return None
    return before(call).record(table, key)


def initial_state(trace: "ExecutionTrace") -> "Environment":
    """The state the trace started from (the final one when the trace has no snapshot)."""
    if trace.calls and trace.calls[0].before is not None:
        return trace.calls[0].before
    return trace.env


def calls_after(trace: "ExecutionTrace", index: int) -> list["ExecutedCall"]:
    """Every call after ``actions[index]``, failed ones included."""
    return [call for call in trace.calls if call.index > index]
