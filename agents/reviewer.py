"""One member of the review committee (Stage 2): a blueprint + its state diff -> 0/1 scores.

The committee runs K reviewers (possibly different models) in parallel and takes a
majority vote per metric (see :func:`apigen_mt.agents.feedback.summarize_votes`)::

    result = await areview_blueprint(model, domain, blueprint, diff.render())
    if result.ok:
        review = result.value        # correctness, completeness, satisfaction, creativity
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from apigen_mt.blueprint import Blueprint, blueprint_json
from apigen_mt.domains.base import Domain
from apigen_mt.llm.structured import StructuredResult, astructured_call, bounded
from apigen_mt.prompts import render_prompt

from .generator import NONE, as_json, bullet_list, tool_catalog

__all__ = ["METRICS", "Review", "areview_blueprint", "reviewer_messages"]

METRICS = ("correctness", "completeness", "satisfaction", "creativity")


@bounded
class Review(BaseModel):
    """One judge's verdict on a blueprint."""

    reflection: str = Field(max_length=600, description="the reasoning behind the scores, brief and specific")
    correctness: int = Field(ge=0, le=1, description="1 if the actions correctly fulfil the instruction")
    completeness: int = Field(ge=0, le=1, description="1 if nothing the instruction asks for is missing")
    satisfaction: int = Field(ge=0, le=1, description="1 if the user would be satisfied by the outcome")
    creativity: int = Field(ge=0, le=1, description="1 if the task is realistic, varied and not trivial")
    suggested_correction: str | None = Field(default=None, max_length=400, description="how to fix the blueprint, if needed")

    def scores(self) -> dict[str, int]:
        return {metric: getattr(self, metric) for metric in METRICS}


def _blueprint_parts(blueprint: Blueprint | Mapping[str, Any]) -> dict[str, Any]:
    data = dict(blueprint_json(blueprint))
    actions = [
        {"name": a.get("name"), "arguments": a.get("arguments", {})} if isinstance(a, Mapping) else a
        for a in data.get("actions") or []
    ]
    return {"instruction": data.get("instruction", ""), "actions": actions, "outputs": list(data.get("outputs") or [])}


def reviewer_messages(
    domain: Domain,
    blueprint: Blueprint | Mapping[str, Any],
    diff_text: str,
    *,
    prompts_dir: str | Path | None = None,
) -> list[BaseMessage]:
    parts = _blueprint_parts(blueprint)
    names = [a.get("name") for a in parts["actions"] if isinstance(a, Mapping) and isinstance(a.get("name"), str)]
    text = render_prompt(
        "reviewer",
        prompts_dir,
        domain=domain.name,
        instruction=str(parts["instruction"]).strip() or NONE,
        actions=as_json(parts["actions"]),
        outputs=bullet_list(str(o) for o in parts["outputs"]),
        tools=as_json(tool_catalog(domain, names)),
        diff=(diff_text or "").strip() or "(no change to the database)",
    )
    return [HumanMessage(content=text)]


async def areview_blueprint(
    model: Any,
    domain: Domain,
    blueprint: Blueprint | Mapping[str, Any],
    diff_text: str,
    *,
    prompts_dir: str | Path | None = None,
    **call_kwargs: Any,
) -> StructuredResult[Review]:
    """One judge's review; ``call_kwargs`` go to ``astructured_call``."""
    messages = reviewer_messages(domain, blueprint, diff_text, prompts_dir=prompts_dir)
    return await astructured_call(model, Review, messages, **call_kwargs)
