"""Tool calling for every model: native tool calls, or JSON-schema-constrained output.

:func:`bind_domain_tools` gives a runnable ``messages -> AIMessage`` whatever the model can do::

    agent = bind_domain_tools(model, domain.tools)          # mode="auto"
    reply = agent.invoke(messages)
    for call in reply.tool_calls:                            # {"name", "args", "id"}
        ...                                                  # the executor checks the name
    if not reply.tool_calls:
        say(reply.content)                                   # a message to the user

Modes
    ``native``
        ``model.bind_tools(<OpenAI tool schemas>)``; the endpoint's own tool calls.
    ``json_schema``
        For chat templates without tool support (the embedded SmolLM2 model, many small
        local models). The tools are listed in the system prompt and the reply is
        constrained with ``response_format`` to a JSON schema that is an ``anyOf`` with one
        branch per tool, ``{"name": {"const": <tool>}, "arguments": <its parameters>}``,
        plus a ``reply_to_user`` branch ``{"arguments": {"content": <text>}}``. The JSON is
        parsed (never evaluated) into ``AIMessage.tool_calls`` (a reply becomes
        ``content`` with no tool calls). Earlier tool calls and tool results in the
        conversation are rewritten as plain assistant/user turns
        (:func:`render_tool_history`), since such templates have no tool roles.
        ``max_tokens`` is always capped. Output that cannot be parsed gets one repair turn
        (the bad output and the error are shown to the model); if that fails too the
        reply carries one ``invalid_tool_calls`` entry and :func:`tool_calling_failure`
        says why: nothing raises.
    ``auto`` (default)
        ``native`` unless the model is known not to support tools: its name matches
        :data:`NO_NATIVE_TOOLS` (e.g. ``smollm``), it was registered with
        :func:`set_native_tool_support`, or its endpoint answered a tools request with an
        error about tools (HTTP 400/422/501); then ``json_schema``, remembered per model
        (base URL + model name) for the rest of the process.

A tool call naming a tool that does not exist comes out as an ordinary tool call (native
mode) or, in json_schema mode, as whatever the model wrote: the caller (the executor)
rejects it like any other bad call. Malformed native tool arguments come out as
``invalid_tool_calls``, as ``ChatOpenAI`` reports them.

Why not a library: LangChain's ``bind_tools`` is native calling only; nothing there turns a
model without a tool template into a tool caller. Tool schemas themselves come from
``convert_to_openai_tool``.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import ToolCall, invalid_tool_call
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.utils.function_calling import convert_to_openai_tool

from apigen_mt.llm.structured import (
    FailureKind,
    Outcome,
    Steps,
    StructuredOutputFailure,
    adrive,
    as_messages,
    base_model_of,
    capped_max_tokens,
    drive,
    failure_from_exception,
    inline_schema_refs,
    load_json_output,
    message_text,
    next_request,
    rewrap_binding,
    sum_usage,
)

__all__ = [
    "DEFAULT_TOOL_MAX_TOKENS",
    "NO_NATIVE_TOOLS",
    "REPLY_TOOL",
    "DomainToolRunnable",
    "ParsedToolOutput",
    "ToolOutputError",
    "bind_domain_tools",
    "constrain_arguments_schema",
    "forget_native_tool_support",
    "model_key",
    "native_tool_support",
    "openai_tool_schemas",
    "parse_tool_output",
    "render_tool_history",
    "set_native_tool_support",
    "tool_call_schema",
    "tool_calling_failure",
    "tool_instructions",
]

log = logging.getLogger(__name__)

ToolMode = Literal["auto", "native", "json_schema"]

REPLY_TOOL = "reply_to_user"
"""The pseudo-tool of json_schema mode whose ``arguments.content`` is a message to the user."""

DEFAULT_TOOL_MAX_TOKENS = 512
"""``max_tokens`` in json_schema mode when neither the caller nor the model sets one."""

DEFAULT_REPLY_MAX_CHARS = 1000
"""maxLength of a reply to the user (json_schema mode), lowered to fit ``max_tokens``.

