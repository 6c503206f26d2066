"""The simulated human of phase 2: best-of-N user turns chosen by a critic.

    turn = await anext_user_message(user_model, critic_model, blueprint.instruction, history, n=4)
    if turn.stop:                       # the simulator said STOP_TOKEN: the conversation ends
        ...
    history.append(HumanMessage(turn.message))

``history`` is the conversation as the assistant sees it (``HumanMessage`` = the simulated
user, ``AIMessage`` = the assistant, with its tool calls, ``ToolMessage`` = tool results).
The simulator's LLM sees it from the other side (:func:`user_view`): the assistant's text
becomes the "user" turns, the simulator's own messages become its "assistant" turns, and
tool calls, tool results and system prompts are never shown.

Best-of-N (the paper's self-critique): ``n`` candidates are sampled in parallel, empty or
malformed ones are dropped (duplicates too), and the critic (:mod:`.user_critic`) picks the
one most faithful to the instruction. ``n == 1`` (or a single distinct candidate) skips the
critic; a critic that fails (a typed structured-output failure) falls back to the first
valid candidate and the reason is kept in :attr:`UserTurn.critic_error`. Sampling needs a
temperature above 0: at temperature 0 (and with the response cache) the samples are the same.
Only programming and transport errors raise; bad model output never does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig

from apigen_mt.llm.structured import OUTPUT_ERRORS, as_messages, capped_max_tokens, message_text
from apigen_mt.prompts import render_prompt

__all__ = [
    "DEFAULT_USER_MAX_TOKENS",
    "OPENING_GREETING",
    "STOP_TOKEN",
    "UserTurn",
    "anext_user_message",
    "auser_candidates",
    "clean_candidate",
    "is_stop",
    "user_messages",
    "user_view",
    "visible_turns",
]

STOP_TOKEN = "###STOP###"
"""What the simulated user says when the task is done or cannot be done."""

OPENING_GREETING = "Hi! How can I help you today?"
"""The agent's opening line shown to the simulator when the conversation has none."""

DEFAULT_USER_MAX_TOKENS = 300
"""Cap on one user message (the model's own ``max_tokens`` wins when smaller)."""

MAX_CANDIDATE_CHARS = 4000
"""A longer candidate is treated as malformed (a runaway generation)."""

_LABEL = re.compile(r"^\s*(?:\*\*)?(?:user|customer|me|human)(?:\*\*)?\s*:\s*", re.IGNORECASE)


# ---------------------------------------------------------------------------
# The conversation as the human sees it
# ---------------------------------------------------------------------------


def visible_turns(history: Any) -> list[tuple[str, str]]:
    """``[("user" | "agent", text)]``: what a human in the chat sees of ``history``.

    Tool calls, tool results and system messages are left out; an assistant message that
    has tool calls keeps only its text (if any). Empty texts are skipped.
    """
    turns: list[tuple[str, str]] = []
    for message in as_messages(history) if history else []:
        if isinstance(message, (SystemMessage, ToolMessage)):
            continue
        if isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):
            role = "agent"
        else:
            continue
        text = message_text(message).strip()
        if text:
            turns.append((role, text))
    return turns


def user_view(history: Any) -> list[BaseMessage]:
    """``history`` with roles flipped for the simulator's LLM (no tools, alternating roles).

    The assistant's messages become ``HumanMessage`` s, the simulated user's own become
    ``AIMessage`` s; consecutive messages of one side are merged. When the simulator would
    speak first, the agent's :data:`OPENING_GREETING` is put before it (chat templates want
    a user turn first).
    """
    out: list[BaseMessage] = []
    for role, text in visible_turns(history):
        kind = HumanMessage if role == "agent" else AIMessage
        if out and isinstance(out[-1], kind):
            out[-1] = kind(content=f"{message_text(out[-1])}\n\n{text}")
        else:
            out.append(kind(content=text))
    if not out or isinstance(out[0], AIMessage):
        out.insert(0, HumanMessage(content=OPENING_GREETING))
    return out


def _persona_text(persona: Any) -> str:
    if persona is None:
        return ""
    if hasattr(persona, "render") and callable(persona.render):
        persona = persona.render()
    text = str(persona).strip()
    return f"\nYour persona (how you talk and behave):\n{text}\n" if text else ""


def user_messages(
    instruction: str, history: Any, *, persona: Any = None, prompts_dir: str | Path | None = None
) -> list[BaseMessage]:
    """The simulator's request: its system prompt (rules, goal, persona) + :func:`user_view`."""
    system = render_prompt(
        "simulated_user", prompts_dir, instruction=instruction.strip(), persona=_persona_text(persona), stop_token=STOP_TOKEN
    )
    return [SystemMessage(content=system), *user_view(history)]


# ---------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------


def is_stop(message: Any) -> bool:
    """Whether a user message ends the conversation (it contains :data:`STOP_TOKEN`)."""
    text = message_text(message) if isinstance(message, BaseMessage) else message
    return isinstance(text, str) and STOP_TOKEN in text


