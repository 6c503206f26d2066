"""Cluster mode on a real Postgres: `generate --database-url` with local and remote workers.

The models are the OpenAI-compatible stub in this process (reactive oracles, as in
test_cli_generate); the workers are real `apigen-mt worker` processes. Every test gets a
fresh database (see postgres_fixture.py). An in-process run of the same seeds is the
baseline each cluster run must equal: the same accepted blueprints and conversations, none
lost or duplicated, and no more model requests than the baseline's plus those in flight at
a kill. Run one thread at a time, the two are equal item for item; with threads running
together (a kill mid-run needs them) coverage-steered sampling depends on which thread
picks first, in one process as on a cluster, so those runs equal the baseline in what does
not depend on the order: the items, their outcomes, and the requests each one costs.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from apigen_mt.cli import main
from apigen_mt.store import RunStore
from apigen_mt.testing import OpenAIStubServer

from test_cli_generate import ROLES, Oracles, _args

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LATENCY = 0.05
JUDGES = 3  # the committee's judges wait on the stub at once: a thread has at most 3 requests in flight


def _model_flags(stub: OpenAIStubServer) -> list[str]:
    flags: list[str] = []
    for role in ROLES:
        flags += ["--model", f"{role}={role[:3]}", "--base-url", f"{role}={stub.base_url}"]
    return flags


def _worker(url: str, stub: OpenAIStubServer, name: str, concurrency: int = 2, *extra: str) -> subprocess.Popen:
    """A remote worker, as a user starts one on another machine (its own flags, no coordinator)."""
    return subprocess.Popen(
        [sys.executable, "-m", "apigen_mt", "worker", "--database-url", url, "--concurrency", str(concurrency),
         "--name", name, *_model_flags(stub), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(*workers: subprocess.Popen) -> list[str]:
    """SIGTERM each worker; their stderr (a worker exits 0 on SIGTERM)."""
    logs = []
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
        logs.append(err)
    return logs


def _result(run_dir):
    store = RunStore(run_dir)
    blueprints = {bp["id"]: {k: bp[k] for k in ("instruction", "actions", "outputs")} for bp in store.accepted_blueprints()}
    dataset = [json.loads(line) for line in (run_dir / "dataset.openai.jsonl").read_text().splitlines()]
    return blueprints, sorted(dataset, key=lambda row: row["id"]), store.counts()


def _attempts(url: str) -> list[tuple[str, str, float, float | None]]:
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT thread_id, worker, extract(epoch FROM started), extract(epoch FROM ended) FROM apigen_attempts"
        ).fetchall()


def _baseline(stub: OpenAIStubServer, tmp_path, blueprints: int = 3, *extra: str):
    """The in-process run of the same seeds: its result and the model requests it paid."""
    run_dir = tmp_path / "baseline"
    before = len(stub.chat_requests)
    assert main(_args(stub, run_dir, cache=True) + ["--blueprints", str(blueprints), "--no-report", *extra]) == 0
    return _result(run_dir), len(stub.chat_requests) - before


def _last_funnels(err: str) -> list[str]:
    """The funnel of each phase's last progress line."""
    return [re.findall(rf"\| ({first} [^|]*) \|", err)[-1] for first in ("proposed", "conversations")]


def _assert_as_baseline(run_dir, baseline) -> None:
    """Every baseline item accepted once, each conversation its own blueprint's: none lost or
    duplicated (what coverage steering leaves to the order of picks aside)."""
    blueprints, dataset, counts = _result(run_dir)
    assert counts == baseline[2], (list(RunStore(run_dir).db["errors"].rows))
    assert sorted(blueprints) == sorted(baseline[0])
    ids = [row["id"] for row in dataset]
    assert ids == [row["id"] for row in baseline[1]] and len(ids) == len(set(ids))
    for row in dataset:
        blueprint = blueprints[row["id"]]
        said = " ".join(m.get("content") or "" for m in row["messages"] if m["role"] == "user")
        assert blueprint["instruction"] in said and blueprint["outputs"][0] in row["messages"][-1]["content"]


