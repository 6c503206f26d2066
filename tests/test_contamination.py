"""Contamination guard: near-copies of tau2 test tasks are flagged and kept out of exports."""

from __future__ import annotations

import json

from apigen_mt.api import Phase1Result, Phase2Result
from apigen_mt.cli import main
from apigen_mt.store import RunStore
from apigen_mt.tools.contamination import ContaminationGuard, benchmark_test_blueprints, guard_for


def test_test_tasks_and_their_rewordings_are_flagged_others_not():
    guard = guard_for("retail")
    test = benchmark_test_blueprints("retail")
    assert len(test) == 40 and all(t["id"].startswith("tau2-retail-") for t in test)
    task = test[0]
    assert "same action sequence" in guard.check({**task, "id": "g1", "instruction": "Completely new words."})
    reworded = {**task, "id": "g2", "actions": [], "instruction": task["instruction"].replace("You", "you", 1)}
    assert "near-duplicate" in guard.check(reworded)
    other = {"id": "g3", "domain": "retail", "instruction": "You are Mia Moore and want the email on your account.",
             "actions": [{"name": "get_user_details", "arguments": {"user_id": "mia_moore_8366"}}], "outputs": []}
    assert guard.check(other) is None
    assert guard_for("library").flags([task]) == {}  # no test split, nothing to compare with
    assert ContaminationGuard([]).check(task) is None


def _trajectory(blueprint_id):
    return {"blueprint_id": blueprint_id, "attempt": 1, "reward": 1.0, "stop": "user_stop", "turns": 2, "tool_calls": 0,
            "user_turns": 1, "tools": [], "messages": [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"},
                                                       {"role": "assistant", "content": "hello"}]}


def test_flagged_blueprints_are_stored_and_left_out_of_exports(tmp_path, capsys):
    blueprints = [{"id": b, "domain": "retail", "instruction": "x", "actions": [], "outputs": []} for b in ("a", "b")]
    p1 = Phase1Result(blueprints=blueprints, attempts={"a": [], "b": []}, contamination={"b": "test-set contamination: ..."})
    store = RunStore(tmp_path)
    store.save_phase1(p1)
    store.save_phase2(Phase2Result(trajectories=[_trajectory("a"), _trajectory("b")]))
    assert [t["blueprint_id"] for t in store.trajectories()] == ["a"]
    assert [t["blueprint_id"] for t in store.trajectories(include_contaminated=True)] == ["a", "b"]
    assert store.counts()["flagged_as_test_contamination"] == 1

    out = tmp_path / "o.jsonl"
    assert main(["export", str(tmp_path), "--format", "openai", "--out", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a"]
    assert "--include-contaminated keeps them" in capsys.readouterr().out
    assert main(["export", str(tmp_path), "--format", "openai", "--out", str(out), "--include-contaminated"]) == 0
    assert len(out.read_text().splitlines()) == 2
