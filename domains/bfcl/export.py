"""Verified conversations of BFCL domains as BFCL multi-turn entries, for bfcl-eval.

BFCL keeps a category in two JSONL files of the same name: the entries (``id``,
``question`` as a list of turns, each a list of user messages, ``initial_config``,
``involved_classes``, ``path``) and, under ``possible_answer/``, each entry's
``ground_truth``: per turn, the calls as Python call strings (``cd(folder='document')``),
which bfcl-eval's multi-turn checker executes from the initial config and compares with a
model's (state after every turn, and results).

A conversation maps to one entry: a turn is the user's messages up to the assistant's next
tool calls, with the calls the assistant made before the user spoke again, those that
succeeded (a failed call changed nothing, and BFCL's ground truth never fails). User
messages after the last call (thanks, goodbye) are left out; a conversation without a
successful call has no turn and is skipped. Entry ids are ``multi_turn_apigen_<n>`` (or
``multi_turn_long_context_apigen_<n>`` for long-context domains, which bfcl-eval then loads
the same way); ``apigen_blueprint_id`` says where each came from.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from apigen_mt.tools.atomic_file import replacing

__all__ = ["ANSWER_DIR", "bfcl_call", "to_bfcl_entry", "write_bfcl"]

ANSWER_DIR = "possible_answer"


def bfcl_call(name: str, arguments: Mapping[str, Any]) -> str:
    """One call as BFCL writes its ground truth: keyword arguments as Python literals."""
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def _turns(trajectory: Mapping[str, Any]) -> list[tuple[list[str], list[dict[str, Any]]]]:
    """``(user texts, successful calls)`` per turn, in order."""
    calls = iter(trajectory.get("calls") or [])
    turns: list[tuple[list[str], list[dict[str, Any]]]] = []
    texts: list[str] = []
    made: list[dict[str, Any]] = []
    for message in trajectory["messages"]:
        role = message.get("role")
        if role == "user":
            if made:
                turns.append((texts, made))
                texts, made = [], []
            content = message.get("content")
            texts.append(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
        elif role == "assistant":
            for _ in message.get("tool_calls") or []:
                call = next(calls, None)
                if call is None:
                    raise ValueError(f"conversation of {trajectory.get('blueprint_id')}: more tool calls than calls recorded")
                if call.get("ok"):
                    made.append(call)
    if made:
        turns.append((texts, made))
    return turns


def to_bfcl_entry(trajectory: Mapping[str, Any], number: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(entry, answer)`` of one conversation on a BFCL domain; None when it made no successful call."""
    from apigen_mt.domains.bfcl.domain import BFCLDomain
    from apigen_mt.domains.registry import get_domain

    domain = get_domain(str(trajectory.get("domain")))
    if not isinstance(domain, BFCLDomain):
        raise ValueError(f"blueprint {trajectory.get('blueprint_id')}: domain {domain.name} is not a BFCL domain")
    turns = _turns(trajectory)
    if not turns:
        return None
    entry_id = f"multi_turn_{'long_context_' if domain.long_context else ''}apigen_{number}"
    configs = domain.initial_config()
    entry = {
        "id": entry_id,
        "question": [[{"role": "user", "content": text} for text in texts] for texts, _ in turns],
        "initial_config": {name: configs[name] for name in domain.class_names},
        "path": [f"{domain.owner(call['name'])}.{call['name']}" for _, made in turns for call in made],
        "involved_classes": list(domain.class_names),
        "apigen_blueprint_id": trajectory.get("blueprint_id"),
    }
    answer = {"id": entry_id, "ground_truth": [[bfcl_call(c["name"], c.get("arguments") or {}) for c in made] for _, made in turns]}
    return entry, answer


def write_bfcl(trajectories: Iterable[Mapping[str, Any]], path: str | Path) -> tuple[int, Counter[str]]:
    """Write the entries to ``path`` and their ground truth to ``possible_answer/<name>`` beside
    it (both replaced); how many, and what was skipped why. Every conversation is converted
    before a file is touched."""
    path = Path(path)
    entries, answers, skipped = [], [], Counter[str]()
    for trajectory in trajectories:
        made = to_bfcl_entry(trajectory, len(entries))
        if made is None:
            skipped["no successful tool call"] += 1
            continue
        entries.append(made[0])
        answers.append(made[1])
    for target, rows in ((path, entries), (path.parent / ANSWER_DIR / path.name, answers)):
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return len(entries), skipped
