"""The blueprint generator: sampled context (+ feedback history) -> (q, a_gt, o_gt).

Pure functions over a chat model; the Phase-1 graph calls them::

    result = await agenerate_blueprint(model, domain, sample_context(domain, seed), feedback)
    if result.ok:
        blueprint = to_blueprint(result.value, domain, "bp-1")   # -> stage-1 checks

``result`` is a :class:`~apigen_mt.llm.structured.StructuredResult`: malformed output
never raises, it comes back as ``ok=False`` with a typed ``failure``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from apigen_mt.blueprint import Action, Blueprint
from apigen_mt.domains.base import Domain
from apigen_mt.llm.structured import (
    MediumStr,
    ShortStr,
    StructuredResult,
    astructured_call,
    bounded,
    json_schema_for,
)
from apigen_mt.llm.tool_calling import tool_call_schema
from apigen_mt.prompts import render_prompt

__all__ = [
    "GeneratedAction",
    "GeneratedBlueprint",
    "agenerate_blueprint",
    "generator_messages",
    "generator_output_schema",
    "to_blueprint",
    "tool_catalog",
]

MAX_ACTIONS = 12
MAX_OUTPUTS = 5
MAX_ARGUMENTS = 12
NONE = "(none)"
THOUGHT_CHARS = 300
ACTION_STRING_CHARS = 120
ACTION_ARRAY_ITEMS = 8


# Argument values: scalars, flat objects, and lists of either (ids, passengers, flight
# legs, payments). Typed and bounded rather than ``Any``: an any-JSON grammar lets a small
# model ramble and makes constrained decoding on llama.cpp much slower (measured here:
# 256 tokens took ~190 s with ``Any`` values on a busy 2-core machine).
Scalar = Union[ShortStr, int, float, bool, None]
FlatObject = Annotated[dict[ShortStr, Scalar], Field(max_length=MAX_ARGUMENTS)]
ArgumentValue = Union[Scalar, FlatObject, Annotated[list[Union[Scalar, FlatObject]], Field(max_length=MAX_ARGUMENTS)]]


@bounded
class GeneratedAction(BaseModel):
    """One ground-truth tool call."""

    name: ShortStr = Field(description="the exact name of one of the listed tools")
    arguments: dict[ShortStr, ArgumentValue] = Field(default_factory=dict, max_length=MAX_ARGUMENTS)


@bounded
class GeneratedBlueprint(BaseModel):
    """A task blueprint: the user's instruction, the tool calls, the facts to say."""

    thought: str = Field(max_length=THOUGHT_CHARS, description="a short plan: which user, which records, which calls")
    instruction: MediumStr = Field(description="the user's goal, in second person: 'You are ... you want ...'")
    actions: list[GeneratedAction] = Field(max_length=MAX_ACTIONS)
    outputs: list[ShortStr] = Field(default_factory=list, max_length=MAX_OUTPUTS)


def generator_output_schema(
    domain: Domain, tool_names: Iterable[str], *, max_actions: int = MAX_ACTIONS
) -> dict[str, Any] | None:
    """The JSON schema sent to the model: :class:`GeneratedBlueprint` with each action an
    ``anyOf`` over the sampled tools (``name`` a constant, ``arguments`` the tool's own
    parameter schema, bounded). Under constrained decoding (llama.cpp, OpenAI structured
    outputs) the model then cannot name a tool that is not offered or mistype an argument
    name; small models otherwise invent both. ``max_actions`` (at most ``MAX_ACTIONS``)
    lowers the cap on actions: a small model tends to repeat its last call until the
    token limit. ``None`` when no listed tool is known."""
    names = tuple(name for name in dict.fromkeys(tool_names) if domain.tool(name) is not None)
    if not names:
        return None
    # one branch per tool, built once per domain object: the sampled tool sets vary, the tools do not
    branches = domain.__dict__.setdefault("_generator_action_branches", {})
    for name in names:
        if name not in branches:
            branches[name] = tool_call_schema(
                [domain.tool(name)], reply=False, max_string_chars=ACTION_STRING_CHARS, max_array_items=ACTION_ARRAY_ITEMS
            )["anyOf"][0]
    schema = json_schema_for(GeneratedBlueprint)  # a fresh copy
    schema["properties"]["actions"]["maxItems"] = max(1, min(max_actions, MAX_ACTIONS))
    schema["properties"]["actions"]["items"] = {"anyOf": [copy.deepcopy(branches[name]) for name in names]}
    return schema


# ---------------------------------------------------------------------------
# Shared rendering helpers (the other Phase-1 roles use them too)
# ---------------------------------------------------------------------------


