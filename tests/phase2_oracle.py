"""Scripted Phase-2 models: the oracle user and assistant of :mod:`apigen_mt.testing.oracle`
(the assistant makes the lookups, asks before guarded writes, replays the actions, then
says the outputs; the user states the instruction, confirms, then stops)."""

from __future__ import annotations

from typing import Any

from apigen_mt.domains.registry import get_domain
from apigen_mt.testing import ScriptedChatModel
from apigen_mt.testing.oracle import DONE, oracle_plan  # noqa: F401  (DONE: the benchmarks read it)
from apigen_mt.testing.oracle import oracle_assistant_reply as _assistant
from apigen_mt.testing.oracle import oracle_user_reply


def oracle_assistant_reply(blueprint: dict[str, Any], **options: Any):
    """``options``: ``wrong`` (arguments overriding every action's), ``say_outputs``."""
    return _assistant(get_domain(blueprint["domain"]), blueprint, **options)


def oracle_phase2_models(blueprint: dict[str, Any], *, replies: int = 200, latency: float = 0.0, **assistant: Any) -> dict[str, Any]:
    return {
        "user": ScriptedChatModel([oracle_user_reply(blueprint)] * replies, latency=latency),
        "assistant": ScriptedChatModel([oracle_assistant_reply(blueprint, **assistant)] * replies, latency=latency),
    }


__all__ = ["DONE", "oracle_assistant_reply", "oracle_phase2_models", "oracle_user_reply"]
