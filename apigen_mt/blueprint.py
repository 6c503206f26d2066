"""The task blueprint (q, a_gt, o_gt): what Phase 1 produces and Phase 2 consumes.

JSON form, one per line in a ``.jsonl`` file (extra fields are kept)::

    {"id", "domain", "instruction", "actions": [{"name", "arguments"}], "outputs": [str]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Action(BaseModel):
    """One ground-truth tool call."""

    model_config = ConfigDict(extra="allow")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Blueprint(BaseModel):
    """A user instruction with the tool calls that fulfil it and what must be said."""

    model_config = ConfigDict(extra="allow")

    id: str
    domain: str
    instruction: str
    actions: list[Action] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)

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
