"""Phase-1 orchestration overhead: wall time vs the ideal, LLM-bound wall time, in one run.

200 retail blueprint requests, concurrency 32, every model a scripted one with a fixed
200 ms async latency (the generator proposes a valid blueprint for the sampled user; three
judges vote yes). The ideal wall time counts only model latency on each thread's critical
path (propose, then the committee in parallel, then feedback when a round fails),
perfectly packed into 32 slots: sum(sequential model steps) x latency / concurrency.
Everything else (LangGraph, the sampler, execution and policy checks, dedup, the SQLite
checkpoints) is overhead.

    python benchmarks/phase1_throughput.py [--n 200] [--concurrency 32] [--latency 0.2] [--memory]

Last line: ``phase1_overhead_ratio=<x>`` (measured / ideal; 1.0 is no overhead).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from phase1_oracle import oracle_models  # noqa: E402

from apigen_mt.api import run_phase1  # noqa: E402
from apigen_mt.domains.registry import get_domain  # noqa: E402
from apigen_mt.tools.api_graph import api_graph  # noqa: E402


def sequential_steps(attempts: list[dict]) -> int:
    """Model calls on one thread's critical path (the committee counts once: it is parallel)."""
    steps = 0
    for attempt in attempts:
        steps += 1  # propose
        if attempt.get("reviews"):
            steps += 1  # the committee
        if attempt.get("feedback"):
            steps += 1
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--memory", action="store_true", help="in-memory checkpoints instead of SQLite")
    args = parser.parse_args()

    api_graph(get_domain("retail"))  # warm the domain and its API graph outside the timing
    run_phase1("retail", 2, chat_models=oracle_models(), seed=10_000)  # warm imports and caches

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = None if args.memory else Path(tmp) / "run"
        models = oracle_models(latency=args.latency)
        started = time.perf_counter()
        result = run_phase1("retail", args.n, chat_models=models, run_dir=run_dir, concurrency=args.concurrency)
        wall = time.perf_counter() - started

    steps = [sequential_steps(result.attempts.get(bp_id, [])) for bp_id in result.attempts]
    ideal = sum(steps) * args.latency / args.concurrency
    # a lower bound too: the longest single thread cannot be split
    ideal = max(ideal, max(steps, default=0) * args.latency)
    summary = result.summary()
    print(f"blueprints={args.n} concurrency={args.concurrency} latency={args.latency}s "
          f"checkpoints={'memory' if args.memory else 'sqlite'}")
    print(f"accepted={summary['accepted']} rejected={summary['rejected']} errors={summary['errors']} "
          f"model_steps={sum(steps)} (min {min(steps, default=0)}, max {max(steps, default=0)})")
    print(f"wall={wall:.2f}s ideal={ideal:.2f}s per_blueprint={wall / max(1, args.n) * 1000:.1f}ms")
    print(f"phase1_overhead_ratio={wall / ideal if ideal else math.nan:.3f}")


if __name__ == "__main__":
    main()
