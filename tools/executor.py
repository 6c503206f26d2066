"""Runs tool calls in an environment and records what happened (the execution trace).

Every call ends as an observation or as a typed error with a message that reads like a
real API's; nothing a domain raises escapes as a crash. The trace is what the execution
check, the policy rules and the verifier read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import ArgumentError, Environment, ToolError, ToolExecutionError, ToolKind


@dataclass
class ExecutedCall:
    """One call and its outcome. ``before`` is a snapshot of the state just before it."""

    index: int
    name: str
    arguments: dict[str, Any]
    kind: ToolKind | None
    observation: Any = None
    error: str | None = None
    error_type: str | None = None
    before: Environment | None = field(default=None, repr=False, compare=False)
    requestor: str | None = None  # "user": the user ran it on their device; None: the assistant

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_write(self) -> bool:
        return self.kind == ToolKind.WRITE

    def render(self) -> str:
        """What the caller sees: the observation as text, or ``Error: ...``."""
        return f"Error: {self.error}" if self.error is not None else render_observation(self.observation)

    @property
    def by_user(self) -> bool:
        return self.requestor == "user"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.by_user:
            out["requestor"] = "user"
        if self.error is None:
            out["observation"] = self.observation
        else:
            out["error"], out["error_type"] = self.error, self.error_type
        return out


@dataclass
class ExecutionTrace:
    """The calls run in one environment, in order, and the environment they ended in."""

    env: Environment
    calls: list[ExecutedCall] = field(default_factory=list)
    setup_error: str | None = None  # the initial state could not be built (the calls ran on the pristine one)

    @property
    def failed(self) -> list[ExecutedCall]:
        return [call for call in self.calls if not call.ok]

    @property
    def writes(self) -> list[ExecutedCall]:
        return [call for call in self.calls if call.is_write and call.ok]


def render_observation(value: Any) -> str:
    """A tool result as the text an agent would read."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def run_call(
    env: Environment, index: int, name: Any, arguments: Any, snapshot: bool = False, requestor: Any = None
) -> ExecutedCall:
    """Execute one call (``requestor="user"``: one of the user's own tools, on their device);
    errors of any kind become part of the returned record."""
    by_user = requestor == "user"
    domain = env.domain
    spec = (domain.user_tool(name) if by_user else domain.tool(name)) if isinstance(name, str) else None
    call = ExecutedCall(
        index=index,
        name=str(name),
        arguments=dict(arguments) if isinstance(arguments, Mapping) else arguments,
        kind=spec.kind if spec else None,
        before=env.fork() if snapshot else None,
        requestor="user" if by_user else None,
    )
    try:
        if not isinstance(arguments, Mapping):
            raise ArgumentError(f"arguments of {call.name} must be an object, got {type(arguments).__name__}")
        call.observation = env.execute_user(call.name, arguments) if by_user else env.execute(call.name, arguments)
    except ToolError as error:
        call.error, call.error_type = str(error), type(error).__name__
    except Exception as error:  # a bug in domain code: report it, keep going
        wrapped = ToolExecutionError(f"{type(error).__name__}: {error}")
        call.error, call.error_type = str(wrapped), type(wrapped).__name__
    return call


def execute_actions(
    env: Environment,
    actions: Iterable[Mapping[str, Any] | Any],
    snapshots: bool = False,
    stop_on_error: bool = False,
) -> ExecutionTrace:
    """Run ``actions`` (``{"name", "arguments"}`` dicts or objects with those attributes; a
    ``requestor`` of ``"user"`` runs one of the user's tools)."""
    trace = ExecutionTrace(env=env)
    for index, action in enumerate(actions):
        if isinstance(action, Mapping):
            name, arguments, requestor = action.get("name"), action.get("arguments", {}), action.get("requestor")
        else:
            name, arguments = getattr(action, "name", None), getattr(action, "arguments", {})
            requestor = getattr(action, "requestor", None)
        call = run_call(env, index, name, arguments, snapshot=snapshots, requestor=requestor)
        trace.calls.append(call)
        if stop_on_error and not call.ok:
            break
    return trace
