"""Phase 2 of APIGen-MT as a LangGraph state machine: blueprint -> verified conversations.

    start_attempt -> user_turn -> assistant_turn -> tools -> assistant_turn ... -> user_turn ...
                  -> verify -> start_attempt (next attempt) | finish

``user_turn`` samples N candidate user messages in parallel and a critic keeps the one most
faithful to the instruction (N = 1 skips the critic). ``assistant_turn`` is the agent under
test, with the domain policy as system prompt and the domain tools bound; ``tools``
executes its calls in the environment (errors go back as tool messages, as a real API's
would). A conversation ends when the user says ``###STOP###``, at ``max_turns``, after
``max_tool_steps`` tool rounds without a word to the user, or when the loop detector sees
the same message or call ``loop_window`` times in a row. ``verify`` replays a_gt on a fresh
environment and compares states and outputs (the foundation's verifier), then audits the
conversation (:mod:`apigen_mt.tools.audit`: every argument said or returned before, the
policy over the calls made, each guarded write confirmed); only a conversation the user
ended, with reward 1, that passes the audit, is accepted. Every conversation, failed or
not, is kept in ``trajectories`` with its reasons (preference pairs for later training).

Each node decides what its step means for the conversation (``stop``, ``retry``) with the
settings it read; the routers only read the state.

Input: ``{"blueprint": {...}}``; settings from ``configurable["phase2"]``; models and the LLM
runtime from the run's context (:class:`~.context.RunContext`).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage, convert_to_openai_messages
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from apigen_mt.agents.assistant import aassistant_step, assistant_system_prompt
from apigen_mt.agents.simulated_user import anext_user_message
from apigen_mt.domains.registry import generating_domain, get_domain
from apigen_mt.llm.structured import message_text
from apigen_mt.llm.tool_calling import tool_calling_failure
from apigen_mt.llm.tracing import run_config
from apigen_mt.tools.audit.checks import audit_conversation
from apigen_mt.tools.audit.conversation import from_openai
from apigen_mt.tools.checks.execution import start_env
from apigen_mt.tools.executor import run_call
from apigen_mt.tools.state_diff import canonical_json
from apigen_mt.tools.verifier import verify

from .context import RunContext, run_context
from .settings import Phase2Settings
from .state import Phase2State

__all__ = ["build_phase2_graph", "detect_stop", "graph", "trajectory_record"]


def _trace(config: RunnableConfig, state: Phase2State, role: str) -> RunnableConfig:
    return run_config(base=config, blueprint_id=state.blueprint.get("id"), phase="phase2", role=role, attempt=state.attempt)


def _signature(message: Any) -> str:
    calls = [(c.get("name"), c.get("args")) for c in getattr(message, "tool_calls", None) or []]
    return canonical_json([type(message).__name__, message_text(message).strip(), calls])


def _spoken(messages: list[Any]) -> list[Any]:
    """The conversational turns: user messages and assistant messages to the user (not tool calls)."""
    return [
        m for m in messages
        if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls and message_text(m).strip())
    ]


def detect_stop(messages: list[Any], tool_steps: int, settings: Phase2Settings) -> str | None:
    """Why a conversation of these ``messages``, ``tool_steps`` tool rounds after the
    assistant last spoke, must end now; None when it goes on."""
    if len(_spoken(messages)) >= settings.max_turns:
        return "max_turns"
    if tool_steps >= settings.max_tool_steps:
        return "max_tool_steps"
    window = settings.loop_window
    for kind in (AIMessage, HumanMessage):
        last = [_signature(m) for m in messages if isinstance(m, kind)][-window:]
        if len(last) == window and len(set(last)) == 1:
            return "loop"
    return None


# -- nodes -------------------------------------------------------------------------------------


def start_attempt(state: Phase2State) -> dict[str, Any]:
    """A fresh conversation: no messages, no calls (the environment is the blueprint's initial
    one); a domain whose users act too is refused (not generated on yet)."""
    generating_domain(state.blueprint["domain"])
    return {
        "attempt": state.attempt + 1,
        "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES)],
        "calls": [],
        "user_turns": [],
        "tool_steps": 0,
        "stop": None,
        "retry": False,
    }


async def user_turn(state: Phase2State, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The simulated user's next message (best-of-N with the critic)."""
    settings = Phase2Settings.from_config(config)
    context = run_context(runtime)
    n = settings.best_of_n
    turn = await anext_user_message(
        await context.amodel(config, "user"),
        await context.amodel(config, "user_critic") if n > 1 else None,
        state.blueprint["instruction"],
        state.messages,
        n,
        persona=state.blueprint.get("persona"),
        prompts_dir=settings.prompts_dir,
        config=_trace(config, state, "user"),
    )
    update: dict[str, Any] = {"user_turns": [*state.user_turns, turn.to_dict()], "tool_steps": 0}
    if not turn.ok:
        update["stop"] = "user_error"
    elif turn.stop:
        update["stop"] = "user_stop"
    else:
        message = HumanMessage(content=turn.message)
        update["messages"] = [message]
        update["stop"] = detect_stop([*state.messages, message], 0, settings)
    return update


