"""The ``tau2`` and ``dpo`` export formats.

tau2: real tau2-bench train tasks, turned into blueprints and exported back, must load with
tau2's own Task model (and its tasks-file loader), and tau2's own evaluators must give the
gold conversation of each exported task reward 1 and a conversation missing a write reward 0.

dpo: hand-made trajectory records: the pair splits at the first assistant turn that differs;
pairs whose contexts differ (the user said something else) are skipped and counted.
"""

from __future__ import annotations

import copy
import json

import pytest

from apigen_mt.export import EXPORT_FORMATS, FORMATS, dpo_pairs, to_tau2_task, write_jsonl, write_tau2_tasks

from tau2_harness import tau2_reward

# -- tau2 ----------------------------------------------------------------------------------------


def test_tau2_export_refuses_other_domains():
    blueprint = {"id": "lib-1", "domain": "library", "instruction": "Borrow a book.", "actions": [], "outputs": []}
    with pytest.raises(ValueError, match=r"'library'.*tau2-bench domains \(retail, airline, telecom\)"):
        to_tau2_task(blueprint)


def test_tau2_task_shape_without_tau2():
    blueprint = {
        "id": "bp-7", "domain": "retail", "instruction": "You want to cancel order #W1.",
        "actions": [{"name": "cancel_pending_order", "arguments": {"order_id": "#W1", "reason": "no longer needed"}}],
        "outputs": ["42.5"], "persona": {"id": "p", "description": "A nurse.", "style": "Blunt."},
    }
    task = to_tau2_task(blueprint)
    assert task["id"] == "bp-7" and "bp-7" in task["description"]["purpose"]
    assert task["user_scenario"]["instructions"]["reason_for_call"] == blueprint["instruction"]
    assert task["user_scenario"]["persona"] == "A nurse.\nBlunt."
    criteria = task["evaluation_criteria"]
    assert criteria["actions"] == [{
        "action_id": "bp-7_0", "requestor": "assistant", "name": "cancel_pending_order",
        "arguments": {"order_id": "#W1", "reason": "no longer needed"},
    }]
    assert criteria["communicate_info"] == ["42.5"] and criteria["reward_basis"] == ["DB", "COMMUNICATE"]
    json.dumps(task)  # plain JSON


def test_write_tau2_tasks_leaves_no_file_on_a_bad_blueprint(tmp_path):
    good = {"id": "a", "domain": "airline", "instruction": "x", "actions": [], "outputs": []}
    path = tmp_path / "tasks.json"
    with pytest.raises(ValueError):
        write_tau2_tasks([good, {**good, "domain": "library"}], path)
    assert list(tmp_path.iterdir()) == []
    assert write_tau2_tasks([good, {**good, "id": "b"}], path) == 2
    assert [t["id"] for t in json.loads(path.read_text())] == ["a", "b"]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", ["retail", "airline"])
def test_tau2_round_trip(name, request, tmp_path):
    from apigen_mt.domains.base import ToolKind
    from apigen_mt.domains.tau2bench.runtime import import_tau2
    from apigen_mt.domains.tau2bench.tasks import task_to_blueprint, tau2_tasks

    domain = request.getfixturevalue(name)
    writes = {tool.name for tool in domain.tools if tool.kind == ToolKind.WRITE}
    tasks = tau2_tasks(name, "train")
    has_write = [any(a.name in writes for a in t.evaluation_criteria.actions or []) for t in tasks]
    # three tasks that change the database (the dropped-write check bites) and one that does not
    originals = [t for t, w in zip(tasks, has_write) if w][:3] + [t for t, w in zip(tasks, has_write) if not w][:1]
    assert len(originals) == 4
    blueprints = [task_to_blueprint(name, task, "train") for task in originals]

    Task = import_tau2("data_model.tasks").Task
    exported = [Task.model_validate(to_tau2_task(bp.to_json())) for bp in blueprints]
    path = tmp_path / "tasks.json"
    assert write_tau2_tasks(blueprints, path) == len(blueprints)
    loaded = import_tau2("domains.telecom.environment").load_tasks(str(path))  # tau2's tasks-file loader
    assert [t.model_dump() for t in loaded] == [t.model_dump() for t in exported]

    for original, task in zip(originals, loaded):
        gold = [a for a in original.evaluation_criteria.actions or [] if a.requestor == "assistant"]
        criteria = task.evaluation_criteria
        assert [(a.name, a.arguments) for a in criteria.actions] == [(a.name, a.arguments) for a in gold]
        assert criteria.communicate_info == list(original.evaluation_criteria.communicate_info or [])
        calls = [{"name": a.name, "arguments": copy.deepcopy(a.arguments)} for a in criteria.actions]
        said = [f"Done. {info}." for info in criteria.communicate_info] or ["All done."]
        assert tau2_reward(name, task, calls, said) == 1.0, task.id
        write_indices = [i for i, call in enumerate(calls) if call["name"] in writes]
        if write_indices:
            without = [call for i, call in enumerate(calls) if i != write_indices[-1]]
            assert tau2_reward(name, task, without, said) == 0.0, task.id


# -- dpo -----------------------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are a store agent. Policy: ..."}
TOOLS = [{"type": "function", "function": {"name": "cancel_order", "description": "Cancel.", "parameters": {"type": "object"}}}]