def as_json(value: Any, max_chars: int | None = None) -> str:
    """Compact JSON for a prompt (small context windows), cut at ``max_chars`` with a visible mark."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + "\n...(cut)"
    return text


def tool_catalog(domain: Domain, names: Iterable[str]) -> list[dict[str, Any]]:
    """``{name, description, parameters}`` of the named tools, in order, unknown names skipped."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in names:
        spec = domain.tool(name)
        if spec is None or name in seen:
            continue
        seen.add(name)
        out.append({"name": spec.name, "description": spec.description, "parameters": dict(spec.parameters)})
    return out


def bullet_list(items: Iterable[str], empty: str = NONE) -> str:
    lines = [f"- {item}" for item in items if str(item).strip()]
    return "\n".join(lines) if lines else empty


def _rules_text(rules: Sequence[Mapping[str, Any]]) -> str:
    return bullet_list(f"{r.get('name', 'rule')}: {r.get('description', '')}" for r in rules)


def persona_text(persona: Mapping[str, Any] | None) -> str:
    if not persona:
        return NONE
    parts = [str(persona.get("description") or "").strip(), str(persona.get("style") or "").strip()]
    return " ".join(p for p in parts if p) or NONE


FEEDBACK_ROUNDS = 2
FEEDBACK_CHARS = 900
"""The feedback a prompt shows: the last rounds, each cut (the embedded model is slow on long prompts)."""


def feedback_text(feedback: Sequence[str]) -> str:
    items = [str(f).strip() for f in feedback if str(f).strip()]
    if not items:
        return ""
    first = max(1, len(items) - FEEDBACK_ROUNDS + 1)
    rounds = "\n\n".join(
        f"Attempt {i} feedback:\n{text if len(text) <= FEEDBACK_CHARS else text[:FEEDBACK_CHARS] + '...(cut)'}"
        for i, text in enumerate(items[first - 1:], first))
    return (
        "## Feedback on your earlier attempts\n"
        "Your earlier blueprints for this context failed. Fix every problem below; do not repeat them.\n\n"
        f"{rounds}\n"
    )


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------


def generator_messages(
    domain: Domain,
    context: Mapping[str, Any],
    feedback: Sequence[str] = (),
    *,
    prompts_dir: str | Path | None = None,
    max_actions: int = MAX_ACTIONS,
) -> list[BaseMessage]:
    """The request sent to the model (exposed for tests and for inspection)."""
    tools = list(context.get("tools") or [])
    writes = [t for t in context.get("write_tools") or [] if t in tools] or list(context.get("write_tools") or [])
    text = render_prompt(
        "generator",
        prompts_dir,
        domain=domain.name,
        tools=as_json(tool_catalog(domain, tools)),
        write_tools=", ".join(writes) or NONE,
        chain=" -> ".join(context.get("chain") or []) or NONE,
        policy=str(context.get("policy") or "").strip() or NONE,
        rules=_rules_text(context.get("rules") or []),
        user_id=context.get("user_id") or NONE,
        data=as_json(context.get("data")) if context.get("data") else NONE,
        persona=persona_text(context.get("persona")),
        examples=as_json(list(context.get("examples") or [])) if context.get("examples") else NONE,
        feedback=feedback_text(feedback),
        max_actions=max(1, min(max_actions, MAX_ACTIONS)),
        max_outputs=MAX_OUTPUTS,
    )
    return [HumanMessage(content=text)]


async def agenerate_blueprint(
    model: Any,
    domain: Domain,
    context: Mapping[str, Any],
    feedback: Sequence[str] = (),
    *,
    prompts_dir: str | Path | None = None,
    max_actions: int = MAX_ACTIONS,
    **call_kwargs: Any,
) -> StructuredResult[GeneratedBlueprint]:
    """Ask ``model`` for one blueprint. ``call_kwargs`` go to ``astructured_call``
    (``max_tokens``, ``config``, ``method``, ``repair``); the output schema is
    :func:`generator_output_schema` of the context's tools, with ``max_actions``."""
    messages = generator_messages(domain, context, feedback, prompts_dir=prompts_dir, max_actions=max_actions)
    call_kwargs.setdefault(
        "output_schema", generator_output_schema(domain, context.get("tools") or [], max_actions=max_actions)
    )
    return await astructured_call(model, GeneratedBlueprint, messages, **call_kwargs)


def to_blueprint(value: GeneratedBlueprint, domain: Domain | str, id: str, **extra: Any) -> Blueprint:  # noqa: A002
    """The pipeline's :class:`Blueprint` from a generated one (``thought`` kept as an extra;
    ``extra`` adds more fields, e.g. ``user_id``). Blank outputs are dropped."""
    name = domain if isinstance(domain, str) else domain.name
    return Blueprint(
        id=id,
        domain=name,
        instruction=value.instruction.strip(),
        actions=[Action(name=a.name.strip(), arguments=dict(a.arguments)) for a in value.actions],
        outputs=[o.strip() for o in value.outputs if o.strip()],
        thought=value.thought,
        **extra,
    )