def test_a_cluster_run_equals_the_in_process_run_and_resumes_without_a_request(tmp_path, postgres_databases, capsys):
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=2), max_lifetime=300) as stub:
        baseline, paid = _baseline(stub, tmp_path, 3, "--concurrency", "1")
        baseline_funnels = _last_funnels(capsys.readouterr().err)
        run_dir = tmp_path / "cluster"
        args = _args(stub, run_dir, cache=True) + ["--concurrency", "1", "--database-url", url, "--workers", "1"]
        before = len(stub.chat_requests)
        assert main(args) == 0
        out, err = capsys.readouterr()
        # the progress display counts the workers' nodes, relayed, as it counts its own
        assert _last_funnels(err) == baseline_funnels and baseline_funnels[0].startswith("proposed 3 > format 3")
        worker_log = (run_dir / "workers" / "worker-0.log").read_text()
        assert len(stub.chat_requests) - before == paid
        assert main(["resume", str(run_dir)]) == 0  # everything finished: no request, the same data
        assert len(stub.chat_requests) - before == paid
        assert stub.errors == []
    blueprints, dataset, counts = _result(run_dir)
    assert blueprints == baseline[0]
    assert counts == baseline[2] and counts["trajectories_accepted"] == 3
    assert dataset == baseline[1]
    assert "phase 1: 3 blueprints kept" in out and "phase 2: 3 verified conversations" in out
    # the workers' calls, relayed into the run's store, are the in-process run's
    calls = {RunStore(d).db["llm_calls"].count for d in (run_dir, tmp_path / "baseline")}
    assert len(calls) == 1 and calls.pop() >= paid
    assert (run_dir / "report" / "report.md").exists() and (run_dir / "workers" / "worker-0.log").exists()
    assert not (run_dir / "workers" / "worker-1.log").exists()
    assert main(["export", str(run_dir), "--format", "sharegpt", "--out", str(tmp_path / "out.json")]) == 0
    # the run directory records the database without secrets, and every thread ran once
    assert url in (run_dir / "config.json").read_text()
    threads = [row[0] for row in _attempts(url)]
    assert len(threads) == len(set(threads)) == 6
    # one worker, started once for the run, ran both phases
    assert worker_log.count("taking jobs from") == 1, worker_log


def test_workers_without_a_database_url_use_an_embedded_postgres_in_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("APIGEN_MT_DATABASE_URL", raising=False)
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=2), max_lifetime=300) as stub:
        baseline, paid = _baseline(stub, tmp_path)
        run_dir = tmp_path / "cluster"
        before = len(stub.chat_requests)
        assert main(_args(stub, run_dir, cache=True) + ["--workers", "2", "--no-report"]) == 0
        assert len(stub.chat_requests) - before == paid
        assert main(["resume", str(run_dir), "--no-report"]) == 0  # starts it again, on the same data
        assert len(stub.chat_requests) - before == paid
    _assert_as_baseline(run_dir, baseline)
    assert (run_dir / "postgres" / "PG_VERSION").exists() and "--database-url" not in (run_dir / "config.json").read_text()


def test_two_workers_running_threads_together_give_the_baseline_s_items(tmp_path, postgres_databases):
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=2), max_lifetime=300) as stub:
        baseline, paid = _baseline(stub, tmp_path)
        run_dir = tmp_path / "cluster"
        before = len(stub.chat_requests)
        assert main(_args(stub, run_dir, cache=True) + ["--database-url", url, "--workers", "2", "--no-report"]) == 0
        assert len(stub.chat_requests) - before == paid
    _assert_as_baseline(run_dir, baseline)
    assert {row[1] for row in _attempts(url)} == {f"local-{i}-{os.getpid()}" for i in (0, 1)}  # both took jobs


