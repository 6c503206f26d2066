"""`apigen_mt.report`: numbers, figures and files of a run report, from hand-built stores.

The full store holds one blueprint of each kind (accepted first round; accepted after a
policy failure and feedback; rejected at execution three times; rejected by a split
committee; rejected at dedup after a generation failure), one unfinished request, three
conversations and two sessions of call records, so every number below is known exactly.
"""

from __future__ import annotations

import json

import pytest

from apigen_mt.agents.feedback import summarize_votes
from apigen_mt.api import Phase1Result, Phase2Result
from apigen_mt.report import Report, compute_stats, write_report
from apigen_mt.report.reasons import reason_key
from apigen_mt.report.render import build_blocks, render_markdown
from apigen_mt.store import RunStore, StoreError
from apigen_mt.tools.checks.format import format_errors

PNG = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert('x')</script>"
YES = {"reflection": "Fine.", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1, "suggested_correction": None}


def _judge(**scores):
    return {**YES, **scores}


def _proposal(blueprint_id, instruction="You want the email on your account."):
    return {"id": blueprint_id, "domain": "retail", "instruction": instruction,
            "actions": [{"name": "find_user_id_by_email", "arguments": {"email": "a@b.c"}}], "outputs": ["a@b.c"]}


def _attempt(blueprint_id, round_, stage, reasons=(), judges=None, **extra):
    """One round as ``graphs.verification._attempt`` records it."""
    reviews = []
    for index, review in enumerate(judges or []):
        entry = {"round": round_, "judge": index}
        entry.update({"error": review} if isinstance(review, str) else {"review": review})
        reviews.append(entry)
    votes = None
    if judges:
        votes = summarize_votes([e["review"] for e in reviews if "review" in e])
        votes["abstained"] = len(reviews) - votes["judges"]
    record = {"round": round_, "proposer": "llm", "proposal": None if stage == "generation" else _proposal(blueprint_id),
              "stage": stage, "reasons": list(reasons), "diff": None, "votes": votes, "reviews": reviews}
    if stage != "accepted" and extra.pop("feedback", True):
        record["feedback"] = "The check failed:\n" + "\n".join(f"- {r}" for r in reasons)
        record["feedback_error"] = None
    return {**record, **extra}


POLICY = (f"[authenticate_before_user_data_strict] actions[1] get_user_details reads the data of user 'yusuf_1', who was "
          f"not authenticated before it {SCRIPT}")
ATTEMPTS = {
    "retail-1": [_attempt("retail-1", 1, "accepted", judges=[YES, YES, YES])],
    "retail-2": [
        _attempt("retail-2", 1, "policy", [POLICY]),
        _attempt("retail-2", 2, "accepted", judges=[YES, YES, _judge(creativity=0)]),
    ],
    "retail-3": [
        _attempt("retail-3", 1, "execution", ["actions[0] cancel_pending_order(order_id='#W1', reason='x') failed: Order not found"]),
        _attempt("retail-3", 2, "execution", ["actions[0] cancel_pending_order(order_id='#W9', reason='y') failed: Order not found"]),
        _attempt("retail-3", 3, "execution", ["actions[1] get_order_detail(order_id='#W9') failed: Tool 'get_order_detail' not found."],
                 feedback=False),
    ],
    "retail-4": [
        _attempt("retail-4", 1, "committee", ["the committee voted correctness down (2 of 3)"],
                 judges=[_judge(correctness=0), _judge(correctness=0), YES]),
        _attempt("retail-4", 2, "format", ["missing field 'outputs'"]),
        _attempt("retail-4", 3, "committee",
                 ["the committee voted correctness down (2 of 2)", "the committee voted creativity down (2 of 2)"],
                 judges=[_judge(correctness=0, creativity=0), _judge(correctness=0, creativity=0), "validation: bad JSON"],
                 feedback=False),
    ],
    "retail-6": [
        _attempt("retail-6", 1, "generation", ["validation: 1 validation error for BlueprintDraft: actions field required"]),
        _attempt("retail-6", 2, "dedup", ["near-duplicate of retail-1: instruction 93% similar (threshold 90%)"]),
        _attempt("retail-6", 3, "dedup", ["duplicate of retail-2: same action sequence on the same entities"], feedback=False),
    ],
}


