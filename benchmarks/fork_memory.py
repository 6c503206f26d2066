"""Memory of 64 concurrently forked environments vs one pristine one (airline, or telecom).

Each of the 64 environments replays one gold task (cycling through tau2's tasks; telecom's
each from its own initial state, both sides' actions),
so it holds the records a real conversation touches, and all 64 stay alive together. The
ratio compares the memory the airline state occupies (RSS above the interpreter with the
libraries imported): 64 forks on top of the pristine data vs the pristine data alone. For
context it also prints what tau2's own way (a deep copy of the database per environment)
costs for a few environments.

    python benchmarks/fork_memory.py [airline|telecom]

Last line: ``fork_memory_ratio=<x>``. Telecom's environments are whole copies (its database is
33 records; :func:`~apigen_mt.domains.telecom.environment.copy_model`), airline's copy-on-write.
"""

from __future__ import annotations

import copy
import sys

from _common import mib, rss_bytes

from apigen_mt.domains.tau2bench.runtime import import_tau2

FORKS = 64


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "airline"
    import_tau2(f"domains.{name}.environment")  # libraries in, no data yet
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
    from apigen_mt.tools.executor import execute_actions

    tasks = tau2_blueprints(name, "train") + tau2_blueprints(name, "test")  # parsed before measuring
    base = rss_bytes()
    domain = get_domain(name)
    pristine_env = domain.new_env()
    one = rss_bytes() - base
    envs = []
    touched = 0
    for index in range(FORKS):
        task = tasks[index % len(tasks)]
        env = domain.env_for(task.initial_state)
        trace = execute_actions(env, task.actions)
        touched += sum(1 for _ in env.changed_records())
        envs.append((env, trace))
    many = rss_bytes() - base
    print(f"pristine {name} environment: {mib(one)}; with {FORKS} live forks "
          f"({touched} changed records in all): {mib(many)}")
    del envs, pristine_env

    before = rss_bytes()
    pristine = domain.pristine if name != "telecom" else (domain.new_env().agent_db, domain.new_env().user_db)
    copies = [copy.deepcopy(pristine) for _ in range(4)]
    per_copy = (rss_bytes() - before) / len(copies)
    print(f"for comparison, tau2's deep copy per environment: {mib(per_copy)} each "
          f"(~{mib(one + FORKS * per_copy)} for {FORKS})")
    del copies
    print(f"fork_memory_ratio={many / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
