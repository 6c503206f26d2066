"""tau2-bench tasks as blueprints (``apigen-mt import-tau2`` and the example sampler)."""

from __future__ import annotations

import functools
from typing import Any

from apigen_mt.blueprint import Action, Blueprint
from apigen_mt.domains.base import DomainError
from apigen_mt.domains.tau2bench.runtime import import_tau2

SPLITS = ("train", "test")


@functools.cache
def tau2_tasks(tau2_name: str, split: str) -> tuple[Any, ...]:
    """tau2's own Task objects of one split."""
    if split not in SPLITS:
        raise DomainError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    environment = import_tau2(f"domains.{tau2_name}.environment")
    return tuple(environment.get_tasks(split))


def task_instruction(task: Any) -> str:
    """The user's side of a task in one text: reason, known and unknown info, behaviour."""
    instructions = task.user_scenario.instructions
    if isinstance(instructions, str):
        return instructions
    parts = [
        instructions.reason_for_call,
        instructions.known_info,
        instructions.unknown_info,
        instructions.task_instructions,
    ]
    return "\n".join(part.strip() for part in parts if part and part.strip())


def task_to_blueprint(tau2_name: str, task: Any, split: str) -> Blueprint:
    criteria = task.evaluation_criteria
    actions = [
        Action(name=action.name, arguments=dict(action.arguments))
        for action in (criteria.actions or [])
        if action.requestor == "assistant"
    ]
    return Blueprint(
        id=f"tau2-{tau2_name}-{task.id}",
        domain=tau2_name,
        instruction=task_instruction(task),
        actions=actions,
        outputs=list(criteria.communicate_info or []),
        source={"benchmark": "tau2-bench", "task_id": task.id, "split": split},
    )


def tau2_blueprints(tau2_name: str, split: str) -> list[Blueprint]:
    """Every task of one split as a blueprint, in tau2's order."""
    return [task_to_blueprint(tau2_name, task, split) for task in tau2_tasks(tau2_name, split)]
