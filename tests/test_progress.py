"""The live progress display counts the funnel from node updates and shows it."""

from __future__ import annotations

import io
from types import SimpleNamespace

from apigen_mt.progress import PhaseProgress
from apigen_mt.runner import ThreadOutcome


def _check(stage, passed=True):
    return {"check": {"stage": stage, "passed": passed}}


def test_phase1_funnel_counts_passed_checks_feedback_and_outcomes():
    stream = io.StringIO()
    progress = PhaseProgress(1, 3, stream=stream, live=False, interval=float("inf"))
    with progress:
        progress.thread_started("phase1:a", resumed=False)
        for node, update in [("propose", {}), ("format_check", _check("format")), ("execution_check", _check("execution", False)),
                             ("feedback", {}), ("propose", {}), ("format_check", _check("format")),
                             ("execution_check", _check("execution")), ("policy_check", _check("policy")),
                             ("grounding_check", _check("grounding")), ("dedup_check", _check("dedup")), ("review", {"reviews": [{}]}), ("aggregate", _check("committee"))]:
            progress.node_finished("phase1:a", node, update)
        progress.thread_finished(ThreadOutcome("phase1:a", {"status": "accepted"}))
        progress.thread_finished(ThreadOutcome("phase1:b", {"status": "rejected"}, reused=True))
        progress.thread_finished(ThreadOutcome("phase1:c", None, "budget: spent"))
        progress.llm_call(SimpleNamespace(cache_hit=False, total_tokens=120, error=None))
        progress.llm_call(SimpleNamespace(cache_hit=True, total_tokens=50, error=None))
        progress.llm_call(SimpleNamespace(cache_hit=False, total_tokens=0, error="timeout"))
    line = stream.getvalue().strip()
    assert line.startswith("phase 1 [3/3 done] | accepted 1, rejected 1, unfinished 1, reused 1")
    assert "proposed 2 > format 2 > execution 1 > policy 1 > grounding 1 > dedup 1 > committee 1, feedback 1" in line
    assert "llm 3 calls (1 cached, 1 failed), 120 tokens" in line


def test_phase2_funnel_and_the_live_panel():
    stream = io.StringIO()
    progress = PhaseProgress(2, 1, stream=stream, live=True)
    with progress:
        for node in ("start_attempt", "user_turn", "assistant_turn", "tools", "assistant_turn"):
            progress.node_finished("phase2:a", node, {})
        progress.node_finished("phase2:a", "verify", {"trajectories": [{"reward": 0.0}]})
        progress.node_finished("phase2:a", "verify", {"trajectories": [{"reward": 1.0}]})
        progress.thread_finished(ThreadOutcome("phase2:a", {"status": "accepted"}))
        assert "conversations 1 > user turns 1 > assistant turns 2 > tool rounds 1 > verified 1 > failed 1" in progress.line()
    # the live panel is transient; the last plain line stays
    assert stream.getvalue().splitlines()[-1].startswith("phase 2 [1/1 done] | accepted 1, rejected 0, unfinished 0")
