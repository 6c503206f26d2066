"""Phase 1 graph: every route with scripted models (no network, deterministic)."""

from __future__ import annotations

import asyncio
import json

import pytest

from apigen_mt.graphs.context import RunContext
from apigen_mt.graphs.phase1 import build_phase1_graph, graph
from apigen_mt.testing import ScriptedChatModel
from apigen_mt.tools.dedup import DedupIndex

GOOD_BP = {
    "thought": "Mia wants to see her account.",
    "instruction": "You are Mia Moore in zip 94180. You want to know the email on your account.",
    "actions": [
        {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}},
        {"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}},
    ],
    "outputs": ["mia.moore8091@example.com"],
}
EMPTY_INSTRUCTION_BP = {**GOOD_BP, "instruction": "  "}
UNKNOWN_TOOL_BP = {**GOOD_BP, "actions": [{"name": "teleport_user", "arguments": {}}]}
FAILING_CALL_BP = {**GOOD_BP, "actions": [{"name": "get_user_details", "arguments": {"user_id": "nobody_0000"}}]}
UNAUTHENTICATED_BP = {**GOOD_BP, "actions": [{"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}}]}
YES = {"reflection": "Fine.", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1, "suggested_correction": None}
NO = {"reflection": "Wrong user.", "correctness": 0, "completeness": 0, "satisfaction": 0, "creativity": 1, "suggested_correction": "fix"}
PLAN = {"summary": "Use a real tool.", "agreed_issues": ["unknown tool"], "disagreements": [], "plan": ["call find_user_id_by_name_zip"]}


def judges(*verdicts):
    return [ScriptedChatModel([v] * 6) for v in verdicts]


def config(generator, reviewers, feedback=None, **phase1):
    """The runnable config (plain settings) and the run context (the models) of one run."""
    models = {"generator": generator, "reviewers": reviewers, "feedback": feedback or ScriptedChatModel([PLAN] * 10)}
    return {"configurable": {"phase1": phase1}}, RunContext(chat_models=models)


def run(setup, *, mode="llm", seed=1, blueprint_id="bp-1", compiled=graph):
    cfg, context = setup
    request = {"domain": "retail", "blueprint_id": blueprint_id, "seed": seed, "mode": mode}
    return asyncio.run(compiled.ainvoke(request, cfg, context=context))


def stages(out):
    return [a["stage"] for a in out["attempts"]]


def test_pass_on_the_first_round():
    generator = ScriptedChatModel([GOOD_BP])
    out = run(config(generator, judges(YES, YES, YES)))
    assert out["status"] == "accepted" and stages(out) == ["accepted"]
    bp = out["blueprint"]
    assert bp["id"] == "bp-1" and bp["domain"] == "retail" and bp["actions"] == GOOD_BP["actions"]
    attempt = out["attempts"][0]
    assert attempt["votes"]["judges"] == 3 and attempt["votes"]["passed"] == ["correctness", "completeness", "satisfaction", "creativity"]
    assert "users" in attempt["diff"] or attempt["diff"]  # the reviewers saw the state diff text
    assert len(generator.calls) == 1 and out["feedback"] == [] and attempt["proposer"] == "llm"


def test_format_failure_goes_to_feedback_then_passes():
    generator = ScriptedChatModel([EMPTY_INSTRUCTION_BP, GOOD_BP])
    feedback = ScriptedChatModel([PLAN])
    reviewers = judges(YES, YES, YES)
    out = run(config(generator, reviewers, feedback))
    assert out["status"] == "accepted" and stages(out) == ["format", "accepted"]
    first = out["attempts"][0]
    assert any("instruction" in r for r in first["reasons"]) and first["feedback"]
    assert first["reviews"] == []  # the committee was skipped
    assert all(len(r.calls) == 1 for r in reviewers)
    second_prompt = generator.calls[1].messages[0].content
    assert "Use a real tool." in second_prompt and "'instruction' is empty" in second_prompt
    assert "'instruction' is empty" in feedback.calls[0].messages[0].content


def test_an_unknown_tool_fails_execution_with_its_name():
    out = run(config(ScriptedChatModel([UNKNOWN_TOOL_BP, GOOD_BP]), judges(YES, YES, YES)))
    assert stages(out) == ["execution", "accepted"]
    assert "teleport_user" in " ".join(out["attempts"][0]["reasons"])


def test_execution_failure_is_reported_with_the_api_error():
    out = run(config(ScriptedChatModel([FAILING_CALL_BP, GOOD_BP]), judges(YES, YES, YES)))
    assert stages(out) == ["execution", "accepted"]
    assert "nobody_0000" in " ".join(out["attempts"][0]["reasons"])


def test_policy_failure_uses_the_generation_rules():
    out = run(config(ScriptedChatModel([UNAUTHENTICATED_BP, GOOD_BP]), judges(YES, YES, YES)))
    assert stages(out) == ["policy", "accepted"]
    assert "not authenticated" in " ".join(out["attempts"][0]["reasons"])


def test_split_committee_majority_passes():
    out = run(config(ScriptedChatModel([GOOD_BP]), judges(YES, YES, NO)))
    assert out["status"] == "accepted"
    votes = out["attempts"][0]["votes"]["metrics"]["correctness"]
    assert votes == {"yes": 2, "no": 1, "majority": 1, "unanimous": False}


def test_split_committee_majority_fails_and_the_judges_reach_the_feedback():
    feedback = ScriptedChatModel([PLAN])
    out = run(config(ScriptedChatModel([GOOD_BP, GOOD_BP]), judges(YES, NO, NO), feedback, max_rounds=2, dedup=False))
    assert stages(out)[0] == "committee"
    assert any("correctness" in r for r in out["attempts"][0]["reasons"])
    assert "Wrong user." in feedback.calls[0].messages[0].content


def test_rounds_exhausted_gives_up_with_every_attempt_kept():
    generator = ScriptedChatModel([EMPTY_INSTRUCTION_BP, FAILING_CALL_BP, UNAUTHENTICATED_BP])
    out = run(config(generator, judges(YES, YES, YES), max_rounds=3))
    assert out["status"] == "rejected" and out.get("blueprint") is None
    assert stages(out) == ["format", "execution", "policy"]
    assert out["rejection"]["stage"] == "policy" and out["rejection"]["rounds"] == 3
    assert len(out["feedback"]) == 2  # no feedback after the last round


def test_domain_default_rounds_retail_is_three():
    generator = ScriptedChatModel([UNKNOWN_TOOL_BP] * 3)
    out = run(config(generator, judges(YES)))
    assert len(out["attempts"]) == 3 and out["status"] == "rejected"


def test_malformed_generator_output_is_a_generation_failure_not_a_crash():
    generator = ScriptedChatModel(["not json at all", "still not json", GOOD_BP])
    out = run(config(generator, judges(YES, YES, YES)))
    assert stages(out) == ["generation", "accepted"]
    assert out["attempts"][0]["proposal"] is None and out["attempts"][0]["reasons"]


def test_an_invalid_review_abstains():
    out = run(config(ScriptedChatModel([GOOD_BP]), [ScriptedChatModel(["??", "??"]), *judges(YES, YES)]))
    votes = out["attempts"][0]["votes"]
    assert out["status"] == "accepted" and votes["judges"] == 2 and votes["abstained"] == 1


def test_duplicates_are_rejected_with_the_reason():
    index = DedupIndex()
    index.add("bp-0", {**GOOD_BP, "id": "bp-0", "domain": "retail"})
    cfg, context = config(ScriptedChatModel([GOOD_BP] * 2), judges(YES, YES, YES), max_rounds=2)
    context.dedup_index = index
    out = run((cfg, context))
    assert stages(out) == ["dedup", "dedup"] and out["status"] == "rejected"
    assert "bp-0" in out["attempts"][0]["reasons"][0]
    # an accepted blueprint is claimed in the index, so the next identical one is refused
    cfg2, context2 = config(ScriptedChatModel([{**GOOD_BP, "instruction": "You are Mia Moore (94180) and want your account email shown to you now."}]), judges(YES, YES, YES), max_rounds=1)
    fresh = DedupIndex()
    context2.dedup_index = fresh
    assert run((cfg2, context2), blueprint_id="bp-9")["status"] == "accepted" and "bp-9" in fresh


def test_grounded_mode_keeps_the_walk_and_asks_only_for_the_instruction():
    """The writer is told what the instruction must say; one without it fails grounding (and
    the reason goes back as feedback); one with it is accepted."""
    out = None
    for seed in range(10):  # the first seed whose walk is clean
        vague = {"thought": "t", "instruction": "You are a customer. You want the change the walk made.", "outputs": []}
        writer = ScriptedChatModel([vague] * 2)
        out = run(config(writer, judges(YES, YES, YES), max_rounds=2), mode="grounded", seed=seed)
        if out["proposer"] == "grounded":
            break
    must_say = out["walk"]["must_say"]
    assert must_say and stages(out) == ["grounding", "grounding"] and out["status"] == "rejected"
    assert "is not obtainable" in out["attempts"][0]["reasons"][0]
    prompt = writer.calls[0].messages[-1].content
    assert all(f"- {value}" in prompt for value in must_say)
    assert "is not obtainable" in writer.calls[1].messages[-1].content  # the feedback names the gap
    said = {**vague, "instruction": "You are " + " ".join(map(str, must_say)) + ". You want the change the walk made."}
    out = run(config(ScriptedChatModel([said]), judges(YES, YES, YES)), mode="grounded", seed=seed)
    assert out["proposer"] == "grounded" and out["status"] == "accepted"
    assert out["blueprint"]["actions"] == out["walk"]["actions"]
    assert out["attempts"][0]["proposer"] == "grounded"


def test_mixed_mode_is_decided_by_the_seed():
    def proposer_of(seed):
        cfg, context = config(ScriptedChatModel([GOOD_BP]), judges(YES), committee_size=1, grounded_ratio=0.5)
        request = {"domain": "retail", "blueprint_id": "x", "seed": seed, "mode": "mixed"}
        return asyncio.run(graph.ainvoke(request, cfg, context=context, interrupt_after=["prepare"]))["proposer"]

    proposers = {(seed, proposer_of(seed)) for seed in range(12)}
    again = {(seed, proposer_of(seed)) for seed, _ in sorted(proposers)[:4]}
    assert again <= proposers
    assert {p for _, p in proposers} == {"llm", "grounded"}


def test_the_same_seed_gives_the_same_context():
    cfg, context = config(ScriptedChatModel([]), [])
    first = asyncio.run(graph.ainvoke({"domain": "retail", "blueprint_id": "x", "seed": 5}, cfg, context=context, interrupt_after=["prepare"]))
    second = asyncio.run(graph.ainvoke({"domain": "retail", "blueprint_id": "y", "seed": 5}, cfg, context=context, interrupt_after=["prepare"]))
    assert json.dumps(first["context"], sort_keys=True) == json.dumps(second["context"], sort_keys=True)


def test_committee_size_and_threshold_are_configurable():
    out = run(config(ScriptedChatModel([GOOD_BP]), judges(YES), committee_size=5))
    assert out["attempts"][0]["votes"]["judges"] == 5
    strict = {**YES, "creativity": 0}
    out = run(config(ScriptedChatModel([GOOD_BP]), judges(strict), committee_size=1, pass_threshold=1.0, max_rounds=1))
    assert out["status"] == "rejected" and "creativity" in out["attempts"][0]["reasons"][0]


def test_bad_settings_are_a_clear_error():
    from apigen_mt.configuration import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_rounds"):
        run(config(ScriptedChatModel([GOOD_BP]), judges(YES), max_rounds=0))


def test_the_module_graph_has_no_checkpointer_and_the_builder_compiles_with_one():
    from langgraph.checkpoint.memory import InMemorySaver

    assert graph.checkpointer is None
    compiled = build_phase1_graph().compile(checkpointer=InMemorySaver())
    cfg, context = config(ScriptedChatModel([GOOD_BP]), judges(YES, YES, YES))
    cfg["configurable"]["thread_id"] = "t1"
    out = run((cfg, context), compiled=compiled)
    assert out["status"] == "accepted"
    assert compiled.get_state(cfg).values["status"] == "accepted"
