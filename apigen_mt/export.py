"""Dataset formats trainers and benchmarks read, from Phase-1 blueprints and Phase-2 conversations.

- ``openai``: chat fine-tuning JSONL, one ``{"messages": [...], "tools": [...]}`` per line
  (system, user, assistant with ``tool_calls``, ``tool`` results), as TRL's SFT trainer and
  ``datasets.load_dataset("json", ...)`` read it;
- ``sharegpt``: the APIGen-MT-5k layout: ``conversations`` of ``{from, value}`` with
  ``from`` in human / gpt / function_call / observation, ``tools`` as a JSON string, and
  ``system`` (the domain policy prompt);
- ``tau2``: accepted blueprints of the tau2-bench domains (retail, airline, telecom) as a tau2-bench
  ``tasks.json`` (a JSON array of tau2 ``Task`` objects), so tau2's own orchestrator and
  evaluators can run new agents on the generated tasks;
- ``dpo``: preference pairs in TRL's conversational DPO layout (``prompt`` / ``chosen`` /
  ``rejected`` message lists plus ``tools``), from an accepted and a failed conversation of
  the same blueprint that share everything up to one assistant turn;
- ``bfcl``: verified conversations of BFCL domains as BFCL multi-turn entries and their
  ground truth, for bfcl-eval (:mod:`apigen_mt.domains.bfcl.export`).

``openai`` and ``sharegpt`` map one trajectory to one row (:data:`FORMATS`); ``tau2`` works
per blueprint (:func:`write_tau2_tasks`) and ``dpo`` needs every trajectory of a blueprint
at once (:func:`dpo_pairs`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from apigen_mt.blueprint import blueprint_json
from apigen_mt.tools.atomic_file import replacing

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "TAU2_DOMAINS",
    "dpo_pairs",
    "to_openai",
    "to_sharegpt",
    "to_tau2_task",
    "write_jsonl",
    "write_tau2_tasks",
]

EXPORT_FORMATS = ("openai", "sharegpt", "tau2", "dpo", "bfcl")
TAU2_DOMAINS = ("retail", "airline", "telecom")


def _arguments(call: Mapping[str, Any]) -> Any:
    arguments = call.get("function", {}).get("arguments", call.get("arguments"))
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def _call_name(call: Mapping[str, Any]) -> Any:
    return call.get("function", {}).get("name", call.get("name"))


def _text(content: Any) -> str:
    """Message content as one string (``None`` and lists of text parts included)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def to_openai(trajectory: Mapping[str, Any]) -> dict[str, Any]:
    """``{"messages", "tools"}`` plus the blueprint id (extra keys are ignored by trainers)."""
    return {"messages": trajectory["messages"], "tools": trajectory["tools"], "id": trajectory["blueprint_id"]}


def to_sharegpt(trajectory: Mapping[str, Any]) -> dict[str, Any]:
    """The APIGen-MT-5k row of one conversation."""
    system = ""
    conversations: list[dict[str, str]] = []
    for message in trajectory["messages"]:
        role, content = message["role"], _text(message.get("content"))
        if role == "system":
            system = content
        elif role == "user":
            conversations.append({"from": "human", "value": content})
        elif role == "assistant":
            if content.strip():
                conversations.append({"from": "gpt", "value": content})
            for call in message.get("tool_calls") or []:
                value = json.dumps({"name": _call_name(call), "arguments": _arguments(call)}, ensure_ascii=False)
                conversations.append({"from": "function_call", "value": value})
        elif role == "tool":
            conversations.append({"from": "observation", "value": content})
    tools = [t.get("function", t) for t in trajectory["tools"]]
    return {"conversations": conversations, "tools": json.dumps(tools, ensure_ascii=False), "system": system}


FORMATS = {"openai": to_openai, "sharegpt": to_sharegpt}


# -- tau2 --------------------------------------------------------------------------------------

_USER_TASK_INSTRUCTIONS = (
    "Pursue the request above with the agent: give the details it asks for, and end the "
    "conversation once the request is handled or cannot be."
)


def _persona_text(persona: Any) -> str | None:
    if persona is None or isinstance(persona, str):
        return persona or None
    if isinstance(persona, Mapping):
        text = "\n".join(str(persona[key]) for key in ("description", "style") if persona.get(key))
        return text or json.dumps(persona, ensure_ascii=False, sort_keys=True)
    return str(persona)


