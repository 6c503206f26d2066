"""Phase-1 orchestration overhead: wall time vs the ideal, LLM-bound wall time, in one run.

200 retail blueprint requests, concurrency 32, every model a scripted one with a fixed
200 ms async latency (the generator proposes a valid blueprint for the sampled user; three
judges vote yes). The ideal wall time counts only model latency on each thread's critical
path (propose, then the committee in parallel, then feedback when a round fails),
perfectly packed into 32 slots: sum(sequential model steps) x latency / concurrency.
Everything else (LangGraph, the sampler, execution and policy checks, dedup, the SQLite
checkpoints) is overhead.

    python benchmarks/phase1_throughput.py [--n 200] [--concurrency 32] [--latency 0.2] [--memory]

For scale it also times a graph of the same shape whose nodes do nothing but wait for the
same latency (``langgraph_floor_ratio``): what LangGraph's own scheduling costs here.

It also reports the CPU this process spent per blueprint request, and the measured ratio
over that floor (``vs_langgraph_floor``).

Last line: ``phase1_overhead_ratio=<x>`` (measured / ideal; 1.0 is no overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import operator
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

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


def langgraph_floor(n: int, concurrency: int, latency: float) -> float:
    """Wall / ideal for Phase 1's shape (prepare, propose, 4 checks, K=3 reviews in parallel,
    aggregate, accept) with no-op nodes and the same model latency, no checkpointer."""
    @dataclass(kw_only=True)
    class Shape:
        step: int = 0
        reviews: Annotated[list, operator.add] = field(default_factory=list)

    async def model_step(state: Shape) -> dict:
        await asyncio.sleep(latency)
        return {"step": state.step + 1}

    async def review(_: dict) -> dict:
        await asyncio.sleep(latency)
        return {"reviews": [1]}

    def noop(state: Shape) -> dict:
        return {"step": state.step + 1}

    builder = StateGraph(Shape)
    chain = ["prepare", "propose", "format_check", "execution_check", "policy_check", "dedup_check"]
    for name in chain:
        builder.add_node(name, model_step if name == "propose" else noop)
    builder.add_node("review", review)
    builder.add_node("aggregate", noop)
    builder.add_node("accept", noop)
    builder.add_edge(START, chain[0])
    for a, b in zip(chain, chain[1:]):
        builder.add_edge(a, b)
    builder.add_conditional_edges(chain[-1], lambda s: [Send("review", {}) for _ in range(3)], ["review"])
    builder.add_edge("review", "aggregate")
    builder.add_edge("aggregate", "accept")
    builder.add_edge("accept", END)
    graph = builder.compile()

    async def run() -> float:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await graph.ainvoke(Shape())

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - started

    return asyncio.run(run()) / (n * 2 * latency / concurrency)


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
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run_phase1("retail", args.n, chat_models=models, run_dir=run_dir, concurrency=args.concurrency)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    steps = [sequential_steps(result.attempts.get(bp_id, [])) for bp_id in result.attempts]
    ideal = sum(steps) * args.latency / args.concurrency
    # a lower bound too: the longest single thread cannot be split
    ideal = max(ideal, max(steps, default=0) * args.latency)
    summary = result.summary()
    print(f"blueprints={args.n} concurrency={args.concurrency} latency={args.latency}s "
          f"checkpoints={'memory' if args.memory else 'sqlite'}")
    print(f"accepted={summary['accepted']} rejected={summary['rejected']} errors={summary['errors']} "
          f"model_steps={sum(steps)} (min {min(steps, default=0)}, max {max(steps, default=0)})")
    rounds = sum(len(a) for a in result.attempts.values())
    print(f"wall={wall:.2f}s ideal={ideal:.2f}s per_blueprint={wall / max(1, args.n) * 1000:.1f}ms "
          f"cpu_per_blueprint_request={cpu / max(1, args.n) * 1000:.1f}ms "
          f"cpu_per_round={cpu / max(1, rounds) * 1000:.1f}ms")
    floor = langgraph_floor(args.n, args.concurrency, args.latency)
    ratio = wall / ideal if ideal else math.nan
    print(f"langgraph_floor_ratio={floor:.3f} (the same graph shape with no-op nodes) "
          f"vs_langgraph_floor={ratio / floor:.3f} (target <= 1.25)")
    print(f"phase1_overhead_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
