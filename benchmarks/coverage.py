"""Write-tool coverage of grounded walks, coverage-steered against uniform, in one run.

No LLM, deterministic. For retail, airline and library: the reachable write tools (those a
grounded walk can end in), then two runs of grounded walks from the same seed: *uniform*
(``grounded_walk`` as it draws its chains) and *steered* (each walk must end in the least
covered reachable write, :class:`apigen_mt.tools.coverage.WriteCoverage`, as Phase 1's
grounded mode does: :func:`~apigen_mt.tools.coverage.steered_walk`). Printed per domain: the share of reachable write tools covered after
2 x (number of write tools) blueprints, and the max/min count over the reachable write tools
after ``--blueprints`` (default 200).

    python benchmarks/coverage.py [--blueprints N]

Last line: ``min_write_tool_coverage=<x> max_balance=<y> uniform_max_balance=<z>`` (the
steered run's lowest coverage share and highest max/min over the domains, and the uniform
run's highest max/min; ``inf`` when a reachable write was never drawn).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.registry import get_domain
from apigen_mt.tools.coverage import WriteCoverage, steered_walk, write_names
from apigen_mt.tools.grounded_walk import grounded_walk

DOMAINS = ("retail", "airline", "library")


def reachable_writes(domain, seeds: int = 3) -> list[str]:
    writes = [spec.name for spec in domain.tools if spec.kind is ToolKind.WRITE]
    return [w for w in writes if any(grounded_walk(domain, random.Random(f"reach:{w}:{s}"), end=w) for s in range(seeds))]


def run(domain, n: int, reachable: list[str], steered: bool, seed: int = 0) -> list[Counter]:
    """The write counts after each blueprint."""
    rng = random.Random(seed)
    coverage = WriteCoverage()
    counts: Counter = Counter()
    history = []
    for _ in range(n):
        walk = steered_walk(domain, rng, coverage) if steered else grounded_walk(domain, rng)
        if walk is not None:
            counts.update(write_names(domain, (a["name"] for a in walk.actions)))
        history.append(Counter(counts))
    return history


def balance(counts: Counter, reachable: list[str]) -> float:
    values = [counts[w] for w in reachable]
    return float("inf") if not values or min(values) == 0 else max(values) / min(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blueprints", type=int, default=200)
    args = parser.parse_args()
    shares, steered_balance, uniform_balance = [], [], []
    for name in DOMAINS:
        domain = get_domain(name)
        writes = [spec.name for spec in domain.tools if spec.kind is ToolKind.WRITE]
        reachable = reachable_writes(domain)
        early = min(2 * len(writes), args.blueprints) - 1
        row = {}
        for mode in ("uniform", "steered"):
            history = run(domain, args.blueprints, reachable, steered=mode == "steered")
            covered = sum(1 for w in reachable if history[early][w]) / max(1, len(reachable))
            row[mode] = (covered, balance(history[-1], reachable), history[-1])
        shares.append(row["steered"][0])
        steered_balance.append(row["steered"][1])
        uniform_balance.append(row["uniform"][1])
        print(f"{name}: {len(reachable)} of {len(writes)} write tools reachable ({', '.join(sorted(set(writes) - set(reachable))) or 'all'} not)")
        for mode, (covered, bal, counts) in row.items():
            shown = ", ".join(f"{w} {counts[w]}" for w in reachable)
            print(f"  {mode:8} covered {covered:.0%} after {early + 1} blueprints; after {args.blueprints}: "
                  f"max/min {bal:.2f} ({shown})")
    print(f"min_write_tool_coverage={min(shares):.2f} max_balance={max(steered_balance):.2f} "
          f"uniform_max_balance={max(uniform_balance):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
