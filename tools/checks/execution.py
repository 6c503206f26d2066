"""Execution check: every action runs in a fresh environment without error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.executor import ExecutionTrace, execute_actions


def execute_blueprint(domain: Domain, actions: Iterable[Any]) -> ExecutionTrace:
    """Run the actions on a fresh fork, keeping a snapshot before each for the policy rules."""
    return execute_actions(domain.new_env(), actions, snapshots=True)


def execution_errors(trace: ExecutionTrace) -> list[str]:
    """One reason per failed call, naming the call and quoting the API's error."""
    return [
        f"actions[{call.index}] {call.name}({_args(call.arguments)}) failed: {call.error}"
        for call in trace.failed
    ]


def _args(arguments: Any) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items()) if isinstance(arguments, dict) else repr(arguments)
    return text if len(text) <= 160 else text[:157] + "..."
