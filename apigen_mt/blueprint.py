"""The task blueprint (q, a_gt, o_gt): what Phase 1 produces and Phase 2 consumes.

JSON form, one per line in a ``.jsonl`` file (extra fields are kept)::

    {"id", "domain", "instruction", "actions": [{"name", "arguments"}], "outputs": [str]}

In a domain where the user acts too (tau2 telecom), an action may carry ``"requestor":
"user"`` (the user runs it on their device; the assistant's is the default and is not
written), and a blueprint may carry ``initial_state`` (the world it starts in, in the
domain's terms: tau2's ``initialization_data`` / ``initialization_actions``) and
``assertions`` (checks on the final state: ``{"env_type", "func_name", "arguments",
"assert_value"}``) and ``reward_basis`` (what the verifier's reward rests on, tau2's names:
``DB``, ``ENV_ASSERTION``, ``COMMUNICATE``; all of them by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Action(BaseModel):
    """One ground-truth tool call."""

    model_config = ConfigDict(extra="allow")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    requestor: Literal["assistant", "user"] | None = None
    """Who makes the call: the assistant (None, the default) or the user on their own device."""

    @field_validator("requestor")
    @classmethod
    def _assistant_is_the_default(cls, value: str | None) -> str | None:
        return None if value == "assistant" else value  # not written out: the JSON stays as before


class Blueprint(BaseModel):
    """A user instruction with the tool calls that fulfil it and what must be said."""

    model_config = ConfigDict(extra="allow")

    id: str
    domain: str
    instruction: str
    actions: list[Action] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    initial_state: dict[str, Any] | None = None
    assertions: list[dict[str, Any]] | None = None
    reward_basis: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def blueprint_json(blueprint: Any) -> Mapping[str, Any]:
    """The JSON form of a blueprint given as a dict (returned as is) or as a
    :class:`Blueprint` (or any object with ``to_json()`` / ``model_dump()``)."""
    if isinstance(blueprint, Mapping):
        return blueprint
    for method in ("to_json", "model_dump"):
        if callable(getattr(blueprint, method, None)):
            return getattr(blueprint, method)()
    raise TypeError(f"not a blueprint (a dict or an object with to_json()): {type(blueprint).__name__}")
