"""An oracle conversation for a blueprint: what a perfect assistant and user would say.

For tests of Phase 2 and of the audit (and for checking your own domain end to end without
an LLM). The assistant's plan (:func:`oracle_plan`) makes, before each action, the read
lookups the grounding check found the values with (:func:`~apigen_mt.tools.checks.grounding.grounding_gaps`),
asks before each write the policy guards (``Domain.confirmed_writes``), makes the action, and
ends by saying the expected outputs; one call per message, as the tau2 policies ask. The
user states the instruction, confirms each step asked about, and stops after the last
message. :func:`oracle_assistant_reply` and :func:`oracle_user_reply` play them as reactive
:class:`~apigen_mt.testing.ScriptedChatModel` replies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from apigen_mt.agents.simulated_user import STOP_TOKEN
from apigen_mt.domains.base import Domain
from apigen_mt.tools.checks.execution import execute_blueprint
from apigen_mt.tools.checks.grounding import grounding_gaps
from apigen_mt.tools.executor import run_call
from apigen_mt.tools.provenance.said import Said, normal_text
from apigen_mt.tools.state_diff import canonical_json

__all__ = ["ASK", "DONE", "oracle_assistant_reply", "oracle_plan", "oracle_user_reply"]

DONE = "All done."
ASK = "Shall I proceed?"


def oracle_plan(domain: Domain, blueprint: Mapping[str, Any], *, wrong: Mapping[str, Any] | None = None,
                say_outputs: bool = True) -> list[dict[str, Any]]:
    """The assistant's messages, in order: ``{"call": {"name", "arguments"}}`` or ``{"say": text}``.
    ``wrong`` overrides arguments of every action (a wrong conversation); ``say_outputs``:
    the last message says the outputs."""
    actions = list(blueprint.get("actions") or [])
    lookups: list[tuple[int, str, dict[str, Any]]] = []
    grounding_gaps(domain, blueprint, execute_blueprint(domain, actions), lookups=lookups)
    lookups = _useful(domain, actions, lookups, blueprint.get("outputs") or [], str(blueprint.get("instruction") or ""))
    plan: list[dict[str, Any]] = []
    for index in range(len(actions) + 1):
        plan += [{"call": {"name": name, "arguments": arguments}} for at, name, arguments in lookups if at == index]
        if index == len(actions):
            break
        action = actions[index]
        arguments = {**(action.get("arguments") or {}), **(wrong or {})}
        if action["name"] in domain.confirmed_writes:
            shown = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
            plan.append({"say": f"Step {index + 1}: I will call {action['name']} with {shown}. {ASK}"})
        plan.append({"call": {"name": action["name"], "arguments": arguments}})
    said = " ".join(f"{output}." for output in blueprint.get("outputs") or []) if say_outputs else ""
    plan.append({"say": f"{DONE} {said}".strip()})
    return plan


def _useful(domain: Domain, actions: list[Mapping[str, Any]], lookups: list[tuple[int, str, dict[str, Any]]],
            outputs: list[Any], instruction: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The lookups that first return a value a later step or an output uses (and those that
    first return what they need in turn; for a value no result holds, a derived one, all
    the lookups of its step), and those that identify the user: the closure tries more
    than an assistant needs."""
    env = domain.new_env()
    said = Said(instruction)
    first: dict[str, tuple[int, int | None]] = {}
    # value -> (when it was first returned, by which lookup: None for an action's result)
    at_step: dict[int, int] = {}  # action index -> when it is made
    clock = 0
    for index in range(len(actions) + 1):
        for position, (at, name, arguments) in enumerate(lookups):
            if at == index:
                clock += 1
                own = _values(arguments)  # a search returns its own date: not where the date came from
                for value in _values(run_call(env, position, name, arguments).observation) - own:
                    first.setdefault(value, (clock, position))
        clock += 1
        at_step[index] = clock
        if index < len(actions):
            arguments = actions[index].get("arguments") or {}
            done = run_call(env, index, actions[index]["name"], arguments)
            for value in _values(done.observation) - _values(arguments):
                first.setdefault(value, (clock, None))
    made = [(a["name"], canonical_json(a.get("arguments") or {})) for a in actions]
    kept = {position for position, (at, name, arguments) in enumerate(lookups)  # identify the user, once
            if name in domain.identification_tools and (name, canonical_json(arguments)) not in made[:at]}
    wanted = [(value, index) for index, action in enumerate(actions) for value in _values(action.get("arguments"))]
    wanted += [(value, len(actions)) for value in _values(list(outputs))]
    seen: set[tuple[str, int]] = set()
    while wanted:
        value, index = wanted.pop()
        if (value, index) in seen:
            continue
        seen.add((value, index))
        when, provider = first.get(value, (None, None))
        if said.says(value):
            providers = []
        elif when is not None and when < at_step[index]:  # returned before the step needs it
            providers = [] if provider is None else [provider]
        else:  # derived (a sum, the day after a date): keep what the step looked up
            providers = [position for position, (at, _, _) in enumerate(lookups) if at == index]
        for position in providers:
            if position not in kept:
                kept.add(position)
                wanted.extend((v, lookups[position][0]) for v in _values(lookups[position][2]))
    return [lookups[position] for position in sorted(kept)]


def _values(data: Any) -> set[str]:
    """The leaf values of JSON data (or of a JSON text), normalised; not the keys."""
    if isinstance(data, str) and data[:1] in "[{":
        try:
            data = json.loads(data)
        except ValueError:
            pass
    if isinstance(data, Mapping):
        return set().union(*(_values(item) for item in data.values()))
    if isinstance(data, (list, tuple)):
        return set().union(*(_values(item) for item in data))
    return set() if data in (None, "") or isinstance(data, bool) else {normal_text(data)}


def oracle_assistant_reply(domain: Domain, blueprint: Mapping[str, Any], **plan_options: Any):
    """A reply function: the plan's next message (one per assistant message so far)."""
    from langchain_core.messages import AIMessage

    plan = oracle_plan(domain, blueprint, **plan_options)

    def reply(messages: list[Any]) -> Any:
        done = sum(1 for m in messages if isinstance(m, AIMessage))
        step = plan[min(done, len(plan) - 1)]
        if "say" in step:
            return AIMessage(content=step["say"])
        call = step["call"]
        return AIMessage(content="", tool_calls=[{"name": call["name"], "args": call["arguments"], "id": f"call_{done}"}])

    return reply


def oracle_user_reply(blueprint: Mapping[str, Any]):
    """A reply function for the simulated user (whose own messages are the AI messages it
    sees): the instruction, then ``Yes, go ahead with step N.`` to each question, then stop."""
    from langchain_core.messages import AIMessage, HumanMessage

    def reply(messages: list[Any]) -> str:
        if not any(isinstance(m, AIMessage) for m in messages):
            return str(blueprint["instruction"])
        last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = str(getattr(last, "content", "") or "")
        if text.endswith(ASK):
            return f"Yes, go ahead with {text.split(':', 1)[0].lower()}."
        return STOP_TOKEN

    return reply