def to_tau2_task(blueprint: Mapping[str, Any]) -> dict[str, Any]:
    """One accepted blueprint as a tau2-bench task (the JSON that ``tau2.data_model.tasks.Task``
    validates).

    Plain dicts, no tau2 import: exporting must work where tau2 is not installed. The reward
    basis is what our verifier checked: DB + COMMUNICATE (the final database equals replaying
    the gold actions; every expected output was said), ENV_ASSERTION too for a blueprint with
    assertions, or the blueprint's own ``reward_basis``; so tau2 scores an agent on the
    exported task the way the blueprint was verified. A telecom blueprint keeps who acts
    (the user's actions as ``requestor: "user"``), its initial state and its assertions, and
    leaves DB out: tau2 replays telecom's gold actions without carrying the line's state to
    the phone (``make_tool_call`` does not sync), so its DB check fails even the gold
    conversation; the assertions are what tau2 scores telecom on.
    """
    blueprint = blueprint_json(blueprint)
    domain, task_id = blueprint.get("domain"), str(blueprint["id"])
    if domain not in TAU2_DOMAINS:
        raise ValueError(
            f"blueprint {task_id!r} is of domain {domain!r}: the tau2 export is for the "
            f"tau2-bench domains ({', '.join(TAU2_DOMAINS)}) only"
        )
    source = blueprint.get("source")
    actions = [
        {
            "action_id": f"{task_id}_{index}",
            "requestor": "user" if action.get("requestor") == "user" else "assistant",
            "name": action["name"],
            "arguments": dict(action.get("arguments") or {}),
        }
        for index, action in enumerate(blueprint.get("actions") or [])
    ]
    assertions = [dict(assertion) for assertion in blueprint.get("assertions") or []]
    basis = blueprint.get("reward_basis") or ["DB", "COMMUNICATE", *(["ENV_ASSERTION"] if assertions else [])]
    if domain == "telecom":  # tau2 replays telecom's gold actions without syncing the phone: its DB check fails gold
        basis = [kind for kind in basis if kind != "DB"] or ["ENV_ASSERTION"]
    return {
        "id": task_id,
        "description": {
            "purpose": f"Generated by apigen-mt (APIGen-MT) from blueprint {task_id}.",
            "notes": f"source: {json.dumps(source, ensure_ascii=False, sort_keys=True)}" if source else None,
        },
        "user_scenario": {
            "persona": _persona_text(blueprint.get("persona")),
            "instructions": {
                "domain": domain,
                "reason_for_call": blueprint["instruction"],
                "known_info": None,
                "unknown_info": None,
                "task_instructions": _USER_TASK_INSTRUCTIONS,
            },
        },
        "initial_state": copy.deepcopy(blueprint.get("initial_state")),
        "evaluation_criteria": {
            "actions": actions,
            "env_assertions": assertions or None,
            "communicate_info": [str(output) for output in blueprint.get("outputs") or []],
            "nl_assertions": None,
            "reward_basis": list(basis),
        },
    }


def write_tau2_tasks(blueprints: Iterable[Any], path: str | Path) -> int:
    """Write the blueprints as a tau2 ``tasks.json`` (a JSON array; the file is replaced);
    returns how many. Every blueprint is converted before the file is touched, so a non-tau2
    blueprint leaves no half-written file."""
    tasks = [to_tau2_task(blueprint) for blueprint in blueprints]
    with replacing(path) as handle:
        json.dump(tasks, handle, ensure_ascii=False, indent=2, default=str)
        handle.write("\n")
    return len(tasks)


# -- dpo ---------------------------------------------------------------------------------------


def _comparable(message: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two messages the same turn: role, text, tool calls (name + arguments), not ids."""
    calls = tuple(
        (_call_name(call), json.dumps(_arguments(call), sort_keys=True, default=str))
        for call in message.get("tool_calls") or []
    )
    return message.get("role"), _text(message.get("content")), calls


def dpo_pairs(trajectories: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Preference rows from accepted and failed conversations of the same blueprint.

    Per blueprint, the first accepted conversation (reward 1, not a duplicate) is paired with
    each failed one (reward < 1). The split is at the first message where the two differ: up
    to there they share the context (same system prompt, same user words, same tool results),
    so the assistant message at that index is the choice that led one to success and the
    other to failure: ``prompt`` = the shared messages, ``chosen`` / ``rejected`` = the rest of
    each. When they first differ at a user or tool message, the simulated user (or a tool)
    changed the context rather than the assistant, so there is no single choice to prefer and
    the pair is skipped; likewise when one conversation is a prefix of the other.

    Returns ``(rows, stats)``: stats counts ``pairs``, ``emitted`` and each skip reason
    (``diverged_at_user``, ``diverged_at_tool``, ``diverged_at_system``, ``prefix``).
    """
    by_blueprint: dict[Any, list[Mapping[str, Any]]] = {}
    for trajectory in trajectories:
        by_blueprint.setdefault(trajectory.get("blueprint_id"), []).append(trajectory)
    rows: list[dict[str, Any]] = []
    stats = {"pairs": 0, "emitted": 0}
    for blueprint_id, group in by_blueprint.items():
        accepted = [t for t in group if t.get("reward") == 1.0 and not t.get("duplicate")]
        failed = [t for t in group if t.get("reward") is not None and t["reward"] < 1.0]
        if not accepted:
            continue
        chosen = accepted[0]
        good = chosen["messages"]
        for rejected in failed:
            stats["pairs"] += 1
            bad = rejected["messages"]
            index = next(
                (i for i, (a, b) in enumerate(zip(good, bad)) if _comparable(a) != _comparable(b)), None
            )
            if index is None:
                reason = "prefix"
            else:
                roles = {good[index].get("role"), bad[index].get("role")}
                reason = None if roles == {"assistant"} else f"diverged_at_{sorted(roles - {'assistant'})[0]}"
            if reason:
                stats[reason] = stats.get(reason, 0) + 1
                continue
            rows.append({
                "prompt": list(good[:index]),
                "chosen": list(good[index:]),
                "rejected": list(bad[index:]),
                "tools": chosen.get("tools") or rejected.get("tools") or [],
                "id": blueprint_id,
                "chosen_attempt": chosen.get("attempt"),
                "rejected_attempt": rejected.get("attempt"),
                "rejected_reasons": list(rejected.get("reasons") or []),
            })
            stats["emitted"] += 1
    return rows, stats


# -- files -------------------------------------------------------------------------------------


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write ``rows`` as JSON lines (the file is replaced); returns how many."""
    count = 0
    with replacing(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count
