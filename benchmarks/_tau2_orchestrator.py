"""tau2-bench's own orchestrator driven by scripted (oracle) agent and user, for the benchmarks.

``tau2.orchestrator.orchestrator`` imports ``tau2.utils.llm_utils``, which does ``import litellm``
at module level. litellm is not a dependency of this project and must not be installed, and
the scripted agent and user below never call an LLM, so :func:`install_litellm_stand_in` puts
an inert module in ``sys.modules["litellm"]`` (plus ``litellm.main`` and
``litellm.caching.caching``) exposing exactly the names ``llm_utils`` uses at import time:
``completion``, ``completion_cost``, ``Cache``, ``ModelResponse``, ``Usage`` and the
attributes/functions it sets or calls while loading (``suppress_debug_info``,
``drop_params``, ``success_callback``, ``failure_callback``, ``cache``, ``enable_cache``,
``disable_cache``). ``disable_cache`` is a no-op (llm_utils calls it on import); everything
else raises :class:`LitellmStandInError` when actually called, so a real LLM call can never
pass silently. It refuses to replace a real litellm.
"""

from __future__ import annotations

import os
import sys
import time
import types
from typing import Any

from apigen_mt.domains.tau2bench.runtime import import_tau2


class LitellmStandInError(RuntimeError):
    """Raised when tau2 tries to really use litellm through the benchmark's stand-in."""


def _refuse(name: str):
    def refuse(*_: Any, **__: Any) -> Any:
        raise LitellmStandInError(
            f"litellm.{name} called: the benchmark's inert litellm stand-in cannot make LLM calls "
            "(only the scripted tau2 agent and user are supported)"
        )

    refuse.__name__ = name
    return refuse


def _refusing_class(name: str) -> type:
    return type(name, (), {"__init__": lambda self, *a, **k: _refuse(name)()})


def install_litellm_stand_in() -> None:
    """Register the inert ``litellm`` stand-in (idempotent); silence tau2's logger."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from loguru import logger

    logger.disable("tau2")
    existing = sys.modules.get("litellm")
    if existing is not None:
        if not getattr(existing, "__benchmark_stand_in__", False):
            raise RuntimeError("a real litellm is already imported; the stand-in would shadow it")
        return
    litellm = types.ModuleType("litellm")
    litellm.__benchmark_stand_in__ = True
    litellm.__path__ = []  # a package, so that litellm.main / litellm.caching resolve
    litellm.completion = _refuse("completion")
    litellm.completion_cost = _refuse("completion_cost")
    litellm.enable_cache = _refuse("enable_cache")
    litellm.disable_cache = lambda *_, **__: None  # called by llm_utils on import
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.cache = None
    main = types.ModuleType("litellm.main")
    main.ModelResponse = _refusing_class("ModelResponse")
    main.Usage = _refusing_class("Usage")
    caching = types.ModuleType("litellm.caching")
    caching.__path__ = []
    caching_caching = types.ModuleType("litellm.caching.caching")
    caching_caching.Cache = _refusing_class("Cache")
    litellm.main, litellm.caching, caching.caching = main, caching, caching_caching
    litellm.ModelResponse, litellm.Usage, litellm.Cache = main.ModelResponse, main.Usage, caching_caching.Cache
    sys.modules.update({
        "litellm": litellm,
        "litellm.main": main,
        "litellm.caching": caching,
        "litellm.caching.caching": caching_caching,
    })


def oracle_text(outputs: list[str], done: str) -> str:
    """The final assistant message: the same text as our oracle assistant says."""
    return f"{done} {' '.join(f'{o}.' for o in outputs)}".strip()


def make_classes():
    """The oracle agent and user as tau2 classes (imported lazily: needs the stand-in)."""
    install_litellm_stand_in()
    agent_base = import_tau2("agent.base")
    user_base = import_tau2("user.base")
    message = import_tau2("data_model.message")

    class OracleAgent(agent_base.LocalAgent):
        """Replays the gold actions as tool calls, one per turn, then says the outputs."""

        def __init__(self, tools, domain_policy, actions: list[dict], final_text: str, latency: float):
            super().__init__(tools=tools, domain_policy=domain_policy)
            self.actions, self.final_text, self.latency = actions, final_text, latency

        def get_init_state(self, message_history=None) -> dict:
            return {"done": sum(isinstance(m, message.ToolMessage) for m in message_history or [])}

        def generate_next_message(self, incoming, state: dict):
            if isinstance(incoming, message.MultiToolMessage):
                state["done"] += len(incoming.tool_messages)
            elif isinstance(incoming, message.ToolMessage):
                state["done"] += 1
            time.sleep(self.latency)
            done = state["done"]
            if done < len(self.actions):
                action = self.actions[done]
                call = message.ToolCall(id=f"call_{done}", name=action["name"], arguments=dict(action.get("arguments") or {}))
                return message.AssistantMessage(role="assistant", tool_calls=[call], cost=0.0), state
            return message.AssistantMessage(role="assistant", content=self.final_text, cost=0.0), state

    class OracleUser(user_base.BaseUser):
        """States the instruction, then sends tau2's stop token."""

        def __init__(self, instructions: str, latency: float):
            super().__init__(instructions=instructions)
            self.latency = latency

        def get_init_state(self, message_history=None) -> dict:
            return {"said": sum(isinstance(m, message.UserMessage) for m in message_history or [])}

        def generate_next_message(self, incoming, state: dict):
            time.sleep(self.latency)
            content = self.instructions if state["said"] == 0 else user_base.STOP
            state["said"] += 1
            return message.UserMessage(role="user", content=content, cost=0.0), state

        @classmethod
        def is_stop(cls, msg) -> bool:
            return msg.content is not None and user_base.STOP in msg.content

    return OracleAgent, OracleUser


def run_task(name: str, task: Any, blueprint: dict, latency: float, done_text: str, classes) -> float:
    """One task the way ``tau2.run.run_task`` does it (fresh environment, Orchestrator.run),
    scored with EnvironmentEvaluator x CommunicateEvaluator. Returns the reward."""
    OracleAgent, OracleUser = classes
    orchestrator_module = import_tau2("orchestrator.orchestrator")
    constructor = import_tau2(f"domains.{name}.environment").get_environment
    env_eval = import_tau2("evaluator.evaluator_env").EnvironmentEvaluator
    comm_eval = import_tau2("evaluator.evaluator_communicate").CommunicateEvaluator
    environment = constructor()
    agent = OracleAgent(
        tools=environment.get_tools(),
        domain_policy=environment.get_policy(),
        actions=blueprint["actions"],
        final_text=oracle_text(blueprint["outputs"], done_text),
        latency=latency,
    )
    user = OracleUser(instructions=blueprint["instruction"], latency=latency)
    simulation = orchestrator_module.Orchestrator(
        domain=name, agent=agent, user=user, environment=environment, task=task,
    ).run()
    trajectory = simulation.messages
    return (
        env_eval.calculate_reward(environment_constructor=constructor, task=task, full_trajectory=trajectory).reward
        * comm_eval.calculate_reward(task=task, full_trajectory=trajectory).reward
    )
