"""The task blueprint (q, a_gt, o_gt): what Phase 1 produces and Phase 2 consumes.

JSON form, one per line in a ``.jsonl`` file (extra fields are kept)::

    {"id", "domain", "instruction", "actions": [{"name", "arguments"}], "outputs": [str]}
"""

from __future__ import annotations

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
