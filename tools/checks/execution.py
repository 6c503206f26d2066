"""Execution check: every action runs, in the blueprint's initial state, without error, and the
blueprint's own assertions hold at the end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apigen_mt.domains.base import Domain, DomainError, Environment, ToolError
from apigen_mt.tools.executor import ExecutionTrace, execute_actions


def start_env(domain: Domain, initial_state: Mapping[str, Any] | None) -> tuple[Environment, str | None]:
    """A fresh environment in ``initial_state`` and None, or the pristine one and why the
    initial state could not be built."""
    try:
        return domain.env_for(initial_state), None
    except (DomainError, ToolError) as error:
        return domain.new_env(), str(error)


def execute_blueprint(domain: Domain, actions: Iterable[Any], initial_state: Mapping[str, Any] | None = None) -> ExecutionTrace:
    """Run the actions on a fresh fork in ``initial_state``, keeping a snapshot before each for the policy rules."""
    env, problem = start_env(domain, initial_state)
    trace = execute_actions(env, actions, snapshots=True)
    trace.setup_error = problem
    return trace


def execution_errors(trace: ExecutionTrace, assertions: Iterable[Mapping[str, Any]] | None = None) -> list[str]:
    """One reason per failed call, naming the call and quoting the API's error; then one per
    assertion (a blueprint's ``assertions``) that does not hold in the final state."""
    errors = [f"initial_state could not be built: {trace.setup_error}"] if trace.setup_error else []
    errors += [
        f"actions[{call.index}] {'user ' if call.by_user else ''}{call.name}({_args(call.arguments)}) failed: {call.error}"
        for call in trace.failed
    ]
    return errors + assertion_errors(trace.env, assertions)


def assertion_errors(env: Environment, assertions: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """One reason per assertion that does not hold in ``env`` (or cannot be evaluated)."""
    errors = []
    for index, assertion in enumerate(assertions or []):
        where = f"assertions[{index}] {assertion.get('func_name') if isinstance(assertion, Mapping) else assertion!r}"
        try:
            if not isinstance(assertion, Mapping):
                raise ToolError("an assertion is an object: env_type, func_name, arguments, assert_value")
            if not env.assertion_holds(assertion):
                errors.append(f"{where}({_args(assertion.get('arguments') or {})}) does not give "
                              f"{assertion.get('assert_value', True)!r} after the actions")
        except ToolError as error:
            errors.append(f"{where} cannot be evaluated: {error}")
    return errors


def _args(arguments: Any) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items()) if isinstance(arguments, dict) else repr(arguments)
    return text if len(text) <= 160 else text[:157] + "..."