def _phase1() -> Phase1Result:
    return Phase1Result(
        blueprints=[_proposal("retail-1"), _proposal("retail-2", f"Change the address {SCRIPT}")],
        rejected=[
            {"id": "retail-3", "rejection": {"stage": "execution", "reasons": ATTEMPTS["retail-3"][-1]["reasons"], "rounds": 3}},
            {"id": "retail-4", "rejection": {"stage": "committee", "reasons": ATTEMPTS["retail-4"][-1]["reasons"], "rounds": 3}},
            {"id": "retail-6", "rejection": {"stage": "dedup", "reasons": ATTEMPTS["retail-6"][-1]["reasons"], "rounds": 3}},
        ],
        attempts=ATTEMPTS,
        errors={"retail-5": f"TimeoutError: the generator did not answer {SCRIPT}"},
        contamination={"retail-1": f"instruction 97% similar to tau2 retail test task 12 {SCRIPT}"},
    )


def _trajectory(blueprint_id, attempt, reward, stop, turns, tool_calls, user_turns):
    return {"blueprint_id": blueprint_id, "domain": "retail", "attempt": attempt,
            "messages": [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"}],
            "tools": [], "reward": reward, "verifier_reward": reward, "state_match": bool(reward),
            "reasons": [] if reward else ["conversation ended by max_turns, not by the user"], "stop": stop,
            "turns": turns, "user_turns": user_turns, "tool_calls": tool_calls, "failed_tool_calls": 0, "calls": [],
            "user_turn_choices": [], **({"duplicate": False} if reward else {})}


def _phase2() -> Phase2Result:
    return Phase2Result(
        trajectories=[_trajectory("retail-1", 1, 1.0, "user_stop", 4, 3, 2), _trajectory("retail-2", 2, 1.0, "user_stop", 6, 5, 3)],
        failed=[_trajectory("retail-2", 1, 0.0, "max_turns", 20, 9, 10)],
    )


def _call(role, phase, prompt, completion, latency=0.5, cache_hit=False):
    return {"role": role, "model": f"m-{role}", "prompt_tokens": prompt, "completion_tokens": completion,
            "latency_s": latency, "cache_hit": cache_hit, "started_at": 1.0,
            "metadata": {"phase": phase, "blueprint_id": "retail-1", "langgraph_node": role}}


SESSION_1 = [
    _call("generator", "phase1", 1000, 200, 1.0), _call("generator", "phase1", 1000, 200, 1.0),
    _call("reviewers", "phase1", 500, 50), _call("reviewers", "phase1", 500, 50),
    _call("reviewers", "phase1", 500, 50, 0.0, cache_hit=True),
    _call("feedback", "phase1", 300, 100),
    _call("user", "phase2", 200, 20), _call("user", "phase2", 200, 20),
    _call("assistant", "phase2", 400, 80), _call("assistant", "phase2", 400, 80),
    _call("assistant", "phase2", 400, 80, 0.0, cache_hit=True),
]
SESSION_2 = [_call("generator", "phase1", 1000, 200, 0.0, cache_hit=True)]  # a resume answered from the cache


def _full_store(run_dir) -> RunStore:
    store = RunStore(run_dir)
    store.save_phase1(_phase1())
    store.save_phase2(_phase2())
    store.save_llm_calls("s1", SESSION_1)
    store.save_llm_calls("s2", SESSION_2)
    store.add_event("s1", "phase_started", phase="phase1")
    store.add_event("s1", "interrupted", phase="phase2")
    return store


# -- the numbers --------------------------------------------------------------------------------


def test_funnel_and_final_counts(tmp_path):
    stats = compute_stats(_full_store(tmp_path))
    p1 = stats["phase1"]
    assert {r["step"]: r["count"] for r in p1["funnel"]} == {
        "rounds": 12, "proposed": 11, "passed format": 10, "passed execution": 7, "passed policy": 6,
        "passed grounding": 6, "passed dedup": 4, "passed committee (accepted)": 2,
    }
    assert (p1["requests"], p1["accepted"], p1["rejected"], p1["unfinished"], p1["flagged_as_test_contamination"]) == (6, 2, 3, 1, 1)
    assert p1["rejected_by_stage"] == {"committee": 1, "dedup": 1, "execution": 1}
    p2 = stats["phase2"]
    assert (p2["blueprints_simulated"], p2["conversations"], p2["verified"], p2["unique_verified"], p2["failed"]) == (2, 3, 2, 2, 1)
    assert p2["failed_by_stop"] == {"max_turns": 1} and p2["success_rate"] == pytest.approx(0.6667)
    counts = RunStore(tmp_path).counts()
    assert p1["accepted"] == counts["blueprints_accepted"] and p2["unique_verified"] == counts["trajectories_accepted"]


def test_acceptance_first_round_vs_with_feedback(tmp_path):
    acceptance = compute_stats(_full_store(tmp_path))["acceptance"]
    assert acceptance["finished_requests"] == 5
    assert acceptance["first_round"] == {"accepted": 1, "rate": 0.2}
    assert acceptance["with_feedback"] == {"accepted": 2, "rate": 0.4}
    assert acceptance["accepted_after_feedback"] == 1
    assert [(r["round"], r["reached"], r["accepted"], r["rate"], r["cumulative_rate"]) for r in acceptance["per_round"]] == [
        (1, 5, 1, 0.2, 0.2), (2, 4, 1, 0.25, 0.4), (3, 3, 0, 0.0, 0.4)]
    assert acceptance["paper"] == {"without_feedback": 0.28, "with_feedback": 0.70}


def test_rejection_reasons_are_counted_by_stage_and_rule(tmp_path):
    rejections = compute_stats(_full_store(tmp_path))["rejections"]
    assert rejections["failed_rounds"] == 10
    assert {(r["stage"], r["rule"]): r["count"] for r in rejections["by_rule"]} == {
        ("execution", "cancel_pending_order: order not found"): 2,
        ("committee", "correctness voted down"): 2,
        ("committee", "creativity voted down"): 1,
        ("dedup", "near-duplicate instruction"): 1,
        ("dedup", "same actions as a kept blueprint"): 1,
        ("execution", "unknown tool"): 1,
        ("format", "missing field outputs"): 1,
        ("generation", "validation"): 1,
        ("policy", "authenticate_before_user_data_strict"): 1,
    }
    assert rejections["by_rule"][0]["count"] == 2  # most frequent first


def test_reason_keys_of_real_reason_strings():
    shop_problem = "actions[1] book_reservation.flights[0].flight_number = 'HAT1' is not obtainable: the instruction ..."
    assert reason_key("grounding", shop_problem) == "book_reservation.flights.flight_number not obtainable"
    assert reason_key("grounding", "outputs[0] = '7' is not obtainable: ...") == "an output not obtainable"
    assert reason_key("format", format_errors({"id": "x"})[0]) == "missing field domain"
    assert reason_key("format", "outputs[3] must be a non-empty string, got ''") == "empty or non-string output"
    assert reason_key("execution", "actions[2] return_delivered_order_items(order_id='#W12', item_ids=['1']) failed: "
                                   "Invalid arguments for return_delivered_order_items: missing payment_method_id") == \
        "return_delivered_order_items: invalid arguments"
    assert reason_key("execution", "actions[0] foo(x=1) failed: KeyError: 'user_9'") == "foo: keyerror"
    assert reason_key("policy", "[one_user_per_conversation] actions[3] concerns user 'a_1'") == "one_user_per_conversation"
    assert reason_key("committee", "only 50% of the metrics passed (threshold 75%)") == "below the pass threshold"
    assert reason_key("committee", "no judge returned a valid review") == "no valid review"
    assert reason_key("recombine", "User 'noa_77' has 3 orders #W123, see ID 4521") == "user has orders see id"
    assert reason_key("policy", "") == "(no reason given)"


def test_committee_agreement(tmp_path):
    committee = compute_stats(_full_store(tmp_path))["committee"]
    assert (committee["rounds"], committee["passed_rounds"], committee["judges"], committee["abstentions"]) == (4, 2, {"3": 4}, 1)
    # retail-4 round 1: two judges fail correctness, one passes -> the only disagreement on the verdict
    assert committee["verdict_agreement"] == {"agreed": 3, "rate": 0.75}
    assert committee["unanimous_on_every_metric"] == {"rounds": 2, "rate": 0.5}
    metrics = committee["metrics"]
    assert {m: row["agreement"] for m, row in metrics.items()} == {
        "correctness": 0.75, "completeness": 1.0, "satisfaction": 1.0, "creativity": 0.75}
    assert metrics["correctness"]["pass_vote_share"] == pytest.approx(7 / 11, abs=1e-4)
    assert committee["pass_vote_share"] == pytest.approx(37 / 44, abs=1e-4)


def test_cost_excludes_cache_hits(tmp_path):
    cost = compute_stats(_full_store(tmp_path))["cost"]
    assert (cost["calls"], cost["cache_hits"], cost["sessions"]) == (12, 3, 2)
    assert (cost["prompt_tokens"], cost["completion_tokens"], cost["total_tokens"]) == (4500, 800, 5300)
    assert cost["cached_tokens"] == 550 + 480 + 1200
    assert cost["latency_s"] == pytest.approx(2.0 + 1.0 + 0.5 + 1.0 + 1.0)
    assert cost["by_role"]["generator"]["total_tokens"] == 2400 and cost["by_role"]["generator"]["cache_hits"] == 1
    assert cost["by_phase"]["phase2"]["total_tokens"] == 1400
    assert cost["per_accepted_trajectory"]["tokens"] == 2650
    assert cost["per_accepted_blueprint"]["tokens"] == 1950


def test_distributions_of_verified_conversations(tmp_path):
    distributions = compute_stats(_full_store(tmp_path))["distributions"]
    assert distributions["count"] == 2
    assert distributions["turns"]["mean"] == 5 and distributions["turns"]["median"] == 5
    assert distributions["tool_calls"]["values"] == [3, 5] and distributions["user_turns"]["mean"] == 2.5


def test_coverage_diversity_and_examples(tmp_path):
    stats = compute_stats(_full_store(tmp_path))
    accepted = RunStore(tmp_path).accepted_blueprints()
    retail = stats["coverage"]["retail"]
    assert retail["domain_loaded"] and len(retail["write_tools"]) == 7  # every retail write tool, used or not
    used = {a["name"] for bp in accepted for a in bp["actions"]}
    assert {w for w, n in retail["write_tools"].items() if n} == used & set(retail["write_tools"])
    assert set(retail["uncovered"]) == set(retail["write_tools"]) - used
    diversity = stats["diversity"]
    assert diversity["blueprints"] == len(accepted) and 1 <= diversity["distinct_action_signatures"] <= len(accepted)
    assert len(diversity["nearest_similarity"]) == len(accepted) and all(0 <= v <= 1 for v in diversity["nearest_similarity"])
    examples = stats["examples"]
    assert [b["id"] for b in examples["blueprints"]] == [bp["id"] for bp in accepted][:3]
    assert examples["verified"]["reward"] == 1.0 and examples["failed"]["reward"] == 0.0 and examples["failed"]["reasons"]
    blocks = render_markdown(build_blocks(stats, {}))
    assert "## 8. Coverage and diversity of the accepted blueprints" in blocks and "## 9. Examples" in blocks
    assert "A failed conversation: blueprint" in blocks and "why: " in blocks


# -- the files ----------------------------------------------------------------------------------


def test_write_report_writes_markdown_html_json_and_pngs(tmp_path):
    _full_store(tmp_path / "run")
    report = write_report(tmp_path / "run")
    assert isinstance(report, Report) and report.markdown_path.parent == tmp_path / "run" / "report"
    names = sorted(p.name for p in report.plots)
    assert names == ["acceptance.png", "committee.png", "cost.png", "coverage.png", "distributions.png", "funnel.png",
                     "rejections.png"]
    for path in report.plots:
        assert path.read_bytes()[:8] == PNG
    html = report.html_path.read_text()
    assert html.count('src="data:image/png;base64,') == len(report.plots)
    assert "<script>" not in html and "&lt;script&gt;" in html  # a reason, the contamination flag, an error
    markdown = report.markdown_path.read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "![funnel](funnel.png)" in markdown and "authenticate_before_user_data_strict" in markdown
    assert json.loads(report.json_path.read_text()) == json.loads(json.dumps(report.stats))
    summary = report.summary_text()
    assert 6 <= len(summary.splitlines()) <= 10
    assert "2 of 6 blueprint requests accepted" in summary
    assert "20% in the first round (no feedback) vs 40% with feedback (paper: 28% vs 70%)" in summary
    assert "2,650 per verified conversation" in summary and str(report.html_path) in summary
    assert "execution/cancel_pending_order: order not found (2)" in summary


def test_an_empty_run_writes_a_report_that_says_there_is_no_data(tmp_path):
    RunStore(tmp_path)
    report = write_report(tmp_path, tmp_path / "out")
    assert report.plots == [] and report.html_path.exists() and (tmp_path / "out" / "report.json").exists()
    markdown = report.markdown_path.read_text()
    assert markdown.count("no data") >= 6 and "(No funnel plot:" in markdown
    assert report.stats["acceptance"]["first_round"]["rate"] is None and report.stats["cost"]["per_accepted_trajectory"] is None
    assert "phase 1: no blueprint requests" in report.summary_text()
    json.dumps(report.stats, allow_nan=False)


def test_a_phase1_only_run(tmp_path):
    store = RunStore(tmp_path)
    store.save_phase1(_phase1())
    store.save_llm_calls("s1", [c for c in SESSION_1 if c["metadata"]["phase"] == "phase1"])
    report = write_report(tmp_path)
    names = {p.name for p in report.plots}
    assert "distributions.png" not in names and {"funnel.png", "acceptance.png", "cost.png"} <= names
    assert report.stats["phase2"]["conversations"] == 0 and report.stats["cost"]["per_accepted_trajectory"] is None
    assert report.stats["cost"]["per_accepted_blueprint"]["tokens"] == 1950
    assert "Phase 2: no conversations in this run" in report.markdown_path.read_text()
    assert "1,950 per accepted blueprint" in report.summary_text()


def test_a_later_report_removes_a_figure_that_lost_its_data(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "distributions.png").write_bytes(PNG)
    RunStore(tmp_path / "run")
    write_report(tmp_path / "run", out)
    assert not (out / "distributions.png").exists()


def test_a_missing_or_corrupt_store_raises_store_error(tmp_path):
    with pytest.raises(StoreError, match="run `apigen-mt generate` first"):
        write_report(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "store.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError):
        write_report(tmp_path / "bad")


# -- a real run ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_a_run_made_by_the_cli(tmp_path):
    from apigen_mt.cli import main
    from apigen_mt.testing import OpenAIStubServer

    from phase1_oracle import PLAN, YES as AGREE
    from test_cli_generate import Oracles, _args

    oracle = Oracles()
    script = {"gen": [oracle.generator] * 20, "rev": [AGREE] * 60, "fee": [PLAN] * 20,
              "use": [oracle.user] * 40, "ass": [oracle.assistant] * 80}
    run_dir = tmp_path / "run"
    with OpenAIStubServer(script, max_lifetime=120) as stub:
        assert main(_args(stub, run_dir)) == 0
    report = write_report(run_dir)
    counts = RunStore(run_dir).counts()
    stats = report.stats
    assert stats["phase1"]["accepted"] == counts["blueprints_accepted"] == 3
    assert stats["phase1"]["rejected"] == counts["blueprints_rejected"]
    assert stats["phase1"]["unfinished"] + stats["phase2"]["unfinished"] == counts["errors"]
    assert stats["phase2"]["unique_verified"] == counts["trajectories_accepted"]
    assert stats["phase2"]["failed"] == counts["trajectories_failed"]
    assert stats["phase1"]["flagged_as_test_contamination"] == counts["flagged_as_test_contamination"]
    assert stats["phase1"]["funnel"][-1]["count"] == counts["blueprints_accepted"]
    assert stats["cost"]["calls"] == RunStore(run_dir).db["llm_calls"].count
    assert stats["committee"]["rounds"] >= 3 and stats["committee"]["verdict_agreement"]["rate"] == 1.0
    assert report.html_path.exists() and all(p.read_bytes()[:8] == PNG for p in report.plots)
