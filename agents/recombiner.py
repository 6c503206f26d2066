"""Reverse task recombination: several validated blueprints of one user -> one instruction.

The actions and outputs are merged deterministically (concatenated in order; repeated
identical calls and outputs kept once); the LLM only writes the combined instruction::

    result = await arecombine_instructions(model, domain, [bp1, bp2])
    if result.ok:
        combined = combined_blueprint(result.value, domain, [bp1, bp2], "bp-1+bp-2")
        # -> policy check, then the committee again
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from apigen_mt.blueprint import Action, Blueprint
from apigen_mt.domains.base import Domain
from apigen_mt.llm.structured import StructuredResult, astructured_call, bounded
from apigen_mt.prompts import render_prompt

from .generator import as_json, bullet_list, feedback_text
from .reviewer import _blueprint_parts

__all__ = [
    "CombinedInstruction",
    "arecombine_instructions",
    "combined_blueprint",
    "merge_parts",
    "recombiner_messages",
]


@bounded
class CombinedInstruction(BaseModel):
    """One instruction covering all the sub-tasks."""

    thought: str | None = Field(default=None, max_length=300, description="how the sub-tasks fit together")
    instruction: str = Field(max_length=1500, description="the combined instruction, second person, to the user")


def _key(action: Mapping[str, Any]) -> str:
    return json.dumps([action.get("name"), action.get("arguments", {})], sort_keys=True, default=str)


def merge_parts(blueprints: Sequence[Blueprint | Mapping[str, Any]]) -> dict[str, Any]:
    """``{"instructions", "actions", "outputs"}`` of the blueprints, actions and outputs
    concatenated in order with exact repeats dropped (a shared look-up is made once)."""
    instructions, actions, outputs = [], [], []
    seen_actions: set[str] = set()
    seen_outputs: set[str] = set()
    for blueprint in blueprints:
        parts = _blueprint_parts(blueprint)
        instructions.append(str(parts["instruction"]))
        for action in parts["actions"]:
            key = _key(action)
            if key not in seen_actions:
                seen_actions.add(key)
                actions.append(action)
        for output in parts["outputs"]:
            if output not in seen_outputs:
                seen_outputs.add(output)
                outputs.append(output)
    return {"instructions": instructions, "actions": actions, "outputs": outputs}


def recombiner_messages(
    domain: Domain,
    blueprints: Sequence[Blueprint | Mapping[str, Any]],
    feedback: Sequence[str] = (),
    *,
    prompts_dir: str | Path | None = None,
) -> list[BaseMessage]:
    if len(blueprints) < 1:
        raise ValueError("recombination needs at least one blueprint")
    merged = merge_parts(blueprints)
    instructions = "\n\n".join(f"Task {n}:\n{text.strip()}" for n, text in enumerate(merged["instructions"], 1))
    text = render_prompt(
        "recombiner",
        prompts_dir,
        domain=domain.name,
        count=len(blueprints),
        instructions=instructions,
        actions=as_json(merged["actions"], 8000),
        outputs=bullet_list(merged["outputs"]),
        feedback=feedback_text(feedback),
    )
    return [HumanMessage(content=text)]


async def arecombine_instructions(
    model: Any,
    domain: Domain,
    blueprints: Sequence[Blueprint | Mapping[str, Any]],
    feedback: Sequence[str] = (),
    *,
    prompts_dir: str | Path | None = None,
    **call_kwargs: Any,
) -> StructuredResult[CombinedInstruction]:
    """The combined instruction; ``call_kwargs`` go to ``astructured_call``."""
    messages = recombiner_messages(domain, blueprints, feedback, prompts_dir=prompts_dir)
    return await astructured_call(model, CombinedInstruction, messages, **call_kwargs)


def combined_blueprint(
    value: CombinedInstruction,
    domain: Domain | str,
    blueprints: Sequence[Blueprint | Mapping[str, Any]],
    id: str,  # noqa: A002
    **extra: Any,
) -> Blueprint:
    """The recombined :class:`Blueprint`: the new instruction over the merged actions/outputs."""
    merged = merge_parts(blueprints)
    name = domain if isinstance(domain, str) else domain.name
    sources = [b.id if isinstance(b, Blueprint) else b.get("id") for b in blueprints]
    return Blueprint(
        id=id,
        domain=name,
        instruction=value.instruction.strip(),
        actions=[Action(name=a["name"], arguments=dict(a.get("arguments") or {})) for a in merged["actions"]],
        outputs=merged["outputs"],
        sources=sources,
        **extra,
    )