Large ``maxLength`` values also make llama.cpp's grammar sampling much slower."""
DEFAULT_MAX_STRING_CHARS = 300
"""maxLength given to tool-argument strings that have none (json_schema mode only)."""
DEFAULT_MAX_ARRAY_ITEMS = 32
"""maxItems given to tool-argument arrays that have none (json_schema mode only)."""

NO_NATIVE_TOOLS: list[str] = ["smollm"]
"""Lower-case substrings of model names whose chat templates have no tool support."""

METADATA_KEY = "tool_calling"
"""``response_metadata`` key under which json_schema mode reports mode, attempts, errors."""

TYPE_ALIASES = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "bool": "boolean",
    "str": "string",
}
_BOUNDED_FORMATS = frozenset({"date-time", "date", "time", "uuid", "duration"})


# ---------------------------------------------------------------------------
# Which models support native tools
# ---------------------------------------------------------------------------

_support_lock = threading.Lock()
_support: dict[str, bool] = {}


def _identity(model: Any) -> tuple[str, str]:
    base = base_model_of(model) if isinstance(model, Runnable) else model
    name = ""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(base, attr, None)
        if isinstance(value, str) and value:
            name = value
            break
    url = ""
    for attr in ("openai_api_base", "base_url", "api_base"):
        value = getattr(base, attr, None)
        if isinstance(value, str) and value:
            url = value.rstrip("/")
            break
    return url, name or type(base).__name__


def model_key(model: Any) -> str:
    """``"<base url>|<model name>"``: what tool support is remembered under."""
    if isinstance(model, str):
        return model
    url, name = _identity(model)
    return f"{url}|{name}"


def set_native_tool_support(model: Any, supported: bool) -> None:
    """Record whether ``model`` (a model, or a :func:`model_key` string) supports native tools."""
    with _support_lock:
        _support[model_key(model)] = bool(supported)


def forget_native_tool_support(model: Any | None = None) -> None:
    """Forget what was learnt (for one model, or all)."""
    with _support_lock:
        if model is None:
            _support.clear()
        else:
            _support.pop(model_key(model), None)


def native_tool_support(model: Any) -> bool | None:
    """``True``/``False`` when known (registered, learnt, or by name), else ``None``."""
    key = model_key(model)
    with _support_lock:
        known = _support.get(key)
    if known is not None:
        return known
    name = key.rsplit("|", 1)[-1].lower()
    if any(pattern in name for pattern in NO_NATIVE_TOOLS):
        return False
    return None


def _rejects_tools(exc: BaseException) -> bool:
    """An endpoint error that says tools (or this way of sending them) are unsupported."""
    if type(exc).__name__.endswith("ContextOverflowError"):
        return False
    status = getattr(exc, "status_code", None)
    if status not in (400, 404, 422, 501):
        return False
    text = str(exc).lower()
    return any(word in text for word in ("tool", "function", "jinja", "template", "not supported", "unsupported"))


# ---------------------------------------------------------------------------
# Tool schemas
# ---------------------------------------------------------------------------


def openai_tool_schemas(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """OpenAI function-tool schemas (LangChain's ``convert_to_openai_tool``) for ToolSpecs,
    OpenAI dicts, ``{name, description, parameters}`` dicts, LangChain tools, pydantic
    models; every tool named once, each with a ``parameters`` object."""
    schemas: list[dict[str, Any]] = []
    names: set[str] = set()
    for tool in tools:
        if callable(getattr(tool, "openai_schema", None)):
            tool = tool.openai_schema()
        schema = convert_to_openai_tool(copy.deepcopy(dict(tool)) if isinstance(tool, Mapping) else tool)
        function = schema.get("function") or {}
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"tool without a name: {tool!r}")
        if name in names:
            raise ValueError(f"two tools are named {name!r}")
        names.add(name)
        function.setdefault("parameters", {"type": "object", "properties": {}})
        schemas.append(schema)
    return schemas