def clean_candidate(text: Any) -> str | None:
    """A usable user message from a raw sample, or ``None`` (empty, runaway, not text).

    Whitespace, wrapping quotes and a leading ``User:``/``Customer:`` label are removed; a
    message containing :data:`STOP_TOKEN` becomes exactly :data:`STOP_TOKEN`.
    """
    if not isinstance(text, str):
        return None
    text = _LABEL.sub("", text.strip(), count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if not text or len(text) > MAX_CANDIDATE_CHARS:
        return None
    if STOP_TOKEN in text:
        return STOP_TOKEN
    return text


def _reply_text(reply: Any) -> str:
    if isinstance(reply, BaseException):
        if isinstance(reply, OUTPUT_ERRORS):
            return ""  # a bad sample (refusal, filter, unreadable body): dropped later
        raise reply
    return message_text(reply) if isinstance(reply, BaseMessage) else ""


def _bound(model: Runnable, max_tokens: int | None) -> Runnable:
    return model.bind(max_tokens=capped_max_tokens(model, max_tokens, DEFAULT_USER_MAX_TOKENS))


async def auser_candidates(
    model: Runnable,
    instruction: str,
    history: Any,
    n: int,
    *,
    persona: Any = None,
    prompts_dir: str | Path | None = None,
    max_tokens: int | None = None,
    config: RunnableConfig | None = None,
) -> list[str]:
    """``n`` sampled next user messages (raw text, in call order; ``""`` for a sample with no
    text), sampled concurrently. Output errors (refusal, content filter) give ``""``;
    transport errors raise."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    messages = user_messages(instruction, history, persona=persona, prompts_dir=prompts_dir)
    bound = _bound(model, max_tokens)
    replies = await asyncio.gather(*(bound.ainvoke(messages, config) for _ in range(n)), return_exceptions=True)
    return [_reply_text(reply) for reply in replies]


# ---------------------------------------------------------------------------
# Best-of-N
# ---------------------------------------------------------------------------


@dataclass
class UserTurn:
    """One chosen user message and how it was chosen."""

    message: str
    """The chosen message (``""`` when no candidate was usable: see ``error``)."""
    candidates: list[str] = field(default_factory=list)
    """The valid, distinct candidates (cleaned), in sampling order."""
    scores: list[int | None] = field(default_factory=list)
    """The critic's score per candidate (``None``: not scored, or no critic call)."""
    chosen_index: int = -1
    """Index of ``message`` in ``candidates`` (-1 when there is none)."""
    reasons: list[str | None] = field(default_factory=list)
    """The critic's reason per candidate."""
    critic_error: str | None = None
    """Why the critic's choice was not used (its typed failure), when it failed."""
    critic_failure: dict[str, Any] | None = None
    """The critic's :class:`~apigen_mt.llm.structured.StructuredOutputFailure` as a dict."""
    dropped: int = 0
    """Samples dropped as empty, malformed or duplicate."""
    error: str | None = None
    """Set when no candidate was usable."""

    @property
    def ok(self) -> bool:
        return self.chosen_index >= 0

    @property
    def stop(self) -> bool:
        return is_stop(self.message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for graph state and the run store."""
        return {
            "message": self.message, "candidates": list(self.candidates), "scores": list(self.scores),
            "chosen_index": self.chosen_index, "reasons": list(self.reasons), "critic_error": self.critic_error,
            "critic_failure": self.critic_failure, "dropped": self.dropped, "error": self.error, "stop": self.stop,
        }


def _valid(raw: Sequence[str]) -> tuple[list[str], int]:
    valid: list[str] = []
    for text in raw:
        cleaned = clean_candidate(text)
        if cleaned is not None and cleaned not in valid:
            valid.append(cleaned)
    return valid, len(raw) - len(valid)


def _without_critic(valid: list[str], dropped: int) -> UserTurn | None:
    if not valid:
        return UserTurn(message="", dropped=dropped, error="no valid user message among the samples")
    if len(valid) == 1:
        return UserTurn(message=valid[0], candidates=valid, scores=[None], reasons=[None], chosen_index=0, dropped=dropped)
    return None


def _from_verdict(valid: list[str], dropped: int, verdict: Any) -> UserTurn:
    if verdict.best_index is None:
        return UserTurn(
            message=valid[0], candidates=valid, scores=list(verdict.scores), reasons=list(verdict.reasons),
            chosen_index=0, critic_error=verdict.error or "the critic scored no candidate",
            critic_failure=verdict.failure.to_dict() if verdict.failure is not None else None, dropped=dropped,
        )
    return UserTurn(
        message=valid[verdict.best_index], candidates=valid, scores=list(verdict.scores), reasons=list(verdict.reasons),
        chosen_index=verdict.best_index, dropped=dropped,
    )


async def anext_user_message(
    user_model: Runnable,
    critic_model: Runnable | None,
    instruction: str,
    history: Any,
    n: int = 4,
    *,
    persona: Any = None,
    prompts_dir: str | Path | None = None,
    max_tokens: int | None = None,
    config: RunnableConfig | None = None,
) -> UserTurn:
    """The next user message: ``n`` candidates, the critic picks (see the module docstring)."""
    from apigen_mt.agents.user_critic import ascore_candidates

    raw = await auser_candidates(
        user_model, instruction, history, n, persona=persona, prompts_dir=prompts_dir, max_tokens=max_tokens, config=config
    )
    valid, dropped = _valid(raw)
    early = _without_critic(valid, dropped)
    if early is not None:
        return early
    if critic_model is None:
        raise ValueError("anext_user_message needs a critic_model when n > 1")
    verdict = await ascore_candidates(critic_model, instruction, history, valid, prompts_dir=prompts_dir, config=config)
    return _from_verdict(valid, dropped, verdict)
