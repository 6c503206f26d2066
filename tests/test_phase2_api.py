"""The programmatic Phase-2 API: tau2 train tasks with oracles, and SIGKILL + resume."""

from __future__ import annotations

import json

import pytest

from apigen_mt.api import run_phase2
from apigen_mt.domains.tau2bench.tasks import tau2_blueprints

from kill_and_resume import finish, kill_when_logged, start_child
from phase2_oracle import oracle_phase2_models
from test_phase2_graph import BP


REJECTED_GOLD = {  # train tasks whose gold actions fail our own checks, so no conversation of them passes
    # the known policy exceptions (domains/airline/rules.py); 7 runs out of tool steps first, as its
    # oracle looks up every flight to explain a refund total
    "airline": {"tau2-airline-7": None, "tau2-airline-9": "audit policy", "tau2-airline-33": "audit policy"},
    # a gold call to product 6086499569, which no tool returns and no user says (it fails in tau2 too)
    "retail": {"tau2-retail-2": "audit grounding", "tau2-retail-3": "audit grounding", "tau2-retail-4": "audit grounding"},
}


@pytest.mark.integration
@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_every_tau2_train_task_with_oracle_user_and_assistant_is_accepted_but_those_failing_our_checks(domain):
    """The oracle looks up what it needs, asks before each guarded write and is told yes: every
    conversation passes the verifier and the audit, but those of gold tasks that break the policy
    or call what nobody gave."""
    blueprints = [bp.to_json() for bp in tau2_blueprints(domain, "train")]
    assert len(blueprints) > 20
    result = run_phase2(blueprints, chat_models=oracle_phase2_models, settings={"best_of_n": 1, "max_attempts": 1},
                        concurrency=8)
    assert result.errors == {}
    accepted = {t["blueprint_id"] for t in result.trajectories}
    assert {bp["id"] for bp in blueprints} - accepted == set(REJECTED_GOLD[domain])
    for failed in result.failed:
        expected = REJECTED_GOLD[domain][failed["blueprint_id"]]
        assert expected is None or failed["reasons"][0].startswith(expected), failed["reasons"]
    actions = {bp["id"]: len(bp["actions"]) for bp in blueprints}
    assert all(t["tool_calls"] >= actions[t["blueprint_id"]] and t["audit"]["passed"] for t in result.trajectories)


def test_run_phase2_rejects_input_that_is_not_a_blueprint():
    with pytest.raises(ValueError, match="lacks"):
        run_phase2([{"id": "x", "domain": "retail"}], chat_models=oracle_phase2_models)
    with pytest.raises(ValueError, match="unique"):
        run_phase2([BP, BP], chat_models=oracle_phase2_models)


def test_failed_conversations_are_kept_with_their_reasons():
    result = run_phase2([BP], chat_models=lambda bp: oracle_phase2_models(bp, say_outputs=False), settings={"best_of_n": 1, "max_attempts": 2})
    assert result.trajectories == [] and len(result.failed) == 2
    assert all("output not said" in t["reasons"][0] for t in result.failed)
    assert result.summary()["success_rate"] == 0.0


def test_sigkill_mid_conversation_then_resume_continues_at_the_right_turn(tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    child = start_child("phase2_resume_child.py", run_dir, log, hang=True)
    before = kill_when_logged(child, log, {"assistant 1"})
    assert before == ["user 2", "assistant 0", "assistant 1"]  # user: its prompt + the greeting

    result = json.loads(finish(start_child("phase2_resume_child.py", run_dir, log, hang=False)))
    assert result["accepted"] == 1 and result["errors"] == {}
    after = log.read_text().splitlines()[len(before):]
    # the interrupted call is made again; nothing finished before the kill is repeated
    assert after[0] == "assistant 1" and "user 2" not in after and "assistant 0" not in after
    assert result["trajectory"]["tool_calls"] == 3 and result["trajectory"]["reward"] == 1.0
