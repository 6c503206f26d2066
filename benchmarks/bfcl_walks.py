"""Grounded-walk yield on the eight BFCL classes (issue 12's acceptance: >= 90% of 30 seeds per
class, policy-clean), with what the walks reach.

For each single-class domain ``bfcl.<class>``: its API graph's edges, its writes, how many of
the seeds give a grounded walk (:func:`~apigen_mt.tools.grounded_walk.grounded_walk`) and how
many of those pass format, execution and policy (:func:`~apigen_mt.tools.checks.validate.validate_blueprint`
on the walk with a placeholder instruction; grounding is the instruction's job, not the walk's),
and which writes the walks end in (MathAPI has none: which calculations). A class whose walks all end in one write has a yield but
little variety: both are printed.

    python benchmarks/bfcl_walks.py [--seeds 30] [--pool] [bfcl.vehicle ...]

``--pool`` draws each seed's initial state from the class's state pool as Phase 1 does
(``edges`` is then the pristine state's graph).

Last line: ``bfcl_min_walk_yield=<lowest share over the classes> classes_at_90=<n>/8``.
"""

from __future__ import annotations

import argparse
import random
import time

from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.bfcl.data import SHORT_NAMES
from apigen_mt.domains.registry import get_domain
from apigen_mt.tools.api_graph import api_graph
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.grounded_walk import as_blueprint, grounded_walk

CLEAN_STAGES = ("format", "execution", "policy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--pool", action="store_true",
                        help="each seed's walk in a state drawn from the class's state pool, as Phase 1 draws it")
    parser.add_argument("domains", nargs="*", default=[f"bfcl.{short}" for short in SHORT_NAMES])
    args = parser.parse_args()

    shares = []
    for name in args.domains:
        domain = get_domain(name)
        graph = api_graph(domain)
        writes = sorted(t.name for t in domain.tools if t.kind == ToolKind.WRITE)
        ends_of = writes or sorted(t.name for t in domain.tools if t.kind == ToolKind.READ)  # a calculator ends in reads
        started = time.perf_counter()
        walks = clean = 0
        ends: dict[str, int] = {}
        pool = domain.state_pool() if args.pool else []
        states: set[str] = set()
        for seed in range(args.seeds):
            world = get_domain(pool[random.Random(f"{seed}:state").randrange(len(pool))]) if pool else domain
            states.add(world.name)
            walk = grounded_walk(world, random.Random(seed))
            if walk is None:
                continue
            walks += 1
            if validate_blueprint(world, as_blueprint(walk, world, "Do it.")).stage not in CLEAN_STAGES:
                clean += 1
            ends[walk.chain[-1]] = ends.get(walk.chain[-1], 0) + 1
        share = clean / max(1, args.seeds)
        shares.append(share)
        print(f"{name}: states={len(states)} edges={graph.number_of_edges()} writes={len(writes)} walks={walks}/{args.seeds} "
              f"policy_clean={clean}/{args.seeds} ({share:.0%}) {'writes' if writes else 'reads'}_reached={len(ends)}/{len(ends_of)} "
              f"ends={dict(sorted(ends.items()))} {time.perf_counter() - started:.1f}s", flush=True)
    print(f"bfcl_min_walk_yield={min(shares, default=0.0):.2f} classes_at_90={sum(s >= 0.9 for s in shares)}/{len(shares)}")


if __name__ == "__main__":
    main()
