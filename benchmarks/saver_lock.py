"""AsyncPostgresSaver's instance-wide lock (langchain-ai/langgraph#7259) vs the semaphore a worker uses.

A worker runs many LangGraph threads on one event loop over one saver on a connection pool.
The library guards every statement of a saver with one ``asyncio.Lock``, so the threads
wait for one another's round trips although each statement has a connection of its own;
:func:`apigen_mt.cluster.checkpointer.open_postgres_checkpointer` replaces the lock by a
semaphore as wide as the pool. This measures both on a worker's real load: the Phase-1
graph, 200 retail blueprint requests at concurrency 64, scripted models with a fixed
200 ms latency (every blueprint accepted on its first round), in one process, checkpoints
in a fresh Postgres database per run. The two are run alternately, ``--repeat`` times each,
and the best wall time of each is compared.

    python benchmarks/saver_lock.py [--n 200] [--concurrency 64] [--latency 0.2] [--pool 16]
                                    [--repeat 2] [--server URL|embedded]

Last line: ``saver_semaphore_speedup=<t_lock/t_semaphore>`` (above 1: the semaphore is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import drop_database, fresh_database, postgres  # noqa: E402
from phase1_oracle import oracle_models  # noqa: E402

from apigen_mt.cluster.checkpointer import open_postgres_checkpointer  # noqa: E402
from apigen_mt.configuration import Configuration  # noqa: E402
from apigen_mt.graphs.context import RunContext  # noqa: E402
from apigen_mt.graphs.phase1 import build_phase1_graph  # noqa: E402
from apigen_mt.graphs.settings import Phase1Settings  # noqa: E402
from apigen_mt.llm.accounting import CallRecorder  # noqa: E402
from apigen_mt.llm.factory import LLMRuntime  # noqa: E402
from apigen_mt.runner import run_threads  # noqa: E402
from apigen_mt.tools.coverage import WriteCoverage  # noqa: E402
from apigen_mt.tools.dedup import DedupIndex  # noqa: E402


async def one_run(url: str, args: argparse.Namespace, *, instance_lock: bool, seed: int) -> tuple[float, int, int]:
    """Wall time, accepted and failed threads of one Phase-1 run checkpointed in ``url``."""
    configuration = Configuration.load()
    settings = Phase1Settings()
    runtime = LLMRuntime.from_configuration(configuration, recorder=CallRecorder(), cache=None)
    context = RunContext(llm=runtime, dedup_index=DedupIndex(threshold=settings.dedup_threshold),
                         coverage=WriteCoverage(), chat_models=oracle_models(latency=args.latency))
    config = {"configurable": {"apigen_mt": configuration, "phase1": settings}, "recursion_limit": 200}
    items = [(f"phase1:retail-{seed + i}", {"domain": "retail", "blueprint_id": f"retail-{seed + i}",
                                            "seed": seed + i, "mode": "llm"}) for i in range(args.n)]
    async with open_postgres_checkpointer(url, pool_size=args.pool, instance_lock=instance_lock, setup=True) as saver:
        compiled = build_phase1_graph().compile(checkpointer=saver)
        started = time.perf_counter()
        outcomes = await run_threads(compiled, items, config, context=context, concurrency=args.concurrency)
        wall = time.perf_counter() - started
    accepted = sum(1 for o in outcomes if o.ok and o.values.get("status") == "accepted")
    return wall, accepted, sum(1 for o in outcomes if not o.ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--pool", type=int, default=16, help="connections in the saver's pool (a worker: min(concurrency, 16))")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--server", default="postgresql://127.0.0.1:5432/postgres", help="a Postgres admin URL, or 'embedded'")
    args = parser.parse_args()

    walls: dict[str, list[float]] = {"lock": [], "semaphore": []}
    with postgres(args.server) as admin:
        name, url = fresh_database(admin)
        try:  # warm imports, the domain and its API graph outside the timing
            asyncio.run(one_run(url, argparse.Namespace(**{**vars(args), "n": 2, "latency": 0.0}), instance_lock=False, seed=90_000))
        finally:
            drop_database(admin, name)
        for round_ in range(args.repeat):
            for label in ("lock", "semaphore"):
                name, url = fresh_database(admin)
                try:
                    wall, accepted, failed = asyncio.run(one_run(url, args, instance_lock=label == "lock", seed=1000 * round_))
                finally:
                    drop_database(admin, name)
                walls[label].append(wall)
                print(f"{label}: wall={wall:.2f}s accepted={accepted} failed={failed}", flush=True)

    best = {label: min(values) for label, values in walls.items()}
    print(f"blueprints={args.n} concurrency={args.concurrency} latency={args.latency}s pool={args.pool} "
          f"server={args.server} best of {args.repeat}: lock={best['lock']:.2f}s semaphore={best['semaphore']:.2f}s")
    print(f"saver_semaphore_speedup={best['lock'] / best['semaphore']:.3f}")


if __name__ == "__main__":
    main()
