"""What the grounding check costs per tau2 gold task, next to the execution check, in one run.

For every retail and airline gold task (both splits) that passes format, execution and policy
(those that reach the grounding stage), the execution check (``execute_blueprint``: a fresh
fork, every action, a snapshot before each) and the grounding check
(``apigen_mt.tools.checks.grounding.grounding_errors`` on that trace, read-tool lookups
included) are timed, best of ``--repeat`` passes. Also printed: how many tasks pass grounding.

    python benchmarks/grounding.py [--repeat N]

Last line: ``grounding_ms_retail=<x> grounding_ms_airline=<y> grounding_to_execution_retail=<r>
grounding_to_execution_airline=<s>``.
"""

from __future__ import annotations

import argparse
import time

from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
from apigen_mt.tools.checks.execution import execute_blueprint
from apigen_mt.tools.checks.grounding import grounding_errors
from apigen_mt.tools.checks.validate import validate_blueprint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (the best is kept)")
    args = parser.parse_args()
    figures = {}
    for name in ("retail", "airline"):
        domain = get_domain(name)
        tasks = [bp.to_json() for split in ("train", "test") for bp in tau2_blueprints(name, split)]
        tasks = [raw for raw in tasks if validate_blueprint(domain, raw, grounding=False).passed]
        best_execution = best_grounding = float("inf")
        passed = 0
        for _ in range(max(1, args.repeat)):
            execution = grounding = 0.0
            passed = 0
            for raw in tasks:
                start = time.perf_counter()
                trace = execute_blueprint(domain, raw["actions"])
                execution += time.perf_counter() - start
                start = time.perf_counter()
                passed += not grounding_errors(domain, raw, trace)
                grounding += time.perf_counter() - start
            best_execution, best_grounding = min(best_execution, execution), min(best_grounding, grounding)
        per_task = 1000 * best_grounding / len(tasks)
        figures[name] = (per_task, best_grounding / best_execution)
        print(f"{name}: {passed} of {len(tasks)} gold tasks grounded; grounding {per_task:.2f} ms/task, "
              f"execution {1000 * best_execution / len(tasks):.2f} ms/task")
    print(" ".join(
        [f"grounding_ms_{name}={ms:.2f}" for name, (ms, _) in figures.items()]
        + [f"grounding_to_execution_{name}={ratio:.2f}" for name, (_, ratio) in figures.items()]
    ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
