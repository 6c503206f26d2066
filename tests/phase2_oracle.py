"""Scripted Phase-2 models: an oracle user who states the instruction then stops, and an
oracle assistant who replays a blueprint's actions then says its outputs."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from apigen_mt.agents.simulated_user import STOP_TOKEN
from apigen_mt.testing import ScriptedChatModel

DONE = "All done."


def oracle_assistant_reply(blueprint: dict[str, Any], *, wrong: dict[str, Any] | None = None, say_outputs: bool = True):
    """A reactive reply: the next gold action as a tool call, then the outputs in one message.
    ``wrong`` overrides arguments of every call (to make a wrong conversation)."""

    def reply(messages: list[Any]) -> AIMessage:
        done = sum(1 for m in messages if isinstance(m, ToolMessage))
        actions = blueprint["actions"]
        if done < len(actions):
            action = actions[done]
            arguments = {**(action.get("arguments") or {}), **(wrong or {})}
            return AIMessage(content="", tool_calls=[{"name": action["name"], "args": arguments, "id": f"call_{done}"}])
        said = " ".join(f"{o}." for o in blueprint.get("outputs") or []) if say_outputs else ""
        return AIMessage(content=f"{DONE} {said}".strip())

    return reply


def oracle_user_reply(blueprint: dict[str, Any]):
    """First the instruction, then the stop token once the agent has answered."""

    def reply(messages: list[Any]) -> str:
        own = sum(1 for m in messages if isinstance(m, AIMessage))  # the simulator's earlier messages
        return blueprint["instruction"] if own == 0 else STOP_TOKEN

    return reply


def oracle_phase2_models(blueprint: dict[str, Any], *, replies: int = 200, latency: float = 0.0, **assistant: Any) -> dict[str, Any]:
    return {
        "user": ScriptedChatModel([oracle_user_reply(blueprint)] * replies, latency=latency),
        "assistant": ScriptedChatModel([oracle_assistant_reply(blueprint, **assistant)] * replies, latency=latency),
    }
