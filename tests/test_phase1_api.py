"""The programmatic Phase-1 API and the runner: concurrency, dedup, reuse, SIGKILL + resume."""

from __future__ import annotations

import json

import pytest

from apigen_mt.api import run_phase1
from apigen_mt.testing import ScriptedChatModel

from kill_and_resume import finish, kill_when_logged, start_child
from phase1_oracle import YES, oracle_models, retail_blueprint_for


def calls(models):
    return len(models["generator"].calls) + sum(len(m.calls) for m in models["reviewers"]) + len(models["feedback"].calls)


def test_run_phase1_returns_validated_blueprints_and_every_attempt(tmp_path):
    models = oracle_models()
    result = run_phase1("retail", 6, chat_models=models, run_dir=tmp_path / "run", concurrency=3, seed=10)
    assert result.errors == {}
    ids = sorted(bp["id"] for bp in result.blueprints) + sorted(r["id"] for r in result.rejected)
    assert sorted(ids) == sorted(f"retail-{s}" for s in range(10, 16))
    assert len(result.blueprints) >= 5  # two seeds may draw the same user: a duplicate is rejected
    for bp in result.blueprints:
        assert bp["actions"] == retail_blueprint_for(bp["user_id"])["actions"]
        assert result.attempts[bp["id"]][-1]["stage"] == "accepted"
    summary = result.summary()
    assert summary["accepted"] == len(result.blueprints) and summary["errors"] == 0
    # the same call again reuses the finished threads: no model call at all
    before = calls(models)
    again = run_phase1("retail", 6, chat_models=models, run_dir=tmp_path / "run", concurrency=3, seed=10)
    assert calls(models) == before
    assert sorted(b["id"] for b in again.blueprints) == sorted(b["id"] for b in result.blueprints)


def test_duplicates_across_threads_are_kept_once():
    same = retail_blueprint_for("mia_moore_8366")
    models = {
        "generator": ScriptedChatModel([same] * 30),
        "reviewers": [ScriptedChatModel([YES] * 30)],
        "feedback": ScriptedChatModel([{"summary": "dup", "agreed_issues": [], "disagreements": [], "plan": []}] * 30),
    }
    result = run_phase1("retail", 4, chat_models=models, settings={"max_rounds": 2}, concurrency=4)
    assert len(result.blueprints) == 1 and len(result.rejected) == 3
    assert all(r["rejection"]["stage"] == "dedup" for r in result.rejected)


def test_an_error_in_one_thread_does_not_lose_the_others():
    models = oracle_models()
    models["generator"] = ScriptedChatModel([RuntimeError("endpoint exploded")] + [models["generator"].script[0]] * 10)
    result = run_phase1("retail", 3, chat_models=models, concurrency=1, seed=20)
    assert len(result.errors) == 1 and "endpoint exploded" in next(iter(result.errors.values()))
    assert len(result.blueprints) == 2


def test_a_bad_domain_fails_before_any_work():
    with pytest.raises(Exception, match="no_such_domain"):
        run_phase1("no_such_domain", 2, chat_models=oracle_models())


def test_sigkill_while_reviewers_run_then_resume_reruns_only_the_unfinished_judge(tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    child = start_child("phase1_resume_child.py", run_dir, log, hang=True)
    first = kill_when_logged(child, log, {"end judge0", "end judge1", "start judge2"})
    assert first.count("start generator") == 1 and "end judge2" not in first

    result = json.loads(finish(start_child("phase1_resume_child.py", run_dir, log, hang=False)))
    assert result["ok"] and result["resumed"] and result["status"] == "accepted"
    lines = log.read_text().splitlines()[len(first):]
    # only the unfinished judge ran again: no new generator or finished-judge calls
    assert lines == ["start judge2", "end judge2"]
    expected = run_phase1("retail", 1, seed=7, id_prefix="bp", chat_models=oracle_models()).blueprints[0]
    assert result["blueprint"] == {**expected, "id": "bp-7"}