def constrain_arguments_schema(
    parameters: Mapping[str, Any] | None,
    *,
    max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
    max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
) -> dict[str, Any]:
    """A tool's parameters schema made fit for constrained decoding.

    ``$ref``s inlined; BFCL type aliases (``dict``, ``float``...) normalised; objects with
    declared properties closed (``additionalProperties: false`` unless set); strings and
    arrays without a bound get ``maxLength``/``maxItems`` (so a small model cannot run
    on until ``max_tokens`` cuts the JSON off).
    """
    schema = inline_schema_refs(dict(parameters or {}))

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs", "definitions"):
                out[key] = {k: fix(v) for k, v in value.items()} if isinstance(value, Mapping) else value
            elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
                out[key] = fix(value)
            else:
                out[key] = value
        declared = out.get("type")
        if isinstance(declared, str):
            if declared == "any":
                out.pop("type")
            else:
                out["type"] = TYPE_ALIASES.get(declared, declared)
        elif isinstance(declared, list):
            kinds = [TYPE_ALIASES.get(t, t) for t in declared if t != "any"]
            if len(kinds) == len(declared):
                out["type"] = kinds
            else:
                out.pop("type")
        kinds = set(out["type"] if isinstance(out.get("type"), list) else [out.get("type")])
        if "const" in out or "enum" in out:
            return out
        if "object" in kinds and isinstance(out.get("properties"), Mapping) and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if "string" in kinds and max_string_chars and "maxLength" not in out and out.get("format") not in _BOUNDED_FORMATS:
            out["maxLength"] = max_string_chars
        if "array" in kinds and max_array_items and "maxItems" not in out:
            out["maxItems"] = max_array_items
        return out

    schema = fix(schema)
    schema.pop("$schema", None)
    if not schema:
        schema = {"type": "object", "properties": {}, "additionalProperties": False}
    if "type" not in schema and "properties" in schema:
        schema["type"] = "object"
    return schema


