"""Dataset formats trainers read, from verified Phase-2 conversations.

- ``openai``: chat fine-tuning JSONL, one ``{"messages": [...], "tools": [...]}`` per line
  (system, user, assistant with ``tool_calls``, ``tool`` results), as TRL's SFT trainer and
  ``datasets.load_dataset("json", ...)`` read it;
- ``sharegpt``: the APIGen-MT-5k layout: ``conversations`` of ``{from, value}`` with
  ``from`` in human / gpt / function_call / observation, ``tools`` as a JSON string, and
  ``system`` (the domain policy prompt).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "to_openai", "to_sharegpt", "write_jsonl"]


def _arguments(call: Mapping[str, Any]) -> Any:
    arguments = call.get("function", {}).get("arguments", call.get("arguments"))
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def to_openai(trajectory: Mapping[str, Any]) -> dict[str, Any]:
    """``{"messages", "tools"}`` plus the blueprint id (extra keys are ignored by trainers)."""
    return {"messages": trajectory["messages"], "tools": trajectory["tools"], "id": trajectory["blueprint_id"]}


def to_sharegpt(trajectory: Mapping[str, Any]) -> dict[str, Any]:
    """The APIGen-MT-5k row of one conversation."""
    system = ""
    conversations: list[dict[str, str]] = []
    for message in trajectory["messages"]:
        role, content = message["role"], message.get("content") or ""
        if not isinstance(content, str):
            content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        if role == "system":
            system = content
        elif role == "user":
            conversations.append({"from": "human", "value": content})
        elif role == "assistant":
            if content.strip():
                conversations.append({"from": "gpt", "value": content})
            for call in message.get("tool_calls") or []:
                name = call.get("function", {}).get("name", call.get("name"))
                value = json.dumps({"name": name, "arguments": _arguments(call)}, ensure_ascii=False)
                conversations.append({"from": "function_call", "value": value})
        elif role == "tool":
            conversations.append({"from": "observation", "value": content})
    tools = [t.get("function", t) for t in trajectory["tools"]]
    return {"conversations": conversations, "tools": json.dumps(tools, ensure_ascii=False), "system": system}


FORMATS = {"openai": to_openai, "sharegpt": to_sharegpt}


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write ``rows`` as JSON lines (the file is replaced); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    tmp.replace(path)
    return count
