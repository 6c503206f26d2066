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
    """A tau2 task as a blueprint: the assistant's gold actions and, in a domain where the
    user acts too (telecom), the user's (``requestor: "user"``), the task's initial state, its
    environment assertions and what its reward rests on (``reward_basis``)."""
    criteria = task.evaluation_criteria
    user_acts = tau2_name == "telecom"
    actions = [
        Action(name=action.name, arguments=dict(action.arguments), requestor="user" if action.requestor == "user" else None)
        for action in (criteria.actions or [])
        if action.requestor == "assistant" or user_acts
    ]
    extra: dict[str, Any] = {}
    if user_acts and task.initial_state is not None:
        extra["initial_state"] = task.initial_state.model_dump(mode="json", exclude_none=True)
    if user_acts and criteria.env_assertions:
        extra["assertions"] = [a.model_dump(mode="json", exclude_none=True) for a in criteria.env_assertions]
    if user_acts and criteria.reward_basis:
        basis = [getattr(kind, "value", str(kind)) for kind in criteria.reward_basis]
        kept = [kind for kind in basis if kind in ("DB", "ENV_ASSERTION", "COMMUNICATE")]
        if kept:  # none of ours (an NL assertion only): the default basis, not an empty one
            extra["reward_basis"] = kept
    return Blueprint(
        id=f"tau2-{tau2_name}-{task.id}",
        domain=tau2_name,
        instruction=task_instruction(task),
        actions=actions,
        outputs=list(criteria.communicate_info or []),
        source={"benchmark": "tau2-bench", "task_id": task.id, "split": split},
        **extra,
    )


def tau2_blueprints(tau2_name: str, split: str) -> list[Blueprint]:
    """Every task of one split as a blueprint, in tau2's order."""
    return [task_to_blueprint(tau2_name, task, split) for task in tau2_tasks(tau2_name, split)]
