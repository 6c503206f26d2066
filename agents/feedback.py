"""Stage-3 feedback: failed checks and/or committee reviews -> a plan for the generator.

::

    votes = summarize_votes(reviews)                      # deterministic majority per metric
    result = await awrite_feedback(model, blueprint, checks=[validation_result], reviews=reviews)
    if result.ok:
        feedback_history.append(result.value.render())    # next generator round sees it
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from apigen_mt.blueprint import Blueprint
from apigen_mt.llm.structured import ShortStr, StructuredResult, astructured_call, bounded
from apigen_mt.prompts import render_prompt

from .generator import NONE, as_json, bullet_list
from .reviewer import METRICS, Review, _blueprint_parts

__all__ = [
    "FeedbackPlan",
    "awrite_feedback",
    "feedback_messages",
    "render_votes",
    "summarize_votes",
]


@bounded
class FeedbackPlan(BaseModel):
    """What went wrong with a blueprint and how the next attempt should fix it."""

    summary: str = Field(max_length=400, description="one or two sentences: why the blueprint failed")
    agreed_issues: list[ShortStr] = Field(default_factory=list, max_length=4)
    disagreements: list[ShortStr] = Field(default_factory=list, max_length=3)
    plan: list[ShortStr] = Field(default_factory=list, max_length=4, description="concrete steps for the next attempt")

    def render(self) -> str:
        """Plain text for the generator's feedback history."""
        lines = [self.summary.strip()]
        if self.agreed_issues:
            lines += ["Issues:", *(f"- {i}" for i in self.agreed_issues)]
        if self.disagreements:
            lines += ["Judges disagreed on:", *(f"- {d}" for d in self.disagreements)]
        if self.plan:
            lines += ["Plan:", *(f"{n}. {step}" for n, step in enumerate(self.plan, 1))]
        return "\n".join(lines)


def _review_dict(review: Review | Mapping[str, Any]) -> dict[str, Any]:
    return review.model_dump() if isinstance(review, BaseModel) else dict(review)


def summarize_votes(reviews: Sequence[Review | Mapping[str, Any]]) -> dict[str, Any]:
    """Per-metric vote counts and majority (a tie counts as a fail)::

        {"judges": 3, "metrics": {"correctness": {"yes": 2, "no": 1, "majority": 1,
         "unanimous": False}, ...}, "passed": ["correctness", ...], "failed": [...]}

    A missing or non-0/1 score counts as ``no``.
    """
    rows = [_review_dict(r) for r in reviews]
    metrics: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        yes = sum(1 for row in rows if row.get(metric) in (1, True))
        no = len(rows) - yes
        metrics[metric] = {"yes": yes, "no": no, "majority": int(yes > no), "unanimous": yes == 0 or no == 0}
    return {
        "judges": len(rows),
        "metrics": metrics,
        "passed": [m for m in METRICS if metrics[m]["majority"]],
        "failed": [m for m in METRICS if not metrics[m]["majority"]],
    }


def render_votes(reviews: Sequence[Review | Mapping[str, Any]]) -> str:
    """The vote table and each judge's reflection, as prompt text."""
    if not reviews:
        return NONE
    votes = summarize_votes(reviews)
    lines = []
    for metric, row in votes["metrics"].items():
        verdict = "pass" if row["majority"] else "FAIL"
        split = "unanimous" if row["unanimous"] else "split"
        lines.append(f"- {metric}: {row['yes']} yes / {row['no']} no -> {verdict} ({split})")
    for n, review in enumerate(reviews, 1):
        row = _review_dict(review)
        scores = ", ".join(f"{m}={row.get(m)}" for m in METRICS)
        lines.append(f"Judge {n} ({scores}): {str(row.get('reflection') or '').strip() or NONE}")
        if row.get("suggested_correction"):
            lines.append(f"  Suggested fix: {str(row['suggested_correction']).strip()}")
    return "\n".join(lines)


def _check_items(checks: Any) -> list[tuple[str, list[str]]]:
    """``(stage, reasons)`` pairs from validation results, mappings or pairs; passed ones skipped."""
    if checks is None:
        return []
    if isinstance(checks, Mapping) or hasattr(checks, "stage"):
        checks = [checks]
    out = []
    for check in checks:
        if isinstance(check, Mapping):
            stage, reasons, passed = check.get("stage"), check.get("reasons"), check.get("passed", False)
        elif isinstance(check, tuple) and len(check) == 2:
            (stage, reasons), passed = check, False
        else:
            stage, reasons, passed = getattr(check, "stage", None), getattr(check, "reasons", None), getattr(check, "passed", False)
        if passed:
            continue
        if isinstance(reasons, str):
            reasons = [reasons]
        out.append((str(stage or "check"), [str(r) for r in reasons or []]))
    return out


def feedback_messages(
    blueprint: Blueprint | Mapping[str, Any] | None = None,
    *,
    checks: Any = None,
    reviews: Sequence[Review | Mapping[str, Any]] = (),
    prompts_dir: str | Path | None = None,
) -> list[BaseMessage]:
    items = _check_items(checks)
    check_text = "\n".join(f"- stage {stage}:\n" + bullet_list(reasons, "  (no reason given)") for stage, reasons in items)
    if blueprint is not None:
        parts = _blueprint_parts(blueprint)
        bp_text = as_json(parts, 6000)
    else:
        bp_text = NONE
    text = render_prompt(
        "feedback",
        prompts_dir,
        blueprint=bp_text,
        checks=check_text or NONE,
        votes=render_votes(list(reviews)),
    )
    return [HumanMessage(content=text)]


async def awrite_feedback(
    model: Any,
    blueprint: Blueprint | Mapping[str, Any] | None = None,
    *,
    checks: Any = None,
    reviews: Sequence[Review | Mapping[str, Any]] = (),
    prompts_dir: str | Path | None = None,
    **call_kwargs: Any,
) -> StructuredResult[FeedbackPlan]:
    """Feedback for a failed blueprint. ``checks``: failing stage-1 results (a
    ``ValidationResult``, ``{"stage", "reasons"}`` mappings or ``(stage, reasons)`` pairs,
    one or a list); ``reviews``: the committee's reviews. ``call_kwargs`` go to
    ``astructured_call``."""
    messages = feedback_messages(blueprint, checks=checks, reviews=reviews, prompts_dir=prompts_dir)
    return await astructured_call(model, FeedbackPlan, messages, **call_kwargs)
