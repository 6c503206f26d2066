"""The critic of the best-of-N simulated user: scores candidate user turns for fidelity to q.

    verdict = await ascore_candidates(critic_model, instruction, history, ["I want to return...", ...])
    if verdict.ok:
        best = candidates[verdict.best_index]     # highest score; ties -> lowest index
    else:
        verdict.failure.kind                     # typed structured-output failure

Each candidate gets an integer 0-10 for: revealing the instruction gradually, inventing
nothing, sounding natural, and stopping (``###STOP###``) exactly when the task is done or
impossible. The output is :class:`CandidateScores`, narrowed per call to exactly one entry
per candidate (:func:`scores_schema`; bounded, so constrained decoding always closes it), through :func:`~apigen_mt.llm.structured.astructured_call` (one repair turn, then
a typed failure). Entries naming a candidate that does not exist, and repeated entries, are
ignored; a candidate with no entry has no score (and cannot be chosen). Malformed output
never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, Field, create_model

from apigen_mt.agents.simulated_user import STOP_TOKEN, visible_turns
from apigen_mt.llm.structured import (
    FailureKind,
    Method,
    StructuredOutputFailure,
    StructuredResult,
    astructured_call,
    bounded,
)
from apigen_mt.prompts import render_prompt

__all__ = [
    "CRITIC_MAX_TOKENS",
    "MAX_CANDIDATES",
    "CandidateScore",
    "CandidateScores",
    "CriticVerdict",
    "ascore_candidates",
    "critic_messages",
    "scores_schema",
    "verdict_from",
]

MAX_CANDIDATES = 16
"""The most candidates one critic call scores (the schema's ``maxItems``)."""

CRITIC_MAX_TOKENS = 600
"""Default cap on the critic's answer (the model's own ``max_tokens`` wins when smaller)."""

MAX_REASON_CHARS = 160
"""Bound of one reason (short, so that n entries fit a small model's ``max_tokens``)."""

MAX_SHOWN_CHARS = 1500
"""How much of one conversation turn or candidate the critic is shown."""


@bounded
class CandidateScore(BaseModel):
    """The score of one candidate."""

    index: int = Field(ge=0, le=MAX_CANDIDATES - 1, description="the candidate's number")
    score: int = Field(ge=0, le=10, description="0 = unfaithful to the goal, 10 = perfect")
    reason: str = Field(max_length=MAX_REASON_CHARS, description="one short sentence")


@bounded
class CandidateScores(BaseModel):
    """Scores of the candidate next user messages, one entry per candidate."""

    scores: list[CandidateScore] = Field(max_length=MAX_CANDIDATES)


@lru_cache(maxsize=MAX_CANDIDATES)
def scores_schema(count: int) -> type[CandidateScores]:
    """:class:`CandidateScores` narrowed to ``count`` candidates: exactly ``count`` entries,
    indices ``0..count-1``. Constrained decoding then cannot run on past the candidates,
    and a wrong count gets the repair turn."""
    if not 1 <= count <= MAX_CANDIDATES:
        raise ValueError(f"count must be 1..{MAX_CANDIDATES}, got {count}")
    entry = create_model(
        "CandidateScore",
        __base__=CandidateScore,
        __doc__=CandidateScore.__doc__,
        index=(int, Field(ge=0, le=count - 1, description="the candidate's number")),
    )
    schema = create_model(
        "CandidateScores",
        __base__=CandidateScores,
        __doc__=CandidateScores.__doc__,
        scores=(list[entry], Field(min_length=count, max_length=count)),  # type: ignore[valid-type]
    )
    return bounded(schema)


@dataclass
class CriticVerdict:
    """What the critic said, aligned with the candidates."""

    scores: list[int | None]
    """Score per candidate (``None``: the critic gave none)."""
    reasons: list[str | None]
    best_index: int | None
    """Highest-scored candidate, ties to the lowest index; ``None`` when the critic failed."""
    result: StructuredResult[CandidateScores] | None = None
    failure: StructuredOutputFailure | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    """Entries that were ignored (unknown or repeated candidate numbers)."""

    @property
    def ok(self) -> bool:
        return self.best_index is not None


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + " ...(cut)"


def critic_messages(
    instruction: str, history: Any, candidates: Sequence[str], *, prompts_dir: str | Path | None = None
) -> list[BaseMessage]:
    """The critic's request (one user message: rules, goal, conversation, numbered candidates)."""
    turns = visible_turns(history)
    conversation = "\n".join(
        f"{'Customer' if role == 'user' else 'Agent'}: {_shorten(text)}" for role, text in turns
    ) or "(no messages yet: the customer writes first)"
    shown = "\n".join(f"[{i}] {_shorten(text)}" for i, text in enumerate(candidates))
    prompt = render_prompt(
        "user_critic", prompts_dir, instruction=instruction.strip(), conversation=conversation,
        candidates=shown, count=len(candidates), stop_token=STOP_TOKEN,
    )
    return [HumanMessage(content=prompt)]


def verdict_from(result: StructuredResult[CandidateScores], count: int) -> CriticVerdict:
    """Align a critic result with ``count`` candidates and pick the best."""
    scores: list[int | None] = [None] * count
    reasons: list[str | None] = [None] * count
    if not result.ok or result.value is None:
        return CriticVerdict(scores, reasons, None, result, result.failure, result.error)
    notes: list[str] = []
    for entry in result.value.scores:
        if entry.index >= count:
            notes.append(f"ignored a score for candidate {entry.index}: there are {count}")
        elif scores[entry.index] is not None:
            notes.append(f"ignored a repeated score for candidate {entry.index}")
        else:
            scores[entry.index] = entry.score
            reasons[entry.index] = entry.reason
    scored = [i for i, s in enumerate(scores) if s is not None]
    if not scored:
        failure = StructuredOutputFailure(FailureKind.VALIDATION, "the critic scored none of the candidates", None, result.attempts)
        return CriticVerdict(scores, reasons, None, result, failure, f"{failure.kind.value}: {failure.message}", notes)
    best = max(scored, key=lambda i: (scores[i], -i))
    return CriticVerdict(scores, reasons, best, result, None, None, notes)


def _check(candidates: Sequence[str]) -> None:
    if not candidates:
        raise ValueError("ascore_candidates needs at least one candidate")
    if len(candidates) > MAX_CANDIDATES:
        raise ValueError(f"at most {MAX_CANDIDATES} candidates per critic call, got {len(candidates)}")


async def ascore_candidates(
    model: Runnable,
    instruction: str,
    history: Any,
    candidates: Sequence[str],
    *,
    prompts_dir: str | Path | None = None,
    method: Method = "json_schema",
    max_tokens: int | None = CRITIC_MAX_TOKENS,
    config: RunnableConfig | None = None,
) -> CriticVerdict:
    """Score ``candidates`` (next user messages) against ``instruction``; never raises on bad output."""
    _check(candidates)
    messages = critic_messages(instruction, history, candidates, prompts_dir=prompts_dir)
    result = await astructured_call(model, scores_schema(len(candidates)), messages, method=method, max_tokens=max_tokens, config=config)
    return verdict_from(result, len(candidates))
