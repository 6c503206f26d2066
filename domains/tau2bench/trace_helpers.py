"""What the tau2 policy rules (retail and airline) share beyond the generic trace queries.

The domain-independent ways of reading a trace (successful calls of some tools, the state
before a call, how a message names a call, ...) live in
:mod:`apigen_mt.tools.checks.trace_queries`; this module holds what is specific to tau2:
the rule decorator the tau2 rule modules use, telling a write-only gold action list apart,
and the transfer rule both domains have.

tau2's gold action lists sometimes record only the state-changing calls (the reads the
assistant made during the conversation are left out, since tau2 grades on the final
database). :func:`spells_out_lookups` tells such a *write-only* list apart, so rules that
are about reads (for example "authenticate first") can judge only lists that show them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from apigen_mt.domains.base import PolicyRule, ToolKind
from apigen_mt.tools.checks.trace_queries import calls_after, ok_calls, where

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.tools.executor import ExecutionTrace

Check = Callable[["ExecutionTrace"], list[str]]


def policy_rule(name: str, tools: Iterable[str], description: str) -> Callable[[Check], PolicyRule]:
    """Decorator: turn ``check(trace) -> messages`` into a :class:`PolicyRule`."""

    def wrap(check: Check) -> PolicyRule:
        return PolicyRule(name=name, description=" ".join(description.split()), tools=tuple(tools), check=check)

    return wrap


def spells_out_lookups(trace: "ExecutionTrace") -> bool:
    """Whether the action list shows any read call (False: a write-only ground truth)."""
    return any(call.kind == ToolKind.READ for call in trace.calls)


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
                names = ", ".join(where(c) for c in later)
                return [
                    f"{where(call)} hands the user to a human agent, but the trace goes on with {names}: "
                    "after a transfer the agent only tells the user they are being transferred"
                ]
        return []

    return check
