"""The assistant under test in phase 2: the domain policy as system prompt, the domain tools.

    reply = await aassistant_step(model, domain, history)       # one model call (or a repair)
    if reply.tool_calls:        ...execute them, append ToolMessages, call again
    elif tool_calling_failure(reply): ...typed failure (reply.invalid_tool_calls says what)
    else:                       ...reply.content is a message to the user

``history`` is the conversation from the assistant's side (``HumanMessage`` = user,
``AIMessage`` = assistant with its tool calls, ``ToolMessage`` = tool results); system
messages in it are replaced by the assistant's own (``prompts/assistant.md``: the policy
plus short working rules). Tools go through
:func:`~apigen_mt.llm.tool_calling.bind_domain_tools`: ``mode="auto"`` takes a managed
model's configured mode (``managed_info(model).tool_calling``), else the tool-calling
layer's own auto rule. In json_schema mode the history's tool calls and results are
rendered as plain turns (:func:`~apigen_mt.llm.tool_calling.render_tool_history`).

Malformed model output never raises: json_schema mode returns a reply with one
``invalid_tool_calls`` entry, and native mode's malformed arguments, empty replies and
output errors (refusal, content filter, unreadable body) are returned the same way, with
``tool_calling_failure(reply)`` saying why. Transport and programming errors raise.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.messages.tool import invalid_tool_call
from langchain_core.runnables import Runnable, RunnableConfig

from apigen_mt.llm.structured import OUTPUT_ERRORS, FailureKind, as_messages, failure_from_exception, message_text
from apigen_mt.llm.tool_calling import METADATA_KEY, bind_domain_tools, render_tool_history
from apigen_mt.prompts import render_prompt

__all__ = [
    "AssistantMode",
    "assistant_messages",
    "assistant_system_prompt",
    "aassistant_step",
    "resolve_mode",
]

AssistantMode = Literal["auto", "native", "json_schema"]


def assistant_system_prompt(domain: Any, *, prompts_dir: str | Path | None = None) -> str:
    """The domain policy plus the assistant's working rules."""
    return render_prompt("assistant", prompts_dir, policy=str(domain.policy).strip())


def resolve_mode(model: Any, mode: AssistantMode = "auto") -> AssistantMode:
    """``mode``, with ``"auto"`` replaced by a managed model's configured tool-calling mode
    (which may be ``auto`` too: then the tool-calling layer decides per model)."""
    if mode != "auto":
        return mode
    from apigen_mt.llm.factory import managed_info

    info = managed_info(model)
    return info.tool_calling if info is not None else "auto"  # type: ignore[return-value]


def assistant_messages(
    domain: Any, history: Any, *, mode: AssistantMode = "auto", prompts_dir: str | Path | None = None
) -> list[BaseMessage]:
    """The request: the system prompt, then ``history`` without its system messages
    (tool calls/results rendered as plain turns when ``mode == "json_schema"``)."""
    turns = [m for m in (as_messages(history) if history else []) if not isinstance(m, SystemMessage)]
    if mode == "json_schema":
        turns = render_tool_history(turns)
    return [SystemMessage(content=assistant_system_prompt(domain, prompts_dir=prompts_dir)), *turns]


def _failed(kind: str, error: str, *, raw: str = "", base: AIMessage | None = None, mode: str = "native") -> AIMessage:
    metadata = dict(base.response_metadata) if base is not None else {}
    metadata[METADATA_KEY] = {"mode": mode, "ok": False, "attempts": 1, "failure_kind": kind, "error": error, "errors": [error]}
    bad = invalid_tool_call(name=None, args=raw[:2000], id="call_" + uuid.uuid4().hex[:24], error=f"{kind}: {error}")
    return AIMessage(
        content="", invalid_tool_calls=[bad], response_metadata=metadata,
        usage_metadata=base.usage_metadata if base is not None else None, id=base.id if base is not None else None,
    )


def _checked(reply: Any, mode: str) -> AIMessage:
    """Native replies get the failure metadata json_schema mode already carries."""
    if not isinstance(reply, AIMessage):
        return _failed(FailureKind.MALFORMED_RESPONSE.value, f"the model returned {type(reply).__name__}, not a message")
    if (reply.response_metadata or {}).get(METADATA_KEY):
        return reply
    if reply.invalid_tool_calls and not reply.tool_calls:
        first = reply.invalid_tool_calls[0]
        metadata = dict(reply.response_metadata)
        error = str(first.get("error") or "the tool arguments are not valid JSON")
        metadata[METADATA_KEY] = {
            "mode": mode, "ok": False, "attempts": 1, "failure_kind": FailureKind.MALFORMED_JSON.value,
            "error": error, "errors": [error],
        }
        return reply.model_copy(update={"response_metadata": metadata})
    if not reply.tool_calls and not reply.invalid_tool_calls and not message_text(reply).strip():
        finish = (reply.response_metadata or {}).get("finish_reason")
        kind = FailureKind.TRUNCATED if finish == "length" else FailureKind.EMPTY
        return _failed(kind.value, "no tool call and no message", base=reply, mode=mode)
    return reply


def _exception_reply(exc: BaseException) -> AIMessage:
    failure = failure_from_exception(exc, 1)
    return _failed(failure.kind.value, failure.message, raw=failure.raw_text or "")


def _prepare(model: Runnable, domain: Any, history: Any, mode: AssistantMode, prompts_dir: Any, max_tokens: int | None):
    resolved = resolve_mode(model, mode)
    agent = bind_domain_tools(model, domain.tools, resolved, max_tokens=max_tokens)
    effective = agent.resolved_mode()
    return agent, effective, assistant_messages(domain, history, mode=effective, prompts_dir=prompts_dir)


async def aassistant_step(
    model: Runnable,
    domain: Any,
    history: Any,
    *,
    mode: AssistantMode = "auto",
    prompts_dir: str | Path | None = None,
    max_tokens: int | None = None,
    config: RunnableConfig | None = None,
) -> AIMessage:
    """The assistant's next message: tool calls, a reply to the user, or a typed failure."""
    agent, effective, messages = _prepare(model, domain, history, mode, prompts_dir, max_tokens)
    try:
        reply = await agent.ainvoke(messages, config)
    except OUTPUT_ERRORS as exc:
        return _exception_reply(exc)
    return _checked(reply, effective)