def _branch(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": dict(arguments)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _reply_branch(reply_max_chars: int) -> dict[str, Any]:
    return _branch(
        REPLY_TOOL,
        {
            "type": "object",
            "properties": {"content": {"type": "string", "maxLength": reply_max_chars}},
            "required": ["content"],
            "additionalProperties": False,
        },
    )


def tool_call_schema(
    tools: Iterable[Any],
    *,
    reply: bool = True,
    reply_max_chars: int = DEFAULT_REPLY_MAX_CHARS,
    max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
    max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
) -> dict[str, Any]:
    """The json_schema-mode output schema: ``{"anyOf": [<one branch per tool>, <reply>]}``."""
    branches = []
    for schema in openai_tool_schemas(tools):
        function = schema["function"]
        if function["name"] == REPLY_TOOL:
            raise ValueError(f"a tool may not be named {REPLY_TOOL!r}: json_schema mode uses that name for replies")
        arguments = constrain_arguments_schema(
            function.get("parameters"), max_string_chars=max_string_chars, max_array_items=max_array_items
        )
        branches.append(_branch(function["name"], arguments))
    if reply:
        branches.append(_reply_branch(reply_max_chars))
    if not branches:
        raise ValueError("the output schema needs at least one tool or the reply branch")
    return {"anyOf": branches}


def _type_text(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in list(schema["enum"])[:12])
    if "const" in schema:
        return json.dumps(schema["const"])
    declared = schema.get("type")
    if isinstance(declared, list):
        return " or ".join(TYPE_ALIASES.get(str(t), str(t)) for t in declared)
    if declared in ("array", "list", "tuple") and isinstance(schema.get("items"), Mapping):
        return f"array of {_type_text(schema['items'])}"
    if declared:
        return TYPE_ALIASES.get(str(declared), str(declared))
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return " or ".join(_type_text(o) for o in options if isinstance(o, Mapping))
    return "any"


def _describe_tool(function: Mapping[str, Any], max_description: int = 400) -> str:
    params = inline_schema_refs(dict(function.get("parameters") or {}))
    required = set(params.get("required") or [])
    description = " ".join(str(function.get("description") or "").split())
    if len(description) > max_description:
        description = description[: max_description - 3] + "..."
    lines = [f"- {function['name']}: {description}" if description else f"- {function['name']}"]
    properties = params.get("properties") or {}
    if not properties:
        lines.append("  arguments: none ({})")
    for name, spec in properties.items():
        spec = spec if isinstance(spec, Mapping) else {}
        text = f"  - {name} ({_type_text(spec)}{', required' if name in required else ''})"
        detail = " ".join(str(spec.get("description") or "").split())
        if detail:
            text += ": " + (detail if len(detail) <= 200 else detail[:197] + "...")
        lines.append(text)
    return "\n".join(lines)


def tool_instructions(tools: Iterable[Any], *, reply: bool = True) -> str:
    """The system-prompt block of json_schema mode: the answer format and the tools."""
    functions = [schema["function"] for schema in openai_tool_schemas(tools)]
    lines = ["# Tools", "Answer with exactly one JSON object and nothing else."]
    if functions:
        lines.append('To call a tool: {"name": "<tool name>", "arguments": {<its arguments>}}')
    if reply:
        lines.append(f'To write to the user: {{"name": "{REPLY_TOOL}", "arguments": {{"content": "<your message>"}}}}')
    lines.append("Call one tool at a time; its result comes back in a message that starts with \"Tool result\".")
    if functions:
        lines.append("")
        lines.append("Available tools:")
        lines.extend(_describe_tool(function) for function in functions)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# History for templates without tool roles
# ---------------------------------------------------------------------------


def _call_text(name: Any, args: Any) -> str:
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return json.dumps({"name": name, "arguments": args}, ensure_ascii=False, default=str)


def render_tool_history(messages: LanguageModelInput, *, merge_results: bool = True) -> list[BaseMessage]:
    """Earlier tool calls and tool results as plain assistant / user turns.

    An ``AIMessage`` with tool calls becomes an assistant turn whose text is its content
    plus one ``{"name": ..., "arguments": ...}`` line per call (what json_schema mode makes
    the model write); a ``ToolMessage`` becomes a user turn ``Tool result (<tool>): ...``
    (``Tool error`` for an error result). Consecutive results merge into one user turn
    (``merge_results``), so templates that insist on alternating roles still render. Other
    messages pass unchanged.
    """
    source = as_messages(messages)
    names: dict[str, str] = {}
    out: list[BaseMessage] = []
    last_was_result = False
    for message in source:
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            parts = [message_text(message).strip()]
            for call in message.tool_calls:
                names[str(call.get("id"))] = str(call.get("name"))
                parts.append(_call_text(call.get("name"), call.get("args")))
            for call in message.invalid_tool_calls:
                names[str(call.get("id"))] = str(call.get("name"))
                parts.append(_call_text(call.get("name"), call.get("args")))
            out.append(AIMessage(content="\n".join(p for p in parts if p), name=message.name, id=message.id))
            last_was_result = False
        elif isinstance(message, ToolMessage):
            tool = message.name or names.get(str(message.tool_call_id)) or "tool"
            label = "Tool error" if getattr(message, "status", "success") == "error" else "Tool result"
            text = f"{label} ({tool}): {message_text(message)}"
            if merge_results and last_was_result and out:
                previous = out[-1]
                out[-1] = HumanMessage(content=f"{message_text(previous)}\n\n{text}")
            else:
                out.append(HumanMessage(content=text))
            last_was_result = True
        else:
            out.append(message)
            last_was_result = False
    return out


def _with_instructions(messages: list[BaseMessage], block: str) -> list[BaseMessage]:
    if messages and isinstance(messages[0], SystemMessage):
        first = messages[0]
        head = message_text(first).rstrip()
        return [SystemMessage(content=f"{head}\n\n{block}" if head else block, id=first.id), *messages[1:]]
    return [SystemMessage(content=block), *messages]


# ---------------------------------------------------------------------------
# Parsing json_schema-mode output
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedToolOutput:
    """One json_schema-mode answer: a tool call (``name``, ``arguments``) or a reply (``content``)."""

    name: str
    arguments: dict[str, Any]
    content: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.content is not None


class ToolOutputError(ValueError):
    """A json_schema-mode answer that is not a tool call or a reply (``kind``: a FailureKind)."""

    def __init__(self, kind: FailureKind, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


def parse_tool_output(text: str) -> ParsedToolOutput:
    """Read ``{"name": ..., "arguments": {...}}`` from model text (JSON only, never evaluated).

    Lenient about what unconstrained endpoints produce: code fences, prose around the
    object, ``args``/``parameters`` for ``arguments``, arguments as a JSON string, the
    OpenAI ``{"function": {...}}`` shape, a reply's text directly in ``content``. Any tool
    name is accepted (the caller decides whether it exists). Raises :class:`ToolOutputError`.
    """
    try:
        data = load_json_output(text)
    except ValueError as exc:
        raise ToolOutputError(FailureKind.EMPTY if not str(text).strip() else FailureKind.MALFORMED_JSON, str(exc)) from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise ToolOutputError(FailureKind.MALFORMED_JSON, f"expected one JSON object, got {type(data).__name__}")
    if isinstance(data.get("function"), dict) and "name" not in data:
        data = data["function"]
    name = data.get("name", data.get("tool"))
    if not isinstance(name, str) or not name.strip():
        if "name" not in data and isinstance(data.get("content"), str) and len(data) == 1:
            return ParsedToolOutput(REPLY_TOOL, {"content": data["content"]}, data["content"])
        raise ToolOutputError(FailureKind.VALIDATION, 'the object needs a "name": a tool name or "reply_to_user"')
    name = name.strip()
    arguments: Any = {}
    for key in ("arguments", "args", "parameters"):
        if key in data:
            arguments = data[key]
            break
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            if name == REPLY_TOOL:
                arguments = {"content": arguments}
            else:
                raise ToolOutputError(FailureKind.MALFORMED_JSON, f'"arguments" of {name} is not a JSON object', name) from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolOutputError(
            FailureKind.VALIDATION, f'"arguments" must be a JSON object, got {type(arguments).__name__}', name
        )
    if name == REPLY_TOOL:
        content = arguments.get("content", data.get("content"))
        if not isinstance(content, str):
            raise ToolOutputError(FailureKind.VALIDATION, f'{REPLY_TOOL} needs "arguments": {{"content": "<text>"}}', name)
        return ParsedToolOutput(name, {"content": content}, content)
    return ParsedToolOutput(name, arguments)


def tool_calling_failure(message: BaseMessage) -> dict[str, Any] | None:
    """Why a json_schema-mode reply holds no usable answer (``None`` when it does).

    ``{"kind": <FailureKind value>, "message": ..., "attempts": n}``; the reply then has one
    ``invalid_tool_calls`` entry carrying the same error.
    """
    info = (getattr(message, "response_metadata", None) or {}).get(METADATA_KEY) or {}
    if info.get("ok", True):
        return None
    return {"kind": info.get("failure_kind"), "message": info.get("error"), "attempts": info.get("attempts")}


# ---------------------------------------------------------------------------
# The runnable
# ---------------------------------------------------------------------------

REPAIR_INSTRUCTION = (
    'Answer again with exactly one JSON object: {"name": "<tool name>", "arguments": {...}} to call a tool, '
    f'or {{"name": "{REPLY_TOOL}", "arguments": {{"content": "..."}}}} to write to the user. No other text.'
)


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _forced(tool_choice: Any, names: list[str]) -> tuple[list[str], bool]:
    """(tool names allowed, reply allowed) for a tool_choice in json_schema mode."""
    if tool_choice in (None, "auto", False):
        return names, True
    if tool_choice == "none":
        return [], True
    if tool_choice in ("required", "any", True):
        return names, False
    chosen = None
    if isinstance(tool_choice, str):
        chosen = tool_choice
    elif isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        chosen = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
    if chosen not in names:
        raise ValueError(f"tool_choice {tool_choice!r} names no bound tool; tools: {names}")
    return [chosen], False


class DomainToolRunnable(Runnable[LanguageModelInput, AIMessage]):
    """``messages -> AIMessage`` with tool calls, natively or through JSON-schema output.

    Made by :func:`bind_domain_tools`; see the module docstring. ``mode`` is what was asked
    for; :meth:`resolved_mode` is what the next call uses.
    """

    def __init__(
        self,
        model: Runnable,
        tools: Sequence[Any],
        mode: ToolMode = "auto",
        *,
        max_tokens: int | None = None,
        reply_max_chars: int = DEFAULT_REPLY_MAX_CHARS,
        max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
        max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
        repair: bool = True,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
    ) -> None:
        if mode not in ("auto", "native", "json_schema"):
            raise ValueError(f"mode must be 'auto', 'native' or 'json_schema', got {mode!r}")
        if not isinstance(model, Runnable):
            raise TypeError(f"model must be a LangChain chat model (a Runnable), got {type(model).__name__}")
        self.model = model
        self.mode: ToolMode = mode
        self.tool_schemas = openai_tool_schemas(tools)
        self.tool_names = [s["function"]["name"] for s in self.tool_schemas]
        if REPLY_TOOL in self.tool_names:
            raise ValueError(f"a tool may not be named {REPLY_TOOL!r}: json_schema mode uses that name for replies")
        self.repair = repair
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.max_tokens = capped_max_tokens(model, max_tokens, DEFAULT_TOOL_MAX_TOKENS)
        # Keep the bounds inside what max_tokens can hold (a string of N chars is at most
        # about N/2 tokens in ordinary text), so constrained output closes its JSON in time.
        reply_max_chars = max(16, min(reply_max_chars, 2 * self.max_tokens))
        if max_string_chars is not None:
            max_string_chars = max(16, min(max_string_chars, self.max_tokens))
        self.reply_max_chars = reply_max_chars
        self.max_string_chars = max_string_chars
        allowed, reply = _forced(tool_choice, self.tool_names)
        allowed_set = set(allowed)
        selected = [s for s in self.tool_schemas if s["function"]["name"] in allowed_set]
        self.call_schema = tool_call_schema(
            selected,
            reply=reply,
            reply_max_chars=reply_max_chars,
            max_string_chars=max_string_chars,
            max_array_items=max_array_items,
        )
        self.response_format = {
            "type": "json_schema",
            "json_schema": {"name": "tool_call_or_reply", "schema": self.call_schema},
        }
        self.instructions = tool_instructions(selected, reply=reply)
        self.name = f"domain_tools[{mode}]"
        self._native: Runnable | None = None
        self._json: Runnable | None = None

    # -- what a call does --------------------------------------------------------------------

    def resolved_mode(self) -> Literal["native", "json_schema"]:
        if self.mode != "auto":
            return self.mode
        return "json_schema" if native_tool_support(self.model) is False else "native"

    @property
    def native_model(self) -> Runnable:
        if self._native is None:
            kwargs: dict[str, Any] = {}
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                kwargs["parallel_tool_calls"] = self.parallel_tool_calls
            model = self.model
            base = base_model_of(model)
            if not hasattr(base, "bind_tools"):
                raise TypeError(f"native tool calling needs a chat model with bind_tools, got {type(base).__name__}")
            bound = base.bind_tools(self.tool_schemas, **kwargs)
            self._native = rewrap_binding(model, bound) if base is not model else bound
        return self._native

    @property
    def json_model(self) -> Runnable:
        if self._json is None:
            self._json = self.model.bind(response_format=self.response_format, max_tokens=self.max_tokens)
        return self._json

    def prepare_json_messages(self, messages: LanguageModelInput) -> list[BaseMessage]:
        """The conversation json_schema mode sends: history as text, the tools block in the system prompt."""
        return _with_instructions(render_tool_history(messages), self.instructions)

    # -- Runnable ------------------------------------------------------------------------------

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:  # noqa: A002
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:  # noqa: A002
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(self, input: LanguageModelInput, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> AIMessage:  # noqa: A002
        child = patch_config(config, callbacks=run_manager.get_child())
        if self.resolved_mode() == "json_schema":
            return self._json_call(input, child, kwargs)
        try:
            return self.native_model.invoke(input, child, **kwargs)
        except Exception as exc:
            if self.mode != "auto" or not _rejects_tools(exc):
                raise
            log.info("%s rejected native tools (%s); trying json_schema mode", model_key(self.model), exc)
            try:
                reply = self._json_call(input, child, kwargs)
            except Exception:
                raise exc from None
            set_native_tool_support(self.model, False)
            return reply

    async def _ainvoke(self, input: LanguageModelInput, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> AIMessage:  # noqa: A002
        child = patch_config(config, callbacks=run_manager.get_child())
        if self.resolved_mode() == "json_schema":
            return await self._ajson_call(input, child, kwargs)
        try:
            return await self.native_model.ainvoke(input, child, **kwargs)
        except Exception as exc:
            if self.mode != "auto" or not _rejects_tools(exc):
                raise
            log.info("%s rejected native tools (%s); trying json_schema mode", model_key(self.model), exc)
            try:
                reply = await self._ajson_call(input, child, kwargs)
            except Exception:
                raise exc from None
            set_native_tool_support(self.model, False)
            return reply

    def _json_call(self, input: LanguageModelInput, config: RunnableConfig, kwargs: dict[str, Any]) -> AIMessage:  # noqa: A002
        model = self.json_model
        return drive(self._json_steps(self.prepare_json_messages(input)), lambda req: model.invoke(req, config, **kwargs))

    async def _ajson_call(self, input: LanguageModelInput, config: RunnableConfig, kwargs: dict[str, Any]) -> AIMessage:  # noqa: A002
        model = self.json_model
        return await adrive(
            self._json_steps(self.prepare_json_messages(input)), lambda req: model.ainvoke(req, config, **kwargs)
        )

    def _json_steps(self, messages: list[BaseMessage]) -> Steps:
        failures: list[StructuredOutputFailure] = []
        replies: list[AIMessage | None] = []
        request = messages
        attempts = 2 if self.repair else 1
        guessed_name: str | None = None
        for attempt in range(1, attempts + 1):
            outcome: Outcome = yield request
            replies.append(outcome.message)
            if outcome.error is not None:
                failure = failure_from_exception(outcome.error, attempt)
            else:
                message = outcome.message
                assert message is not None
                if message.tool_calls:  # the endpoint answered with native calls after all
                    return self._finish(message, replies, attempt, None)
                text = message_text(message)
                finish = (message.response_metadata or {}).get("finish_reason")
                try:
                    parsed = parse_tool_output(text)
                except ToolOutputError as bad:
                    guessed_name = bad.name or guessed_name
                    kind = FailureKind.TRUNCATED if finish == "length" and bad.kind != FailureKind.VALIDATION else bad.kind
                    detail = str(bad)
                    if kind == FailureKind.TRUNCATED:
                        detail += "; it was cut off at the token limit, answer more briefly"
                    failure = StructuredOutputFailure(kind, detail, text, attempt)
                else:
                    return self._finish(message, replies, attempt, parsed)
            failures.append(failure)
            request = next_request(messages, failure, REPAIR_INSTRUCTION)
        last = failures[-1]
        bad_call = invalid_tool_call(
            name=guessed_name, args=(last.raw_text or "")[:2000], id=_new_call_id(), error=f"{last.kind.value}: {last.message}"
        )
        base = next((r for r in reversed(replies) if r is not None), None)
        metadata = dict(base.response_metadata) if base is not None else {}
        metadata[METADATA_KEY] = {
            "mode": "json_schema",
            "ok": False,
            "attempts": len(replies),
            "failure_kind": last.kind.value,
            "error": last.message,
            "errors": [f.message for f in failures],
        }
        return AIMessage(
            content="",
            invalid_tool_calls=[bad_call],
            response_metadata=metadata,
            usage_metadata=sum_usage(replies),
            id=base.id if base is not None else None,
        )

    def _finish(
        self, message: AIMessage, replies: list[AIMessage | None], attempt: int, parsed: ParsedToolOutput | None
    ) -> AIMessage:
        metadata = dict(message.response_metadata)
        metadata[METADATA_KEY] = {"mode": "json_schema", "ok": True, "attempts": attempt}
        usage = sum_usage(replies)
        if parsed is None:
            reply = message.model_copy(update={"response_metadata": metadata, "usage_metadata": usage})
            return reply
        if parsed.is_reply:
            return AIMessage(content=parsed.content, response_metadata=metadata, usage_metadata=usage, id=message.id)
        call = ToolCall(name=parsed.name, args=parsed.arguments, id=_new_call_id(), type="tool_call")
        return AIMessage(content="", tool_calls=[call], response_metadata=metadata, usage_metadata=usage, id=message.id)

    def __repr__(self) -> str:
        return f"DomainToolRunnable(mode={self.mode!r}, tools={self.tool_names!r}, model={model_key(self.model)!r})"


def bind_domain_tools(
    model: Runnable,
    tools: Sequence[Any],
    mode: ToolMode = "auto",
    *,
    max_tokens: int | None = None,
    reply_max_chars: int = DEFAULT_REPLY_MAX_CHARS,
    max_string_chars: int | None = DEFAULT_MAX_STRING_CHARS,
    max_array_items: int | None = DEFAULT_MAX_ARRAY_ITEMS,
    repair: bool = True,
    tool_choice: Any = None,
    parallel_tool_calls: bool | None = None,
) -> DomainToolRunnable:
    """A runnable ``messages -> AIMessage`` that can call ``tools`` whatever ``model`` supports.

    Args:
        model: a chat model (``ChatOpenAI``, the embedded model's client, a test double) or
            a binding of one.
        tools: ``ToolSpec``s (anything with ``openai_schema()``), OpenAI tool dicts, LangChain
            tools or pydantic models.
        mode: ``"auto"`` (default), ``"native"`` or ``"json_schema"`` (module docstring).
        max_tokens: json_schema mode's cap on the reply: the smaller of this and the model's
            own ``max_tokens`` (default: the model's own, else ``DEFAULT_TOOL_MAX_TOKENS``).
        reply_max_chars: ``maxLength`` of a reply to the user in json_schema mode (lowered
            to ``2 * max_tokens`` so that a reply fits the token cap).
        max_string_chars / max_array_items: bounds added to tool-argument strings and arrays
            that have none, in json_schema mode (``None``: add none); strings are lowered
            to ``max_tokens`` characters.
        repair: in json_schema mode, one repair turn for an unreadable answer.
        tool_choice: ``None``/``"auto"``, ``"required"``, ``"none"`` or a tool name, as for
            ``bind_tools``; json_schema mode narrows the output schema to match.
        parallel_tool_calls: passed to ``bind_tools`` in native mode.
    """
    return DomainToolRunnable(
        model,
        tools,
        mode,
        max_tokens=max_tokens,
        reply_max_chars=reply_max_chars,
        max_string_chars=max_string_chars,
        max_array_items=max_array_items,
        repair=repair,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
    )
