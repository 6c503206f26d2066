"""`apigen-mt generate` killed (SIGKILL) at several points, or stopped with Ctrl-C, then
resumed: nothing accepted is lost or duplicated, and finished model calls are not paid
twice (only the calls in flight at a kill may be asked again).

The models are the OpenAI-compatible stub in this process; `generate` runs in a child
process, as a user runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from apigen_mt.cli import main
from apigen_mt.store import RunStore
from apigen_mt.testing import OpenAIStubServer

from test_cli_generate import Oracles, _args

pytestmark = pytest.mark.slow

LATENCY = 0.05  # seconds per stub reply: a run takes a few seconds, so kills land mid-run
IN_FLIGHT = 3  # at concurrency 1, at most the committee's 3 judges wait on the stub at once


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "apigen_mt", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_requests(stub: OpenAIStubServer, count: int, process: subprocess.Popen, timeout: float = 120) -> bool:
    """True once the stub has served ``count`` chat requests; False if the child ended first."""
    deadline = time.monotonic() + timeout
    while len(stub.chat_requests) < count:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.01)
    return True


def _result(run_dir):
    store = RunStore(run_dir)
    blueprints = {bp["id"]: bp for bp in store.accepted_blueprints()}
    dataset = [json.loads(line) for line in (run_dir / "dataset.openai.jsonl").read_text().splitlines()]
    return blueprints, dataset, store.counts()


def test_sigkill_at_several_points_then_resume_loses_and_duplicates_nothing(tmp_path):
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=3), latency=LATENCY, max_lifetime=300) as stub:
        baseline_dir = tmp_path / "baseline"
        assert main(_args(stub, baseline_dir, cache=True) + ["--concurrency", "1", "--no-report"]) == 0
        baseline = _result(baseline_dir)
        total = len(stub.chat_requests)
        assert baseline[2]["blueprints_accepted"] == 3 and baseline[2]["trajectories_accepted"] == 3

        run_dir = tmp_path / "run"
        args = _args(stub, run_dir, cache=True) + ["--concurrency", "1", "--no-report"]
        kills = 0
        for share in (0.15, 0.45, 0.8):  # early Phase 1, the committee / late Phase 1, Phase 2
            child = _cli(args) if kills == 0 else _cli(["resume", str(run_dir)])
            if _wait_for_requests(stub, total + int(share * total), child):
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.wait(timeout=60)
        assert kills == 3, "the run finished before every kill point"
        done = subprocess.run([sys.executable, "-m", "apigen_mt", "resume", str(run_dir)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        paid = len(stub.chat_requests) - total

    blueprints, dataset, counts = _result(run_dir)
    assert counts == baseline[2], (list(RunStore(run_dir).db["errors"].rows), done.stdout[-2000:])
    assert blueprints == baseline[0]
    assert sorted(row["id"] for row in dataset) == sorted(row["id"] for row in baseline[1])  # none lost or duplicated
    assert dataset == baseline[1]
    assert total <= paid <= total + kills * IN_FLIGHT, (paid, total)
    # the killed sessions' calls are in the store too (written every 0.1 s while they ran: a kill
    # loses at most that window, at most 6 calls at this latency), never more than were paid
    store = RunStore(run_dir)
    sessions = {row[0].split("/")[0] for row in store.db.execute("SELECT DISTINCT session FROM llm_calls")}
    assert len(sessions) >= 2
    assert paid - kills * 6 <= store.db["llm_calls"].count <= paid


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(n=2), latency=LATENCY, max_lifetime=300) as stub:
        child = _cli(_args(stub, run_dir, cache=True) + ["--concurrency", "1", "--no-report"])
        assert _wait_for_requests(stub, 6, child)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 130, err
        assert f"apigen-mt resume {run_dir}" in err and "Traceback" not in err
        store = RunStore(run_dir)
        assert [e["kind"] for e in store.events()] == ["started", "interrupted"]
        assert store.db["llm_calls"].count > 0  # the calls made before Ctrl-C are accounted for
        assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert RunStore(run_dir).counts()["trajectories_accepted"] == 3


def test_the_store_holds_each_finished_blueprint_while_the_phase_still_runs(tmp_path):
    """A long run can be inspected (and a killed one keeps its results) before its phase ends."""
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(n=2), latency=0.2, max_lifetime=300) as stub:
        child = _cli(_args(stub, run_dir, cache=True) + ["--concurrency", "1", "--no-report"])
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "Phase 1 ended before a blueprint was stored"
            if (run_dir / "store.sqlite").exists():
                store = RunStore(run_dir)
                accepted = store.counts()["blueprints_accepted"]
                phase1_over = any(e["kind"] == "finished" for e in store.events())
                calls = store.db["llm_calls"].count
                store.db.close()
                if accepted:
                    break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert not phase1_over and 1 <= accepted < 3 and calls >= 2  # stored mid-phase, calls with it
        assert RunStore(run_dir).counts()["blueprints_accepted"] == accepted  # and still there after the kill
        assert main(["resume", str(run_dir), "--no-report"]) == 0
    counts = RunStore(run_dir).counts()
    assert counts["blueprints_accepted"] == 3 and counts["trajectories_accepted"] == 3 and counts["errors"] == 0
