"""tau2-bench's own reward for a conversation, to compare our verdicts and exports with."""

from __future__ import annotations

from apigen_mt.domains.tau2bench.runtime import import_tau2


def tau2_reward(name, task, calls, messages):
    """tau2's reward for a conversation made of ``calls`` then ``messages``."""
    message = import_tau2("data_model.message")
    environment = import_tau2(f"domains.{name}.environment")
    env_eval = import_tau2("evaluator.evaluator_env").EnvironmentEvaluator
    comm_eval = import_tau2("evaluator.evaluator_communicate").CommunicateEvaluator
    env = environment.get_environment()
    trajectory = []
    for index, call in enumerate(calls):
        tool_call = message.ToolCall(id=str(index), name=call["name"], arguments=call["arguments"])
        trajectory.append(message.AssistantMessage(role="assistant", tool_calls=[tool_call]))
        trajectory.append(env.get_response(tool_call))
    trajectory += [message.AssistantMessage(role="assistant", content=text) for text in messages]
    db = env_eval.calculate_reward(environment_constructor=environment.get_environment, task=task, full_trajectory=trajectory)
    said = comm_eval.calculate_reward(task=task, full_trajectory=trajectory)
    return db.reward * said.reward
