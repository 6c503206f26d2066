"""Our trajectory verification vs tau2-bench's own evaluator, on the same tasks, in one run.

For every retail, airline and telecom task (both splits) a finished conversation is built
once: the gold tool calls with tau2's responses (telecom's from the task's initial state, the
user's calls as the user's), then assistant messages that say the expected outputs.
Then both verify it: ours (``apigen_mt.tools.verifier.verify``: copy-on-write forks, diff of
touched records) and tau2's (``EnvironmentEvaluator`` x ``CommunicateEvaluator``: fresh
environments, replay, whole-database hashes). Building the conversation is not timed for
either. Both must agree on every reward.

    python benchmarks/verify_speed.py [--repeat N]

Last line: ``speedup_retail=<x> speedup_airline=<y> speedup_telecom=<z>`` (tau2 time / our time).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.tau2bench.runtime import import_tau2
from apigen_mt.domains.tau2bench.tasks import task_to_blueprint, tau2_tasks
from apigen_mt.tools.verifier import verify


def constructor_of(name: str):
    """tau2's environment constructor for ``name`` (telecom: with the workflow policy we load)."""
    environment = import_tau2(f"domains.{name}.environment")
    if name == "telecom":
        from apigen_mt.domains.telecom.domain import POLICY_TYPE

        return functools.partial(environment.get_environment, policy_type=POLICY_TYPE)
    return environment.get_environment


def conversations(name: str):
    message = import_tau2("data_model.message")
    for split in ("train", "test"):
        for task in tau2_tasks(name, split):
            bp = task_to_blueprint(name, task, split)
            env = constructor_of(name)()
            if task.initial_state is not None:
                init = task.initial_state
                env.set_state(init.initialization_data, init.initialization_actions, [])
            calls, trajectory = [], []
            for index, action in enumerate(bp.actions):
                requestor = action.requestor or "assistant"  # telecom: the user acts on their phone too
                call = message.ToolCall(id=str(index), name=action.name, arguments=action.arguments, requestor=requestor)
                said = (message.UserMessage(role="user", tool_calls=[call]) if requestor == "user"
                        else message.AssistantMessage(role="assistant", tool_calls=[call]))
                trajectory += [said, env.get_response(call)]
                calls.append({"name": action.name, "arguments": action.arguments, "requestor": action.requestor})
            texts = [f"Done: {o}." for o in bp.outputs] or ["Done."]
            trajectory += [message.AssistantMessage(role="assistant", content=t) for t in texts]
            yield task, bp, calls, texts, trajectory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over the tasks")
    args = parser.parse_args()
    env_eval = import_tau2("evaluator.evaluator_env").EnvironmentEvaluator
    comm_eval = import_tau2("evaluator.evaluator_communicate").CommunicateEvaluator
    speedups = {}
    for name in ("retail", "airline", "telecom"):
        domain = get_domain(name)
        constructor = constructor_of(name)
        cases = list(conversations(name))
        ours = theirs = 0.0
        for _ in range(args.repeat):
            for task, bp, calls, texts, trajectory in cases:
                start = time.perf_counter()
                verdict = verify(domain, bp, calls, texts)
                ours += time.perf_counter() - start
                start = time.perf_counter()
                reward = (
                    env_eval.calculate_reward(environment_constructor=constructor, task=task, full_trajectory=trajectory).reward
                    * comm_eval.calculate_reward(task=task, full_trajectory=trajectory).reward
                )
                theirs += time.perf_counter() - start
                if reward != verdict.reward:
                    print(f"DISAGREEMENT on {bp.id}: ours {verdict.reward} tau2 {reward}", file=sys.stderr)
                    return 1
        n = len(cases) * args.repeat
        speedups[name] = theirs / ours
        print(f"{name}: {len(cases)} tasks x {args.repeat}: ours {1000 * ours / n:.2f} ms/task, "
              f"tau2 {1000 * theirs / n:.1f} ms/task, speedup {speedups[name]:.1f}x (rewards agree)")
    print(" ".join(f"speedup_{name}={value:.1f}" for name, value in speedups.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
