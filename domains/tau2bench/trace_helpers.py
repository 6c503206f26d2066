"""Reading an execution trace for the tau2 policy rules (retail and airline share these).

A rule sees the calls of one blueprint in order (:class:`ExecutedCall`: name, arguments,
observation or error, and ``before``: a snapshot of the environment just before the call).
Only successful calls count as having happened; a failed call changed nothing and is
already reported by the execution check.

tau2's gold action lists sometimes record only the state-changing calls (the reads the
assistant made during the conversation are left out, since tau2 grades on the final
database). :func:`spells_out_lookups` tells such a *write-only* list apart, so rules that
are about reads (for example "authenticate first") can judge only lists that show them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from apigen_mt.domains.base import Environment, PolicyRule, ToolKind

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace

Check = Callable[["ExecutionTrace"], list[str]]


def policy_rule(name: str, tools: Iterable[str], description: str) -> Callable[[Check], PolicyRule]:
    """Decorator: turn ``check(trace) -> messages`` into a :class:`PolicyRule`."""

    def wrap(check: Check) -> PolicyRule:
        return PolicyRule(name=name, description=" ".join(description.split()), tools=tuple(tools), check=check)

    return wrap


def ok_calls(trace: "ExecutionTrace", *names: str) -> Iterator["ExecutedCall"]:
    """The successful calls, optionally only those of the named tools, in order."""
    for call in trace.calls:
        if call.ok and (not names or call.name in names):
            yield call


def where(call: "ExecutedCall") -> str:
    """How a message names a call: ``actions[3] cancel_pending_order``."""
    return f"actions[{call.index}] {call.name}"


def before(call: "ExecutedCall") -> Environment:
    """The state just before ``call``; policy checks always run with snapshots."""
    if call.before is None:
        raise ValueError("the trace was recorded without snapshots (use execute_blueprint)")
    return call.before


def record_before(call: "ExecutedCall", table: str, key: Any) -> dict[str, Any] | None:
    """One record as it was just before ``call`` (None when absent or the key is not a string)."""
    if not isinstance(key, str):
        return None
    return before(call).record(table, key)


def initial_state(trace: "ExecutionTrace") -> Environment:
    """The state the trace started from (the final one when the trace is empty)."""
    if trace.calls and trace.calls[0].before is not None:
        return trace.calls[0].before
    return trace.env


def spells_out_lookups(trace: "ExecutionTrace") -> bool:
    """Whether the action list shows any read call (False: a write-only ground truth)."""
    return any(call.kind == ToolKind.READ for call in trace.calls)


def calls_after(trace: "ExecutionTrace", index: int) -> list["ExecutedCall"]:
    return [call for call in trace.calls if call.index > index]


def transfer_ends_conversation_rule() -> PolicyRule:
    """Shared by retail and airline: nothing happens after a transfer to a human agent."""

    @policy_rule(
        "transfer_ends_conversation",
        ("transfer_to_human_agents",),
        """Policy: "To transfer, first make a tool call to transfer_to_human_agents, and then send the
        message 'YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.' to the user." The
        transfer hands the conversation over, so it is the last tool call of the trace.""",
    )
    def check(trace: "ExecutionTrace") -> list[str]:
        for call in ok_calls(trace, "transfer_to_human_agents"):
            later = calls_after(trace, call.index)
            if later:
                names = ", ".join(f"actions[{c.index}] {c.name}" for c in later)
                return [
                    f"{where(call)} hands the user to a human agent, but the trace goes on with {names}: "
                    "after a transfer the agent only tells the user they are being transferred"
                ]
        return []

    return check
