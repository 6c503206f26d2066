"""Conversations from any dataset, in one shape the audit reads.

Three layouts are read, each as its tools write it:

* ``openai`` (:func:`from_openai`): ``{"messages": [...], "tools": [...], "id"?}``, messages of
  role system / user / assistant (``tool_calls`` of ``{id, function: {name, arguments}}``,
  arguments a JSON string) / tool (``tool_call_id``): our own export, and what TRL reads;
* ``sharegpt`` (:func:`from_sharegpt`): the APIGen-MT-5k layout, ``conversations`` of
  ``{from, value}`` with ``from`` in human / gpt / function_call (``{"name", "arguments"}``
  as JSON) / observation;
* ``tau2`` (:func:`from_tau2_simulation`): one simulation of a tau2-bench results file
  (``{"info", "tasks", "simulations": [...]}``), messages of role user / assistant / tool,
  ``tool_calls`` of ``{id, name, arguments}``; its id is the simulation's ``id``.

:func:`read_conversations` tells them apart by their keys. Nothing raises on bad data: a call
whose arguments do not parse keeps the text and says why (``ToolCall.problem``), and a line
that is not JSON is yielded as an error with its number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Conversation", "ToolCall", "Turn", "from_openai", "from_sharegpt", "from_tau2_simulation",
           "read_conversations"]


@dataclass
class ToolCall:
    name: str
    arguments: Any
    """A JSON object when it parsed; otherwise the text as given."""
    id: str | None = None
    problem: str | None = None
    """Why the call cannot be checked (arguments that are not a JSON object)."""


@dataclass
class Turn:
    role: str
    """``system``, ``user``, ``assistant`` or ``tool``."""
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    call_id: str | None = None
    """A tool turn: the id of the call it answers."""
    name: str | None = None
    """A tool turn: the tool's name, when the layout gives it."""


@dataclass
class Conversation:
    id: Any
    turns: list[Turn]


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") if isinstance(part, Mapping) else str(part) for part in content)
    return json.dumps(content, ensure_ascii=False, default=str)


def _why(error: BaseException) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return f"{type(error).__name__}: {str(error)[:120]}"


def _items(value: Any) -> list[Any]:
    """A list field as a list of dicts (anything else in it, or instead of it, is skipped)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _call(name: Any, arguments: Any, call_id: Any = None) -> ToolCall:
    problem = None
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError) as error:
            parsed, problem = arguments, f"arguments are not valid JSON ({_why(error)})"
        arguments = parsed
    elif arguments is None:
        arguments = {}
    if problem is None and not isinstance(arguments, Mapping):
        problem = f"arguments must be a JSON object, got {type(arguments).__name__}"
    if not isinstance(name, str) or not name:
        problem = problem or "a call without a tool name"
    return ToolCall(str(name or ""), dict(arguments) if isinstance(arguments, Mapping) else arguments,
                    None if call_id is None else str(call_id), problem)


def from_openai(row: Mapping[str, Any], default_id: Any = None) -> Conversation:
    turns = []
    for message in _items(row.get("messages")):
        role = str(message.get("role") or "")
        calls = []
        for c in _items(message.get("tool_calls")):
            function = c.get("function") if isinstance(c.get("function"), Mapping) else {}
            calls.append(_call(function.get("name", c.get("name")), function.get("arguments", c.get("arguments")), c.get("id")))
        turns.append(Turn(role, _text(message.get("content")), calls, message.get("tool_call_id"), message.get("name")))
    return Conversation(row.get("id", default_id), turns)


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "function_call": "assistant", "observation": "tool", "tool": "tool", "system": "system"}


def from_sharegpt(row: Mapping[str, Any], default_id: Any = None) -> Conversation:
    turns = [Turn("system", _text(row.get("system")))] if row.get("system") else []
    for entry in _items(row.get("conversations")):
        kind, value = str(entry.get("from") or ""), entry.get("value")
        role = _SHAREGPT_ROLES.get(kind, kind)
        if kind == "function_call":
            try:
                data = json.loads(value) if isinstance(value, str) else value
            except (ValueError, RecursionError) as error:
                turns.append(Turn("assistant", calls=[ToolCall("", value, None, f"a function call that is not JSON ({_why(error)})")]))
                continue
            data = data if isinstance(data, Mapping) else {}
            turns.append(Turn("assistant", calls=[_call(data.get("name"), data.get("arguments"))]))
        else:
            turns.append(Turn(role, _text(value)))
    return Conversation(row.get("id", default_id), turns)


def from_tau2_simulation(simulation: Mapping[str, Any]) -> Conversation:
    turns = []
    for message in _items(simulation.get("messages")):
        role = str(message.get("role") or "")
        calls = [_call(c.get("name"), c.get("arguments"), c.get("id")) for c in _items(message.get("tool_calls"))]
        if role == "tool":
            turns.append(Turn("tool", _text(message.get("content")), call_id=message.get("id")))
        elif role == "user" and calls:  # a user acting on their own device (telecom): not the assistant's
            turns.append(Turn("user", _text(message.get("content"))))
        else:
            turns.append(Turn(role, _text(message.get("content")), calls))
    return Conversation(simulation.get("id"), turns)


def _from_row(row: Any, default_id: Any) -> Conversation | str:
    if not isinstance(row, Mapping):
        return f"a conversation must be a JSON object, got {type(row).__name__}"
    if "messages" in row and "simulations" not in row:
        return from_openai(row, default_id)
    if "conversations" in row:
        return from_sharegpt(row, default_id)
    return "neither an openai row (messages) nor a sharegpt row (conversations)"


def read_conversations(path: str | Path) -> Iterator[tuple[int | None, Conversation | None, str | None]]:
    """``(line number or None, conversation, None)`` per conversation in ``path``, or
    ``(line, None, why)`` for one that cannot be read. The whole file is tried as one JSON
    document first (a tau2 results file, a JSON array of rows), then as JSON lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        yield None, None, f"the file is not UTF-8 text (byte {error.start})"
        return
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, Mapping) and isinstance(document.get("simulations"), list):
        for simulation in document["simulations"]:
            if isinstance(simulation, Mapping):
                yield None, from_tau2_simulation(simulation), None
            else:
                yield None, None, f"a simulation must be a JSON object, got {type(simulation).__name__}"
        return
    if isinstance(document, list) or isinstance(document, Mapping):
        for index, row in enumerate(document if isinstance(document, list) else [document]):
            found = _from_row(row, f"item {index}")
            yield (None, found, None) if isinstance(found, Conversation) else (None, None, f"item {index}: {found}")
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:
            yield number, None, f"line {number}: invalid JSON ({_why(error)})"
            continue
        found = _from_row(row, f"line {number}")
        yield (number, found, None) if isinstance(found, Conversation) else (number, None, f"line {number}: {found}")
