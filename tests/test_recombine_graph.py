"""Recombination graph and user grouping, with scripted models."""

from __future__ import annotations

import asyncio
import random

import pytest

from apigen_mt.graphs.context import RunContext
from apigen_mt.graphs.recombine import graph
from apigen_mt.testing import ScriptedChatModel
from apigen_mt.tools.user_groups import group_by_user, user_of

FIND = {"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}}
A = {
    "id": "a", "domain": "retail", "user_id": "mia_moore_8366",
    "instruction": "You are Mia Moore in zip 94180. You want to know your email.",
    "actions": [FIND, {"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}}],
    "outputs": ["mia.moore8091@example.com"],
}
B = {
    "id": "b", "domain": "retail", "user_id": "mia_moore_8366",
    "instruction": "You are Mia Moore in zip 94180. You moved and want your address updated to 1 Elm St, Denver CO 80201.",
    "actions": [
        FIND,
        {"name": "modify_user_address", "arguments": {
            "user_id": "mia_moore_8366", "address1": "1 Elm St", "address2": "", "city": "Denver",
            "state": "CO", "country": "USA", "zip": "80201"}},
    ],
    "outputs": [],
}
COMBINED = {"thought": "two requests", "instruction": "You are Mia Moore in zip 94180. First you want to know your email; then you moved and want your address changed to 1 Elm St, Denver CO 80201."}
YES = {"reflection": "ok", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1}
NO = {"reflection": "drops the email", "correctness": 0, "completeness": 0, "satisfaction": 0, "creativity": 1}
PLAN = {"summary": "Mention the email request.", "agreed_issues": [], "disagreements": [], "plan": []}


def run(recombiner, reviewers, sources=(A, B), **phase1):
    context = RunContext(chat_models={"recombiner": recombiner, "reviewers": reviewers, "feedback": ScriptedChatModel([PLAN] * 5)})
    request = {"domain": "retail", "blueprint_id": "a+b", "sources": list(sources)}
    return asyncio.run(graph.ainvoke(request, {"configurable": {"phase1": phase1}}, context=context))


def test_recombination_accepted_merges_actions_once_and_keeps_outputs():
    recombiner = ScriptedChatModel([COMBINED])
    out = run(recombiner, [ScriptedChatModel([YES]) for _ in range(3)])
    assert out["status"] == "accepted"
    bp = out["blueprint"]
    assert [a["name"] for a in bp["actions"]] == ["find_user_id_by_name_zip", "get_user_details", "modify_user_address"]
    assert bp["outputs"] == A["outputs"] and bp["sources"] == ["a", "b"] and bp["user_id"] == "mia_moore_8366"
    assert bp["instruction"] == COMBINED["instruction"]
    prompt = recombiner.calls[0].messages[0].content
    assert A["instruction"] in prompt and B["instruction"] in prompt
    assert "address1" in out["attempts"][0]["diff"]
    assert out["attempts"][0]["proposer"] == "recombine"


def test_recombination_rejected_by_the_committee_after_feedback():
    recombiner = ScriptedChatModel([COMBINED, COMBINED])
    out = run(recombiner, [ScriptedChatModel([NO] * 2) for _ in range(3)], max_rounds=2)
    assert out["status"] == "rejected" and [a["stage"] for a in out["attempts"]] == ["committee", "committee"]
    assert "Mention the email request." in recombiner.calls[1].messages[0].content


def test_recombination_refuses_blueprints_of_different_users():
    other = {**B, "id": "c", "user_id": "someone_else_1"}
    with pytest.raises(ValueError, match="one known user"):
        run(ScriptedChatModel([COMBINED]), [ScriptedChatModel([YES])], sources=(A, other))


def test_recombination_refuses_blueprints_of_two_initial_states():
    elsewhere = {**B, "id": "c", "domain": "retail@another_state"}  # one user, but not one world
    with pytest.raises(ValueError, match="one domain and state"):
        run(ScriptedChatModel([COMBINED]), [ScriptedChatModel([YES])], sources=(A, elsewhere))
    assert group_by_user([A, elsewhere]) == []  # so groups never hold such a pair


def test_group_by_user():
    c = {**A, "id": "c", "user_id": None, "actions": [{"name": "get_user_details", "arguments": {"user_id": "zed_1"}}]}
    d = {**c, "id": "d"}
    loner = {**A, "id": "e", "user_id": "lonely_2"}
    groups = group_by_user([A, B, c, d, loner])
    assert [[g["id"] for g in group] for group in groups] == [["a", "b"], ["c", "d"]]
    assert user_of(c) == "zed_1" and user_of({"actions": []}) is None
    shuffled = group_by_user([A, B, c, d], size=2, rng=random.Random(3))
    assert sorted(sorted(b["id"] for b in g) for g in shuffled) == [["a", "b"], ["c", "d"]]
    with pytest.raises(ValueError):
        group_by_user([A, B], size=1)