def test_a_sigkilled_worker_s_threads_are_retried_on_another_and_nothing_is_lost(tmp_path, postgres_databases,
                                                                                 monkeypatch):
    from apigen_mt.cluster import coordinator

    monkeypatch.setattr(coordinator, "STALLED_AFTER_S", 4.0)
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=5), latency=LATENCY, max_lifetime=600) as stub:
        baseline, paid = _baseline(stub, tmp_path, blueprints=6)
        victim, survivor = _worker(url, stub, "victim"), _worker(url, stub, "survivor")  # started before the run
        start = len(stub.chat_requests)
        killed: list[float] = []

        def kill_mid_run() -> None:
            deadline = time.monotonic() + 240
            while len(stub.chat_requests) < start + paid // 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            victim.send_signal(signal.SIGKILL)
            killed.append(time.time())

        killer = threading.Thread(target=kill_mid_run)
        killer.start()
        run_dir = tmp_path / "cluster"
        status = main(_args(stub, run_dir, cache=True) + ["--blueprints", "6", "--database-url", url, "--workers", "0",
                                                          "--no-report"])
        killer.join()
        spent = len(stub.chat_requests) - start
        logs = _stop(survivor)
    assert status == 0, logs
    assert victim.wait() == -signal.SIGKILL and killed
    _assert_as_baseline(run_dir, baseline)
    assert paid <= spent <= paid + 2 * JUDGES, (spent, paid)  # the victim ran 2 threads
    attempts = _attempts(url)
    retried = {thread for thread, worker, _, ended in attempts if worker == "victim" and ended is None}
    assert retried, "the kill landed after the victim's last thread"
    for thread in retried:  # finished by the survivor, started only after the kill (never two at once)
        later = [(worker, started) for t, worker, started, ended in attempts if t == thread and ended is not None]
        assert len(later) == 1 and later[0][0] == "survivor" and later[0][1] > killed[0] - 0.5


def test_a_sigkilled_local_worker_is_replaced_and_its_threads_queued_again_at_once(tmp_path, postgres_databases,
                                                                                  monkeypatch):
    """A local worker's death is seen by its coordinator: no wait for a stale heartbeat (made
    an hour here, so the run could only finish by the immediate retry)."""
    from apigen_mt.cluster import coordinator

    monkeypatch.setattr(coordinator, "STALLED_AFTER_S", 3600.0)
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=5), latency=LATENCY, max_lifetime=600) as stub:
        baseline, paid = _baseline(stub, tmp_path, blueprints=6)
        start = len(stub.chat_requests)
        victim = f"local-0-{os.getpid()}"
        killed: list[int] = []

        def kill_mid_run() -> None:
            while len(stub.chat_requests) < start + paid // 3:
                time.sleep(0.01)
            found = subprocess.run(["pgrep", "-f", "--", f"--name {victim} "], capture_output=True, text=True).stdout.split()
            for pid in found:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))

        threading.Thread(target=kill_mid_run, daemon=True).start()
        run_dir = tmp_path / "cluster"
        status: list[int] = []
        runner = threading.Thread(target=lambda: status.append(main(
            _args(stub, run_dir, cache=True) + ["--blueprints", "6", "--database-url", url, "--workers", "2",
                                                "--no-report", "--progress", "off"])), daemon=True)
        runner.start()
        runner.join(timeout=300)
        assert status == [0], "the run did not finish: the dead worker's threads were not queued again"
        spent = len(stub.chat_requests) - start
    assert len(killed) == 1
    _assert_as_baseline(run_dir, baseline)
    assert paid <= spent <= paid + 2 * JUDGES, (spent, paid)
    attempts = _attempts(url)
    retried = {thread for thread, worker, _, ended in attempts if worker == victim and ended is None}
    assert retried, "the kill landed after the victim's last thread"
    assert all(any(t == thread and ended is not None for t, _, _, ended in attempts) for thread in retried)
    assert (run_dir / "workers" / "worker-2.log").exists()  # the replacement


def test_a_sigkilled_coordinator_is_resumed_and_nothing_is_lost(tmp_path, postgres_databases):
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=4), latency=LATENCY, max_lifetime=600) as stub:
        baseline, paid = _baseline(stub, tmp_path)
        run_dir = tmp_path / "cluster"
        start = len(stub.chat_requests)
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "apigen_mt",
             *_args(stub, run_dir, cache=True), "--database-url", url, "--workers", "1", "--no-report"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 240
        while len(stub.chat_requests) < start + paid // 2:
            assert coordinator.poll() is None and time.monotonic() < deadline, coordinator.communicate()
            time.sleep(0.01)
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        assert main(["resume", str(run_dir), "--no-report"]) == 0  # its local workers stopped with it
        spent = len(stub.chat_requests) - start
    _assert_as_baseline(run_dir, baseline)
    assert paid <= spent <= paid + JUDGES, (spent, paid)


