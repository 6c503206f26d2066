"""Phase 2 graph: every route with scripted models."""

from __future__ import annotations

import asyncio

from langchain_core.messages import AIMessage

from apigen_mt.graphs.context import RunContext
from apigen_mt.graphs.phase2 import graph
from apigen_mt.testing import ScriptedChatModel

from phase2_oracle import oracle_phase2_models

BP = {
    "id": "bp-1", "domain": "retail",
    "instruction": "You are Mia Moore in zip 94180. You moved: change your address to 1 Elm St, Denver CO 80201, then tell me your email.",
    "actions": [
        {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}},
        {"name": "modify_user_address", "arguments": {
            "user_id": "mia_moore_8366", "address1": "1 Elm St", "address2": "", "city": "Denver",
            "state": "CO", "country": "USA", "zip": "80201"}},
    ],
    "outputs": ["mia.moore8091@example.com"],
}


def run(models, blueprint=BP, **phase2):
    phase2.setdefault("best_of_n", 1)
    cfg = {"configurable": {"phase2": phase2}, "recursion_limit": 500}
    return asyncio.run(graph.ainvoke({"blueprint": blueprint}, cfg, context=RunContext(chat_models=models)))


def test_the_oracle_conversation_is_verified():
    out = run(oracle_phase2_models(BP))
    assert out["status"] == "accepted"
    [t] = out["trajectories"]
    assert t["reward"] == 1.0 and t["stop"] == "user_stop" and t["reasons"] == []
    # the oracle looks up what the write needs (the country, from the user's record), asks, is
    # told yes, writes, then says the outputs; the audit passes
    assert t["tool_calls"] == 3 and t["user_turns"] == 2 and t["attempt"] == 1 and t["audit"]["passed"]
    roles = [m["role"] for m in t["messages"]]
    assert roles == ["system", "user", *["assistant", "tool"] * 2, "assistant", "user", "assistant", "tool", "assistant"]
    names = [m["tool_calls"][0]["function"]["name"] for m in t["messages"] if m.get("tool_calls")]
    assert names[0] == "find_user_id_by_name_zip" and names[-2:] == ["get_user_details", "modify_user_address"]
    assert t["messages"][-4]["content"].startswith("Yes, go ahead with step 2")
    assert "mia.moore8091@example.com" in t["messages"][-1]["content"]
    assert {tool["function"]["name"] for tool in t["tools"]} >= {"modify_user_address", "get_user_details"}


def test_a_wrong_argument_gets_reward_zero_with_the_differing_records():
    models = oracle_phase2_models(BP, wrong={"city": "Boulder"})
    out = run(models, max_attempts=2)
    assert out["status"] == "rejected" and len(out["trajectories"]) == 2
    t = out["trajectories"][0]
    assert t["reward"] == 0.0 and not t["state_match"]
    assert any("city" in r and "Boulder" in r for r in t["reasons"])


def test_a_missing_output_gets_reward_zero_with_that_reason():
    out = run(oracle_phase2_models(BP, say_outputs=False), max_attempts=1)
    [t] = out["trajectories"]
    assert t["reward"] == 0.0 and t["state_match"]
    assert t["reasons"] == ["output not said: 'mia.moore8091@example.com'"]


def test_a_user_who_never_stops_hits_max_turns():
    counter = iter(range(1000))
    user = ScriptedChatModel([lambda m: f"And one more question, number {next(counter)}?"] * 100)
    assistant = ScriptedChatModel([lambda m: AIMessage(content=f"Sure, answer {next(counter)}.")] * 100)
    out = run({"user": user, "assistant": assistant}, max_attempts=1, max_turns=6)
    [t] = out["trajectories"]
    assert t["stop"] == "max_turns" and t["reward"] == 0.0 and t["turns"] == 6
    assert t["reasons"][0] == "conversation ended by max_turns, not by the user"


def test_a_looping_assistant_is_cut_by_the_detector():
    models = oracle_phase2_models(BP)
    assistant = ScriptedChatModel([AIMessage(content="", tool_calls=[{"name": "get_user_details", "args": {"user_id": "mia_moore_8366"}, "id": "c"}])] * 20)
    out = run({"user": models["user"], "assistant": assistant}, max_attempts=1, loop_window=3)
    [t] = out["trajectories"]
    assert t["stop"] == "loop" and t["tool_calls"] == 2  # the third identical call is never executed
    assert len(assistant.calls) == 3


def test_best_of_n_keeps_the_candidate_the_critic_scores_highest():
    yes = "Yes, go ahead with step 2."
    user = ScriptedChatModel(["Hi, I want to change my address.", "Change address please", BP["instruction"]]
                             + [yes] * 3 + ["###STOP###"] * 3)
    critic = ScriptedChatModel([{"scores": [
        {"index": 0, "score": 4, "reason": "vague"}, {"index": 1, "score": 2, "reason": "vaguer"},
        {"index": 2, "score": 9, "reason": "faithful"}]}] * 3)
    models = oracle_phase2_models(BP)
    models.update({"user": user, "user_critic": critic})
    out = run(models, best_of_n=3, max_attempts=1)
    [t] = out["trajectories"]
    assert t["messages"][1]["content"] == BP["instruction"]
    first_turn = t["user_turn_choices"][0]
    assert first_turn["scores"] == [4, 2, 9] and first_turn["chosen_index"] == 2
    assert t["reward"] == 1.0


def test_a_tool_error_reaches_the_assistant_as_a_tool_message():
    bad = {"name": "get_user_details", "arguments": {"user_id": "nobody_0000"}}
    seen = []

    def assistant_reply(messages):
        seen.append(messages)
        tools_seen = [m for m in messages if m.type == "tool"]
        if not tools_seen:
            return AIMessage(content="", tool_calls=[{"name": bad["name"], "args": bad["arguments"], "id": "c1"}])
        return AIMessage(content="Sorry, I could not find that user.")

    models = oracle_phase2_models(BP)
    models["assistant"] = ScriptedChatModel([assistant_reply] * 5)
    out = run(models, max_attempts=1)
    [t] = out["trajectories"]
    tool_message = [m for m in t["messages"] if m["role"] == "tool"][0]
    assert tool_message["content"] == "Error: User not found"  # the API's own words
    assert t["failed_tool_calls"] == 1
    assert any(m.type == "tool" and "Error" in m.content for m in seen[1])  # the assistant saw the error


def test_unique_successes_are_kept_and_attempts_are_bounded():
    out = run(oracle_phase2_models(BP), max_attempts=3, stop_on_success=False)
    assert len(out["trajectories"]) == 3 and out["status"] == "accepted"
    assert [t.get("duplicate") for t in out["trajectories"]] == [False, True, True]