def _call(call_id, order_id, reason="no longer needed"):
    arguments = json.dumps({"order_id": order_id, "reason": reason})
    return {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "id": call_id, "function": {"name": "cancel_order", "arguments": arguments}},
    ]}


def _conversation(order_id="#W1", call_id="call_a", user="Please cancel order #W1, I no longer need it."):
    return [
        SYSTEM,
        {"role": "user", "content": user},
        _call(call_id, order_id),
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"order_id": order_id, "status": "cancelled"})},
        {"role": "assistant", "content": f"Order {order_id} is cancelled."},
        {"role": "user", "content": "Thanks! ###STOP###"},
    ]


def _record(messages, attempt, reward, **extra):
    reasons = [] if reward == 1.0 else ["final state differs from the gold state"]
    return {"blueprint_id": "bp-1", "domain": "retail", "attempt": attempt, "messages": messages,
            "tools": TOOLS, "reward": reward, "reasons": reasons, "stop": "user_stop", **extra}


def test_dpo_splits_at_the_first_differing_assistant_turn():
    # the tool call ids differ too: ids are not part of what the assistant chose
    accepted = _record(_conversation("#W1", "call_a"), 2, 1.0)
    failed = _record(_conversation("#W9", "call_b"), 1, 0.0)
    rows, stats = dpo_pairs([failed, accepted])
    assert stats == {"pairs": 1, "emitted": 1}
    [row] = json.loads(json.dumps(rows))
    assert row["prompt"] == accepted["messages"][:2]  # system + user: the shared context
    assert row["prompt"][-1]["role"] == "user"
    assert row["chosen"] == accepted["messages"][2:] and row["rejected"] == failed["messages"][2:]
    assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
    assert row["chosen"][0] != row["rejected"][0]
    assert row["tools"] == TOOLS and row["id"] == "bp-1"
    assert row["rejected_attempt"] == 1 and row["rejected_reasons"] == failed["reasons"]


def test_dpo_splits_at_a_later_assistant_turn():
    good = _conversation()
    bad = copy.deepcopy(good)
    bad[4] = {"role": "assistant", "content": "I could not cancel it."}
    rows, stats = dpo_pairs([_record(good, 1, 1.0), _record(bad, 2, 0.0)])
    assert stats["emitted"] == 1
    assert rows[0]["prompt"] == good[:4] and rows[0]["rejected"] == bad[4:]


def test_dpo_skips_a_divergence_at_the_user_message():
    accepted = _record(_conversation(), 1, 1.0)
    failed = _record(_conversation("#W9", user="Cancel #W9 please."), 2, 0.0)
    rows, stats = dpo_pairs([accepted, failed])
    assert rows == [] and stats == {"pairs": 1, "emitted": 0, "diverged_at_user": 1}


def test_dpo_skips_a_divergence_at_a_tool_result_and_a_prefix():
    good = _conversation()
    other_result = copy.deepcopy(good)
    other_result[3]["content"] = json.dumps({"error": "order not found"})
    cut = good[:3]
    rows, stats = dpo_pairs([_record(good, 1, 1.0), _record(other_result, 2, 0.0), _record(cut, 3, 0.0)])
    assert rows == [] and stats == {"pairs": 2, "emitted": 0, "diverged_at_tool": 1, "prefix": 1}


def test_dpo_needs_an_accepted_and_a_failed_conversation():
    assert dpo_pairs([_record(_conversation(), 1, 1.0)]) == ([], {"pairs": 0, "emitted": 0})
    assert dpo_pairs([_record(_conversation(), 1, 0.0)]) == ([], {"pairs": 0, "emitted": 0})
    # a duplicate accepted conversation is neither chosen nor rejected
    duplicate = _record(_conversation("#W9"), 1, 1.0, duplicate=True)
    assert dpo_pairs([duplicate, _record(_conversation("#W2"), 2, 0.0)]) == ([], {"pairs": 0, "emitted": 0})


def test_dpo_pairs_the_first_accepted_with_each_failed_one_per_blueprint(tmp_path):
    first = _record(_conversation("#W1"), 2, 1.0)
    duplicate = _record(_conversation("#W1"), 3, 1.0, duplicate=True)
    second = _record(_conversation("#W1", "call_z"), 4, 1.0)
    failed = [_record(_conversation(f"#W{n}"), n, 0.0) for n in (5, 6)]
    other = {**_record(_conversation("#W7"), 1, 0.0), "blueprint_id": "bp-2"}
    rows, stats = dpo_pairs([duplicate, first, *failed, second, other])
    assert stats == {"pairs": 2, "emitted": 2}
    assert [r["rejected_attempt"] for r in rows] == [5, 6]
    assert all(r["chosen"] == first["messages"][2:] for r in rows)
    path = tmp_path / "dpo.jsonl"
    assert write_jsonl(rows, path) == 2
    for line, row in zip(path.read_text().splitlines(), rows):
        loaded = json.loads(line)
        assert loaded["prompt"] + loaded["chosen"] == first["messages"]
        assert loaded["prompt"] + loaded["rejected"] == row["prompt"] + row["rejected"]


def test_export_format_names():
    assert EXPORT_FORMATS == ("openai", "sharegpt", "tau2", "dpo", "bfcl")
    assert set(FORMATS) == {"openai", "sharegpt"}
