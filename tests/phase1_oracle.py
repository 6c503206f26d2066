"""Scripted Phase-1 models that answer from the prompt: a generator that proposes a valid
blueprint for whichever user the sampled context shows, and agreeable judges.

Used by the runner, resume and benchmark code, where many threads share one model and
the order of calls is not fixed, so fixed reply lists would not do.
"""

from __future__ import annotations

import re
from typing import Any

from apigen_mt.domains.registry import get_domain
from apigen_mt.testing import ScriptedChatModel

USER_ID = re.compile(r"user id: ([a-z_]+_\d+)\)")
YES = {"reflection": "Fine.", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1, "suggested_correction": None}
PLAN = {"summary": "Fix it.", "agreed_issues": [], "disagreements": [], "plan": []}


def retail_blueprint_for(user_id: str) -> dict[str, Any]:
    user = get_domain("retail").user_context(user_id)["user"]
    name, zip_code = user["name"], user["address"]["zip"]
    return {
        "thought": "look the user up, then read their profile",
        "instruction": f"You are {name['first_name']} {name['last_name']} (zip {zip_code}). You want the email on your account.",
        "actions": [
            {"name": "find_user_id_by_name_zip", "arguments": {**name, "zip": zip_code}},
            {"name": "get_user_details", "arguments": {"user_id": user_id}},
        ],
        "outputs": [user["email"]],
    }


def blueprint_for_prompt(text: str) -> dict[str, Any]:
    """The oracle's blueprint for the user a generator prompt shows (an empty one, which the
    format check rejects, when it shows none)."""
    found = USER_ID.search(text)
    if not found:
        return {"thought": "no user", "instruction": "", "actions": [], "outputs": []}
    return retail_blueprint_for(found.group(1))


def oracle_generator_reply(messages: list[Any]) -> dict[str, Any]:
    return blueprint_for_prompt(messages[0].content)


def oracle_models(*, latency: float = 0.0, judges: int = 3, replies: int = 10_000) -> dict[str, Any]:
    """``chat_models`` for the retail domain: every blueprint is accepted on the first round."""
    return {
        "generator": ScriptedChatModel([oracle_generator_reply] * replies, latency=latency),
        "reviewers": [ScriptedChatModel([YES] * replies, latency=latency) for _ in range(judges)],
        "feedback": ScriptedChatModel([PLAN] * replies, latency=latency),
    }