VOCABULARY = ("lamp desk order cancel return exchange refund address phone email flight seat baggage cabin "
              "upgrade delay voucher loan book renew member hold fine branch card shoes jacket watch tablet "
              "camera kettle blender charger speaker router monitor printer backpack wallet sofa mirror").split()


def test_near_duplicates_claimed_by_two_workers_at_once_are_accepted_once(postgres_databases):
    from apigen_mt.cluster.database import prepare_database, run_identity
    from apigen_mt.cluster.shared import SharedDedupIndex

    url = postgres_databases.fresh()
    prepare_database(url, run_identity(None, {}))
    indexes = [SharedDedupIndex(url), SharedDedupIndex(url)]
    outcomes: list[list] = [[], []]
    for round_ in range(20):
        words = random.Random(round_).sample(VOCABULARY, 12)  # rounds share few words: only each pair is near
        instruction = "Please " + " ".join(words) + "."
        pair = [
            {"domain": "retail", "instruction": instruction, "actions": [{"name": "a", "arguments": {"n": round_}}]},
            {"domain": "retail", "instruction": instruction.replace("Please", "Kindly"),
             "actions": [{"name": "b", "arguments": {"n": round_}}]},
        ]
        barrier = threading.Barrier(2)

        def claim(side: int, round_: int = round_, pair: list = pair) -> None:
            barrier.wait()
            outcomes[side].append(indexes[side].claim(f"bp-{round_}-{side}", pair[side]))

        threads = [threading.Thread(target=claim, args=(side,)) for side in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for index in indexes:
        index.close()
    for round_ in range(20):
        results = [outcomes[0][round_], outcomes[1][round_]]
        assert sum(result is None for result in results) == 1, results  # one accepted, the other its near-duplicate
        match = next(result for result in results if result is not None)
        assert match.kind == "near_instruction"
    # the winner's actions under another wording are refused by a third worker, which claimed nothing yet
    side = 0 if outcomes[0][-1] is None else 1
    copy = {**pair[side], "instruction": "Something else entirely: a blue lamp, returned today."}
    index = SharedDedupIndex(url)
    match = index.claim("bp-copy", copy)
    assert match is not None and match.kind == "same_actions" and match.of == f"bp-19-{side}"
    assert len(index) == 20
    index.close()


def test_the_budget_is_reserved_atomically_across_connections(postgres_databases):
    from apigen_mt.cluster.database import prepare_database, run_identity
    from apigen_mt.cluster.shared import SharedBudget
    from apigen_mt.llm.budget import BudgetExceeded

    url = postgres_databases.fresh()
    prepare_database(url, run_identity(None, {}), budget={"max_calls": 50})
    granted: list[int] = []
    refused: list[int] = []

    def spend() -> None:
        budget = SharedBudget(url)
        for _ in range(20):
            try:
                budget.settle(budget.reserve(10), 7)
                granted.append(1)
            except BudgetExceeded:
                refused.append(1)
        budget.close()

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    budget = SharedBudget(url)
    assert len(granted) == 50 and len(refused) == 30
    assert budget.snapshot() == {"max_calls": 50, "max_tokens": None, "calls": 50, "tokens": 350,
                                 "in_flight_tokens": 0, "exhausted": True}
    budget.close()


def test_statements_written_behind_keep_their_order_and_a_failing_one_loses_only_itself(postgres_databases):
    import psycopg

    from apigen_mt.cluster.database import WriteBehind

    url = postgres_databases.fresh()
    writes = WriteBehind(url)
    writes.execute("CREATE TABLE behind (seq serial PRIMARY KEY, v int NOT NULL)")
    for value in range(50):
        writes.execute("INSERT INTO behind (v) VALUES (%s)", (value,))
    writes.execute("INSERT INTO behind (v) VALUES (NULL)")  # refused by the table
    writes.execute("INSERT INTO behind (v) VALUES (%s)", (50,))
    writes.flush()
    with psycopg.connect(url) as connection:
        assert [row[0] for row in connection.execute("SELECT v FROM behind ORDER BY seq")] == list(range(51))
    writes.execute("INSERT INTO behind (v) VALUES (%s)", (51,))
    writes.close()  # flushes first
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT max(v), count(*) FROM behind").fetchone() == (51, 52)


def test_coverage_picks_spread_over_the_writes_across_connections(postgres_databases):
    from apigen_mt.cluster.database import prepare_database, run_identity
    from apigen_mt.cluster.shared import SharedCoverage

    url = postgres_databases.fresh()
    prepare_database(url, run_identity(None, {}))
    writes = [f"w{i}" for i in range(6)]
    picked: list[str] = []

    def pick(seed: int) -> None:
        coverage = SharedCoverage(url)
        rng = random.Random(seed)
        for _ in range(6):
            picked.append(coverage.pick(rng, writes, claim=True))  # picked and counted under one row lock
        coverage.close()

    threads = [threading.Thread(target=pick, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = {write: picked.count(write) for write in writes}
    assert counts == dict.fromkeys(writes, 3), counts  # three rounds over the six writes, whoever picked


# ---------------------------------------------------------------------------- bad input


def test_an_unreachable_or_wrong_database_url_is_named_and_nothing_is_written(tmp_path, postgres_databases, capsys):
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        for url, cause in (("postgresql://127.0.0.1:1/nowhere", "cannot connect to the database"),
                           (postgres_databases.fresh() + "_missing", "does not exist")):
            run_dir = tmp_path / url.rsplit("/", 1)[-1]
            assert main(_args(stub, run_dir) + ["--database-url", url, "--workers", "1"]) == 2
            err = capsys.readouterr().err
            assert cause in err and "--database-url" in err and "Traceback" not in err, err
        assert stub.chat_requests == []


def test_a_database_of_another_run_is_refused(tmp_path, postgres_databases, capsys):
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=2), max_lifetime=300) as stub:
        first = tmp_path / "first"
        assert main(_args(stub, first) + ["--blueprints", "1", "--database-url", url, "--workers", "1", "--no-report"]) == 0
        capsys.readouterr()
        requests = len(stub.chat_requests)
        assert main(_args(stub, tmp_path / "second") + ["--database-url", url, "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert requests == len(stub.chat_requests)
    assert "holds another run" in err and str(first.resolve()) in err and "fresh database" in err, err
    assert RunStore(first).counts()["blueprints_accepted"] == 1  # the first run is untouched


def test_a_worker_with_other_models_refuses_the_run_and_the_coordinator_names_it(tmp_path, postgres_databases, capsys,
                                                                                  monkeypatch):
    url = postgres_databases.fresh()
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(), max_lifetime=300) as stub:
        stranger = _worker(url, stub, "stranger", 2, "--model", "generator=another-model")
        assert main(_args(stub, tmp_path / "run") + ["--database-url", url, "--workers", "0", "--no-report"]) == 2
        err = capsys.readouterr().err
        out, worker_err = stranger.communicate(timeout=60)
    assert stranger.returncode == 2, worker_err
    assert "differs from the run's" in worker_err and "another-model" in worker_err
    assert "worker stranger refused the run" in err and "another-model" in err and "resume" in err, err


def test_a_worker_whose_domain_differs_refuses_its_jobs(tmp_path, postgres_databases, monkeypatch):
    """The coordinator's domain (a policy line more, here) is not the worker's: the worker stops
    before running a job, and the run stops naming it; a fit worker then finishes the resume."""
    from apigen_mt.cluster import coordinator

    url = postgres_databases.fresh()
    real = coordinator.domain_fingerprint
    monkeypatch.setattr(coordinator, "domain_fingerprint", lambda domain: real(domain) + "-changed")
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(n=2), max_lifetime=300) as stub:
        worker = _worker(url, stub, "old-domain")
        run_dir = tmp_path / "run"
        assert main(_args(stub, run_dir) + ["--database-url", url, "--workers", "0", "--no-report"]) == 2
        _, worker_err = worker.communicate(timeout=60)
        assert worker.returncode == 2 and "domain 'retail' here differs from the run's" in worker_err, worker_err
        assert stub.chat_requests == []
        monkeypatch.setattr(coordinator, "domain_fingerprint", real)
        assert main(["resume", str(run_dir), "--no-report", "--workers", "1"]) == 0
    assert RunStore(run_dir).counts()["trajectories_accepted"] == 3
