"""Phase 2 (simulated user <-> assistant <-> environment, then verification) vs tau2-bench's own
orchestrator, on the same tasks with the same scripted latency, in one run.

Every retail and airline train task (``--domains``) is run to the end by both, each side in its
own subprocess (this script re-invokes itself with ``--side ours|tau2``) so that peak memory
is per side:

- ours: ``apigen_mt.api.run_phase2`` with the oracle models of ``tests/phase2_oracle.py`` (a
  user who states the instruction then stops, an assistant who replays the gold actions one
  tool call per turn then says the outputs), ``asyncio.sleep(latency)`` per model call,
  ``best_of_n=1``, ``concurrency`` conversations at once, no checkpoint directory (in memory);
  with ``--checkpoints`` a temporary run directory (SQLite checkpoints) instead.
- tau2: ``tau2.orchestrator.orchestrator.Orchestrator`` per task as ``tau2.run.run_task`` does
  it (a fresh ``get_environment()`` per task), with a tau2 agent (``LocalAgent``) and user
  (``BaseUser``) scripted the same way and saying the same texts, ``time.sleep(latency)`` per
  message (tau2 is synchronous), ``concurrency`` tasks at once on a ThreadPoolExecutor; each
  simulation scored by ``EnvironmentEvaluator`` x ``CommunicateEvaluator`` as in
  ``verify_speed.py``.

Both make the same number of model calls per task (user: 2, assistant: actions + 1). The
wall time covers running and scoring every task; loading the task lists and imports are not
timed. Peak memory is the subprocess's ``ru_maxrss`` (imports included, for both). Both sides
must give reward 1 to every task; the counts are printed (nothing is asserted).

tau2's orchestrator module imports ``tau2.utils.llm_utils``, which imports litellm at module
level; litellm is not a dependency here and is not installed. The tau2 side therefore
registers an inert stand-in ``litellm`` module first (``benchmarks/_tau2_orchestrator.py``):
only the names llm_utils needs while loading, each raising a clear error if actually called
(the scripted agent and user never call an LLM). ``LITELLM_LOCAL_MODEL_COST_MAP=True`` is
set and tau2's loguru logger is disabled.

    python benchmarks/phase2_throughput.py [--domains retail airline] [--latency 0.2] [--concurrency 32] [--checkpoints]

Last line: ``phase2_speedup=<x> phase2_memory_ratio=<y>`` (tau2 wall / our wall; our peak
memory / tau2's peak memory).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import mib  # noqa: E402

from apigen_mt.domains.tau2bench.tasks import task_to_blueprint, tau2_tasks  # noqa: E402


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def side_ours(domains: list[str], latency: float, concurrency: int, checkpoints: bool) -> dict:
    from phase2_oracle import oracle_phase2_models

    from apigen_mt.api import run_phase2

    blueprints = [task_to_blueprint(d, t, "train").to_json() for d in domains for t in tau2_tasks(d, "train")]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_phase2(
            blueprints,
            chat_models=lambda bp: oracle_phase2_models(bp, latency=latency),
            settings={"best_of_n": 1},
            concurrency=concurrency,
            run_dir=Path(tmp) / "run" if checkpoints else None,
        )
        wall = time.perf_counter() - start
    accepted = sorted(t["blueprint_id"] for t in result.trajectories if t.get("reward") == 1.0)
    return {"tasks": len(blueprints), "accepted": accepted, "wall": wall, "errors": len(result.errors)}


def side_tau2(domains: list[str], latency: float, concurrency: int) -> dict:
    import _tau2_orchestrator as orch

    from phase2_oracle import DONE

    classes = orch.make_classes()
    import_tau2 = orch.import_tau2
    import_tau2("orchestrator.orchestrator")
    import_tau2("evaluator.evaluator_env")
    import_tau2("evaluator.evaluator_communicate")
    jobs = [(d, t, task_to_blueprint(d, t, "train").to_json()) for d in domains for t in tau2_tasks(d, "train")]

    def one(job) -> tuple[str, float | str]:
        name, task, bp = job
        try:
            return bp["id"], orch.run_task(name, task, bp, latency, DONE, classes)
        except Exception as error:  # reported, not raised: a benchmark reports
            return bp["id"], f"{type(error).__name__}: {error}"

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(one, jobs))
    wall = time.perf_counter() - start
    errors = {bid: r for bid, r in outcomes if isinstance(r, str)}
    for bid, message in list(errors.items())[:3]:
        print(f"tau2 error on {bid}: {message}", file=sys.stderr)
    accepted = sorted(bid for bid, r in outcomes if r == 1.0)
    return {"tasks": len(jobs), "accepted": accepted, "wall": wall, "errors": len(errors)}


def run_side(side: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--side", side, "--latency", str(args.latency),
               "--concurrency", str(args.concurrency), "--domains", *args.domains]
    if args.checkpoints:
        command.append("--checkpoints")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"--side {side} failed with exit status {done.returncode}")
    sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", nargs="+", default=["retail", "airline"], help="tau2 domains (train split)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per scripted model call")
    parser.add_argument("--concurrency", type=int, default=32, help="conversations at once (both sides)")
    parser.add_argument("--checkpoints", action="store_true", help="our side persists SQLite checkpoints in a temp run dir")
    parser.add_argument("--side", choices=["ours", "tau2"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:
        if args.side == "ours":
            report = side_ours(args.domains, args.latency, args.concurrency, args.checkpoints)
        else:
            report = side_tau2(args.domains, args.latency, args.concurrency)
        report["peak_rss"] = peak_rss_bytes()
        print(json.dumps(report))
        return 0

    ours = run_side("ours", args)
    tau2 = run_side("tau2", args)
    for label, report in (("ours", ours), ("tau2", tau2)):
        print(f"{label}: {len(report['accepted'])}/{report['tasks']} tasks accepted (reward 1), "
              f"{report['errors']} errors, wall {report['wall']:.2f} s, peak RSS {mib(report['peak_rss'])}")
    both = set(ours["accepted"]) & set(tau2["accepted"])
    print(f"accepted by both: {len(both)}; only ours: {len(set(ours['accepted']) - both)}; "
          f"only tau2: {len(set(tau2['accepted']) - both)}")
    print(f"({', '.join(args.domains)} train, latency {args.latency} s, concurrency {args.concurrency})")
    speedup = tau2["wall"] / ours["wall"]
    memory_ratio = ours["peak_rss"] / tau2["peak_rss"]
    print(f"phase2_speedup={speedup:.2f} phase2_memory_ratio={memory_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
