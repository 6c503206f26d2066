"""The instruction writer: an executed call sequence -> the user's instruction q and the outputs o_gt.

Phase 1's *grounded* proposals start from a random walk on the API graph that was already
executed over real entities (so a_gt is valid by construction); this role only has to say
what the user wants and which facts the agent must report. It is told which values the
instruction must contain (those no lookup reaches: an email, a name and zip, a reservation
number); the grounding check rejects an instruction without them. Feedback from failed
rounds is shown the same way as to the generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from apigen_mt.blueprint import Action, Blueprint
from apigen_mt.domains.base import Domain
from apigen_mt.llm.structured import MediumStr, ShortStr, StructuredResult, astructured_call, bounded
from apigen_mt.prompts import render_prompt

from .generator import MAX_OUTPUTS, NONE, THOUGHT_CHARS, as_json, feedback_text, persona_text, tool_catalog

__all__ = ["WrittenInstruction", "awrite_instruction", "instruction_writer_messages", "to_grounded_blueprint"]

OBSERVATION_CHARS = 1200


@bounded
class WrittenInstruction(BaseModel):
    """The user's side of an already executed task."""

    thought: str = Field(default="", max_length=THOUGHT_CHARS, description="a short plan for the instruction")
    instruction: MediumStr = Field(description="the user's goal, in second person: 'You are ... you want ...'")
    outputs: list[ShortStr] = Field(default_factory=list, max_length=MAX_OUTPUTS)


def _calls_text(actions: Sequence[Mapping[str, Any]], observations: Sequence[str]) -> str:
    lines = []
    for n, action in enumerate(actions, 1):
        call = as_json({"name": action.get("name"), "arguments": action.get("arguments") or {}})
        result = str(observations[n - 1]) if n - 1 < len(observations) else ""
        if len(result) > OBSERVATION_CHARS:
            result = result[:OBSERVATION_CHARS] + "...(cut)"
        lines.append(f"{n}. {call}\n   result: {result or '(none)'}")
    return "\n".join(lines) or NONE


def instruction_writer_messages(
    domain: Domain,
    context: Mapping[str, Any],
    actions: Sequence[Mapping[str, Any]],
    observations: Sequence[str] = (),
    feedback: Sequence[str] = (),
    *,
    must_say: Sequence[Any] = (),
    prompts_dir: str | Path | None = None,
) -> list[BaseMessage]:
    names = [str(a.get("name")) for a in actions]
    text = render_prompt(
        "instruction_writer",
        prompts_dir,
        domain=domain.name,
        calls=_calls_text(actions, observations),
        tools=as_json(tool_catalog(domain, names)),
        policy=str(context.get("policy") or "").strip() or NONE,
        user_id=context.get("user_id") or NONE,
        data=as_json(context.get("data")) if context.get("data") else NONE,
        persona=persona_text(context.get("persona")),
        feedback=feedback_text(feedback),
        must_say="\n".join(f"- {value}" for value in must_say) or NONE,
    )
    return [HumanMessage(content=text)]


async def awrite_instruction(
    model: Any,
    domain: Domain,
    context: Mapping[str, Any],
    actions: Sequence[Mapping[str, Any]],
    observations: Sequence[str] = (),
    feedback: Sequence[str] = (),
    *,
    must_say: Sequence[Any] = (),
    prompts_dir: str | Path | None = None,
    **call_kwargs: Any,
) -> StructuredResult[WrittenInstruction]:
    """q and o_gt for ``actions`` (``must_say``: values q must contain, written so);
    ``call_kwargs`` go to ``astructured_call``."""
    messages = instruction_writer_messages(domain, context, actions, observations, feedback,
                                           must_say=must_say, prompts_dir=prompts_dir)
    return await astructured_call(model, WrittenInstruction, messages, **call_kwargs)


def to_grounded_blueprint(
    value: WrittenInstruction, domain: Domain | str, actions: Sequence[Mapping[str, Any]], id: str, **extra: Any  # noqa: A002
) -> Blueprint:
    """The :class:`Blueprint` of a grounded proposal: the executed actions, the written q and o_gt."""
    name = domain if isinstance(domain, str) else domain.name
    return Blueprint(
        id=id,
        domain=name,
        instruction=value.instruction.strip(),
        actions=[Action(name=str(a["name"]), arguments=dict(a.get("arguments") or {})) for a in actions],
        outputs=[o.strip() for o in value.outputs if o.strip()],
        thought=value.thought,
        **extra,
    )