async def assistant_turn(state: Phase2State, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The agent under test: a reply to the user or tool calls."""
    settings = Phase2Settings.from_config(config)
    domain = get_domain(state.blueprint["domain"])
    reply = await aassistant_step(
        await run_context(runtime).amodel(config, "assistant"),
        domain,
        state.messages,
        mode=settings.assistant_mode,
        prompts_dir=settings.prompts_dir,
        config=_trace(config, state, "assistant"),
    )
    failure = tool_calling_failure(reply)
    if failure is not None:
        return {"stop": "assistant_error", "user_turns": [*state.user_turns, {"assistant_error": failure}]}
    return {"messages": [reply], "stop": detect_stop([*state.messages, reply], state.tool_steps, settings)}


def tools(state: Phase2State, config: RunnableConfig) -> dict[str, Any]:
    """Execute the assistant's calls on the environment rebuilt from this conversation's calls
    (from the blueprint's initial state; a call the user made runs on their device)."""
    domain = get_domain(state.blueprint["domain"])
    env, _ = start_env(domain, state.blueprint.get("initial_state"))
    for index, call in enumerate(state.calls):
        run_call(env, index, call["name"], call["arguments"], requestor=call.get("requestor"))
    last = state.messages[-1]
    messages, calls = [], []
    for offset, tool_call in enumerate(last.tool_calls):
        executed = run_call(env, len(state.calls) + offset, tool_call["name"], tool_call.get("args") or {})
        messages.append(ToolMessage(content=executed.render(), tool_call_id=tool_call["id"], name=tool_call["name"]))
        calls.append({"name": tool_call["name"], "arguments": tool_call.get("args") or {}, "ok": executed.ok, "error": executed.error})
    steps = state.tool_steps + 1
    stop = detect_stop([*state.messages, *messages], steps, Phase2Settings.from_config(config))
    return {"messages": messages, "calls": [*state.calls, *calls], "tool_steps": steps, "stop": stop}


def trajectory_record(state: Phase2State, stop: str, verdict: Any, *, prompts_dir: str | None = None) -> dict[str, Any]:
    """The conversation in OpenAI message form with its tools, reward and reasons."""
    domain = get_domain(state.blueprint["domain"])
    system = {"role": "system", "content": assistant_system_prompt(domain, prompts_dir=prompts_dir)}
    messages = [system, *convert_to_openai_messages(list(state.messages))]
    reasons = list(verdict.reasons)
    if stop != "user_stop":
        reasons.insert(0, f"conversation ended by {stop}, not by the user")
    accepted = verdict.reward == 1.0 and stop == "user_stop"
    return {
        "blueprint_id": state.blueprint.get("id"),
        "domain": state.blueprint["domain"],
        "attempt": state.attempt,
        "messages": messages,
        "tools": [spec.openai_schema() for spec in domain.tools],
        "reward": 1.0 if accepted else 0.0,
        "verifier_reward": verdict.reward,
        "state_match": verdict.state_match,
        "reasons": reasons,
        "stop": stop,
        "turns": len(_spoken(state.messages)),
        "user_turns": sum(1 for m in state.messages if isinstance(m, HumanMessage)),
        "tool_calls": len(state.calls),
        "failed_tool_calls": sum(1 for c in state.calls if not c["ok"]),
        "calls": list(state.calls),
        "user_turn_choices": list(state.user_turns),
    }


def verify_conversation(state: Phase2State, config: RunnableConfig) -> dict[str, Any]:
    """Reward 1 iff the final state equals replaying a_gt and every o_gt was said; and
    whether another conversation follows (attempts left, no success yet or more wanted)."""
    settings = Phase2Settings.from_config(config)
    stop = state.stop or "ended"
    domain = get_domain(state.blueprint["domain"])
    said = [message_text(m) for m in state.messages if isinstance(m, AIMessage)]
    verdict = verify(domain, state.blueprint, state.calls, said)
    record = trajectory_record(state, stop, verdict, prompts_dir=settings.prompts_dir)
    if record["reward"] == 1.0 and settings.audit:
        audit = audit_conversation(domain, from_openai(record))
        record["audit"] = audit.to_json()
        if not audit.passed:  # right by luck or against the policy: kept as a rejected example
            record["reward"] = 0.0
            record["reasons"] = [f"audit {reason}" for reason in audit.reasons]
    if record["reward"] == 1.0:
        fingerprint = json.dumps(record["messages"][1:], sort_keys=True, default=str)
        earlier = {json.dumps(t["messages"][1:], sort_keys=True, default=str) for t in state.trajectories if t["reward"] == 1.0 and not t.get("duplicate")}
        record["duplicate"] = fingerprint in earlier
    succeeded = any(t["reward"] == 1.0 for t in [*state.trajectories, record])
    retry = not (succeeded and settings.stop_on_success) and state.attempt < settings.max_attempts
    return {"trajectories": [record], "stop": stop, "retry": retry}


def finish(state: Phase2State) -> dict[str, Any]:
    kept = [t for t in state.trajectories if t["reward"] == 1.0 and not t.get("duplicate")]
    return {"status": "accepted" if kept else "rejected"}


# -- routing: the state only (the nodes before decided) -----------------------------------------


def after_user(state: Phase2State) -> str:
    return "verify" if state.stop else "assistant_turn"


def after_assistant(state: Phase2State) -> str:
    if state.stop:
        return "verify"
    last = state.messages[-1] if state.messages else None
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else "user_turn"


def after_tools(state: Phase2State) -> str:
    return "verify" if state.stop else "assistant_turn"


def after_verify(state: Phase2State) -> str:
    return "start_attempt" if state.retry else "finish"


def build_phase2_graph() -> StateGraph:
    """The uncompiled graph (compile it with or without a checkpointer)."""
    builder = StateGraph(Phase2State, context_schema=RunContext)
    builder.add_node("start_attempt", start_attempt)
    builder.add_node("user_turn", user_turn)
    builder.add_node("assistant_turn", assistant_turn)
    builder.add_node("tools", tools)
    builder.add_node("verify", verify_conversation)
    builder.add_node("finish", finish)
    builder.add_edge(START, "start_attempt")
    builder.add_edge("start_attempt", "user_turn")
    builder.add_conditional_edges("user_turn", after_user, ["assistant_turn", "verify"])
    builder.add_conditional_edges("assistant_turn", after_assistant, ["tools", "user_turn", "verify"])
    builder.add_conditional_edges("tools", after_tools, ["assistant_turn", "verify"])
    builder.add_conditional_edges("verify", after_verify, ["start_attempt", "finish"])
    builder.add_edge("finish", END)
    return builder


graph = build_phase2_graph().compile()
graph.name = "phase2"
