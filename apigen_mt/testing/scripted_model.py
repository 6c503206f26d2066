"""``ScriptedChatModel``: a deterministic chat model that replies from a script.

It is a real :class:`~langchain_core.language_models.BaseChatModel`, so it works wherever
``ChatOpenAI`` does: ``invoke``/``ainvoke``/``batch``/``abatch``, ``stream``/``astream``
(including LangGraph's ``stream_mode="messages"``), ``bind_tools`` and
``with_structured_output`` (the ``json_schema``, ``function_calling`` and ``json_mode``
methods, with ``include_raw``), inside LangGraph nodes and LCEL chains.

Script items, consumed one per model call, in order:

- ``str``: an assistant message with that text;
- ``AIMessage``: used as is (a copy);
- a message spec ``dict`` whose keys are among ``content``, ``tool_calls``,
  ``invalid_tool_calls``, ``additional_kwargs``, ``response_metadata``,
  ``usage_metadata``, ``id``, ``name`` (and that has ``content`` or ``tool_calls``), e.g.
  ``{"content": "", "tool_calls": [{"name": "get_order", "args": {"order_id": "1"}}]}``.
  Tool calls may be LangChain style (``name``/``args``/``id``), use ``arguments`` (a dict, or a
  string: a string that is not a JSON object becomes an *invalid* tool call), or be OpenAI
  style (``{"function": {"name", "arguments"}}``); see :func:`tool_call`;
- structured data (any other ``dict``, a ``list``, a pydantic model instance, or
  :func:`structured` to force that reading of a dict): the reply's content is its JSON text;
- a ``BaseException`` instance: raised by that call (test error handling and retries);
- a callable ``(messages) -> item``: a reactive reply, called with the messages the model
  received; it returns any item above. In async calls it may be a coroutine function.

When the call forces one tool (``tool_choice`` naming it, or ``"required"``/``"any"`` with a
single bound tool, as ``with_structured_output(method="function_calling")`` does) and the
reply has no tool calls but its content is a JSON object, the reply becomes a call of that
tool with those arguments, as a real model constrained to that tool would answer.

``script`` may also be a dict of scripts keyed by role. Each call picks its key from, in
order: a ``script_key`` call/bind argument (``model.bind(script_key="critic")``), the
``script_key`` or ``role`` run metadata, the first run tag that is a key
(``model.with_config(tags=["critic"])``), the LangGraph node name (``langgraph_node``
metadata), then ``"default"``.

Consumption is thread-safe and asyncio-safe: each call takes the next reply under a lock
before any latency or await, so concurrent callers get replies in arrival order (use keyed
scripts or callables where the order of concurrent calls is not fixed).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCall,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call_chunk
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
)
from langchain_core.runnables.config import ensure_config
from langchain_core.utils.function_calling import (
    convert_to_openai_function,
    convert_to_openai_tool,
)
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

__all__ = [
    "ScriptError",
    "ScriptExhaustedError",
    "ScriptedCall",
    "ScriptedChatModel",
    "structured",
    "tool_call",
]

DEFAULT_KEY = "default"
_MESSAGE_KEYS = frozenset(
    {
        "content",
        "tool_calls",
        "invalid_tool_calls",
        "additional_kwargs",
        "response_metadata",
        "usage_metadata",
        "id",
        "name",
    }
)
_WELL_KNOWN_CHOICES = ("auto", "none", "required", "any")


class ScriptError(RuntimeError):
    """A scripted double cannot answer a call: no script for the call's key, a bad item."""


class ScriptExhaustedError(ScriptError):
    """A scripted double was called more often than its script has replies."""


@dataclass(frozen=True)
class structured:  # noqa: N801 - reads as a marker: structured({...})
    """Marks a script item as structured data (JSON content, or the forced tool's arguments).

    Needed only for a dict that would otherwise read as a message spec, e.g. data with a
    single ``content`` field: ``structured({"content": "hi"})``.
    """

    data: Any


def tool_call(name: str, args: Mapping[str, Any] | str | None = None, *, id: str | None = None) -> dict:  # noqa: A002
    """A one-tool-call reply for a script: ``{"content": "", "tool_calls": [...]}``.

    ``args`` may be a string; one that is not a JSON object makes an invalid tool call (what
    a model emitting broken arguments produces).
    """
    call: dict[str, Any] = {"name": name, "arguments": args if isinstance(args, str) else dict(args or {})}
    if id is not None:
        call["id"] = id
    return {"content": "", "tool_calls": [call]}


@dataclass
class ScriptedCall:
    """One call a scripted double received (for assertions)."""

    index: int
    """1-based number of the call across all keys."""
    key: str | None
    """The script key the call consumed (``None`` for a plain list script)."""
    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    """Call/bind arguments: ``tools``, ``tool_choice``, ``response_format``, ``stop``..."""
    response: AIMessage | None = None
    """The reply (``None`` when the call raised)."""
    error: BaseException | None = None

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.kwargs.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [_tool_name(t) for t in self.tools]


# ---------------------------------------------------------------------------
# Reply normalisation (shared with the OpenAI stub server)
# ---------------------------------------------------------------------------


def message_text(message: BaseMessage | Mapping[str, Any]) -> str:
    """The text of a message (LangChain message or OpenAI-format dict), for token estimates."""
    if isinstance(message, BaseMessage):
        content: Any = message.content
        calls = getattr(message, "tool_calls", None) or []
        extra = [json.dumps(c.get("args", {}), sort_keys=True) for c in calls]
    else:
        content = message.get("content")
        extra = [
            str((c.get("function") or {}).get("arguments", ""))
            for c in (message.get("tool_calls") or [])
        ]
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        text = " ".join(parts)
    else:
        text = ""
    return " ".join([text, *extra]) if extra else text


def count_tokens(text: str) -> int:
    """Token estimate used by the doubles: whitespace-separated words."""
    return len(text.split())


def _is_message_spec(item: Mapping[str, Any]) -> bool:
    keys = set(item)
    return bool(keys) and keys <= _MESSAGE_KEYS and bool(
        keys & {"content", "tool_calls", "invalid_tool_calls"}
    )


def _tool_name(tool: Mapping[str, Any]) -> str:
    if "function" in tool:
        return str(tool["function"].get("name"))
    return str(tool.get("name"))


def forced_tool_name(tool_choice: Any, tools: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The one tool a call is forced to use, or ``None`` (OpenAI/LangChain tool_choice forms)."""
    tools = list(tools or [])
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        if isinstance(fn, dict) and fn.get("name"):
            return str(fn["name"])
        if tool_choice.get("name"):
            return str(tool_choice["name"])
        return None
    if tool_choice in ("required", "any", True) and len(tools) == 1:
        return _tool_name(tools[0])
    if isinstance(tool_choice, str) and tool_choice not in _WELL_KNOWN_CHOICES:
        names = [_tool_name(t) for t in tools]
        if tool_choice in names:
            return tool_choice
    return None


def _jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    return data


def _normalize_tool_calls(specs: Sequence[Any], call_index: int) -> tuple[list[ToolCall], list[dict]]:
    valid: list[ToolCall] = []
    invalid: list[dict] = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        if "function" in spec:  # OpenAI format
            fn = spec["function"]
            name, args = fn.get("name"), fn.get("arguments", {})
        else:
            name = spec.get("name")
            args = spec["args"] if "args" in spec else spec.get("arguments", {})
        call_id = spec.get("id") or f"call_{call_index}_{i}"
        if isinstance(args, str):
            try:
                parsed = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                invalid.append(invalid_tool_call(name=name, args=args, id=call_id, error=str(exc)))
                continue
            if not isinstance(parsed, dict):
                invalid.append(
                    invalid_tool_call(name=name, args=args, id=call_id, error="arguments are not a JSON object")
                )
                continue
            args = parsed
        valid.append(ToolCall(name=str(name), args=dict(_jsonable(args) or {}), id=call_id, type="tool_call"))
    return valid, invalid


def to_ai_message(item: Any, *, call_index: int, forced_tool: str | None = None) -> AIMessage:
    """Turn one (non-callable, non-exception) script item into an ``AIMessage``."""
    if isinstance(item, structured):
        data = _jsonable(item.data)
        msg = AIMessage(content=json.dumps(data))
    elif isinstance(item, AIMessage):
        msg = item.model_copy(deep=True)
        if isinstance(msg, AIMessageChunk):
            msg = message_chunk_to_message(msg)
    elif isinstance(item, str):
        msg = AIMessage(content=item)
    elif isinstance(item, Mapping) and _is_message_spec(item):
        spec = dict(item)
        valid, invalid = _normalize_tool_calls(spec.pop("tool_calls", None) or [], call_index)
        invalid += [dict(c) for c in spec.pop("invalid_tool_calls", None) or []]
        content = spec.pop("content", "")
        msg = AIMessage(
            content=content if content is not None else "",
            tool_calls=valid,
            invalid_tool_calls=invalid,
            **copy.deepcopy(spec),
        )
    elif isinstance(item, (Mapping, list, tuple, BaseModel)):
        msg = AIMessage(content=json.dumps(_jsonable(dict(item) if isinstance(item, Mapping) else item)))
    else:
        raise TypeError(
            f"unsupported script item {item!r} ({type(item).__name__}); expected str, AIMessage, "
            "dict, list, pydantic model, structured(...), an exception or a callable"
        )
    if forced_tool and not msg.tool_calls and not msg.invalid_tool_calls and isinstance(msg.content, str):
        try:
            data = json.loads(msg.content)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            msg = AIMessage(
                content="",
                tool_calls=[ToolCall(name=forced_tool, args=data, id=f"call_{call_index}_0", type="tool_call")],
                additional_kwargs=msg.additional_kwargs,
                response_metadata=msg.response_metadata,
                usage_metadata=msg.usage_metadata,
                id=msg.id,
            )
    return msg


def _split_chunks(text: str, size: int | None) -> list[str]:
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\S+\s*|\s+", text)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script: deterministic, offline, drop-in for tests.

    ``ScriptedChatModel(["hello", tool_call("get_order", {"id": "1"}), {"answer": 42}])``

    Args:
        script: a list of replies, or a dict ``{key: [replies]}`` (see the module docstring).
        latency: seconds each call waits before replying (``time.sleep`` in sync calls,
            ``asyncio.sleep`` in async ones), for benchmarks.
        stream_chunk_chars: chunk size when streaming content; default: one chunk per word.
        model_name: reported in ``response_metadata``.

    After use, ``calls`` lists every call (messages, kwargs, reply) and ``bound_tools`` the
    tool schemas of the last ``bind_tools``. ``add_replies`` extends a script;
    ``assert_consumed`` fails when replies are left.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any = Field(default_factory=list, exclude=True, repr=False)
    """Left out of dumps and repr: LangChain dumps the model's fields on every call (for
    callbacks and cache keys), and a long script would cost more than the call."""
    latency: float = 0.0
    stream_chunk_chars: int | None = None
    model_name: str = "scripted"
    cache: Any = False  # never serve a reply from an LLM cache: the script decides

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _queues: dict[str | None, list[Any]] = PrivateAttr(default_factory=dict)
    _positions: dict[str | None, int] = PrivateAttr(default_factory=dict)
    _calls: list[ScriptedCall] = PrivateAttr(default_factory=list)
    _bound_tools: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def __init__(self, script: Any = None, /, **kwargs: Any) -> None:
        if script is not None:
            if "script" in kwargs:
                raise TypeError("script given both positionally and by keyword")
            kwargs["script"] = script
        super().__init__(**kwargs)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        script = self.script
        if isinstance(script, Mapping):
            self._queues = {str(k): list(v) for k, v in script.items()}
        elif isinstance(script, (list, tuple)):
            self._queues = {None: list(script)}
        else:
            raise TypeError(f"script must be a list of replies or a dict of such lists, got {type(script).__name__}")
        self._positions = dict.fromkeys(self._queues, 0)

    # -- introspection -------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    @property
    def keyed(self) -> bool:
        return None not in self._queues

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call received so far, in consumption order (a copy)."""
        with self._lock:
            return list(self._calls)

    @property
    def bound_tools(self) -> list[dict[str, Any]]:
        """OpenAI-format schemas of the tools given to the last ``bind_tools``."""
        return list(self._bound_tools)

    def remaining(self, key: str | None = None) -> int:
        """Replies not yet consumed (for ``key``, or in total when ``key`` is None)."""
        with self._lock:
            if key is not None or not self.keyed:
                k = key if self.keyed else None
                return len(self._queues.get(k, [])) - self._positions.get(k, 0)
            return sum(len(q) - self._positions[k] for k, q in self._queues.items())

    def add_replies(self, *items: Any, key: str | None = None) -> None:
        """Append replies to the script (to the ``key`` script of a keyed model)."""
        with self._lock:
            k = (key or DEFAULT_KEY) if self.keyed else None
            if key is not None and not self.keyed:
                raise ValueError("this model's script is a plain list: add replies without a key")
            self._queues.setdefault(k, []).extend(items)
            self._positions.setdefault(k, 0)

    def assert_consumed(self) -> None:
        """Raise ``AssertionError`` when some scripted replies were never used."""
        with self._lock:
            left = {k: len(q) - self._positions[k] for k, q in self._queues.items() if len(q) > self._positions[k]}
        if left:
            where = ", ".join(f"{k or 'script'}: {n}" for k, n in left.items())
            raise AssertionError(f"ScriptedChatModel: unused scripted replies ({where}) after {len(self._calls)} calls")

    # -- tools and structured output ------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | Any],
        *,
        tool_choice: dict | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools as ``ChatOpenAI.bind_tools`` does (same ``tool_choice`` forms)."""
        formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
        names = [_tool_name(t) for t in formatted]
        if tool_choice:
            if isinstance(tool_choice, str):
                if tool_choice in names:
                    tool_choice = {"type": "function", "function": {"name": tool_choice}}
                elif tool_choice == "any":
                    tool_choice = "required"
                elif tool_choice not in _WELL_KNOWN_CHOICES:
                    raise ValueError(f"tool_choice {tool_choice!r} names no bound tool; tools: {names}")
            elif isinstance(tool_choice, bool):
                tool_choice = "required"
            elif isinstance(tool_choice, dict):
                chosen = forced_tool_name(tool_choice, formatted)
                if chosen is not None and chosen not in names:
                    raise ValueError(f"tool_choice names {chosen!r}, which is not among the bound tools {names}")
            else:
                raise ValueError(f"Unrecognized tool_choice type {type(tool_choice).__name__}: {tool_choice!r}")
            kwargs["tool_choice"] = tool_choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        self._bound_tools = formatted
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        tools: list | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict | BaseModel]:
        """Structured output the way ``ChatOpenAI`` does it (same methods, parsers, include_raw).

        - ``json_schema`` (default): binds ``response_format``; the reply content is parsed as
          JSON (a pydantic schema validates it; a dict schema returns the parsed dict).
        - ``function_calling``: binds the schema as the one forced tool; a reply that is JSON
          data becomes that tool's call; the tool arguments are parsed (and validated).
        - ``json_mode``: binds ``response_format={"type": "json_object"}``; content parsed.

        Parse failures raise ``OutputParserException`` (a ``ValueError``), or land in
        ``parsing_error`` with ``include_raw=True``.
        """
        if strict is not None and method == "json_mode":
            raise ValueError("Argument `strict` is not supported with `method`='json_mode'")
        if schema is None and method != "json_mode":
            raise ValueError("schema must be specified when method is not 'json_mode'. Received None.")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        output_parser: Runnable
        if method == "function_calling":
            tool_name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools(
                [schema],
                tool_choice=tool_name,
                parallel_tool_calls=False,
                strict=strict,
                ls_structured_output_format=ls_format,
                **kwargs,
            )
            output_parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
        elif method == "json_mode":
            llm = self.bind(
                response_format={"type": "json_object"},
                ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
                **kwargs,
            )
            output_parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        elif method == "json_schema":
            bind_kwargs: dict[str, Any] = {
                "response_format": _response_format(schema, strict),
                "ls_structured_output_format": {
                    "kwargs": {"method": method, "strict": strict},
                    "schema": convert_to_openai_tool(schema),
                },
                **kwargs,
            }
            if tools:
                bind_kwargs["tools"] = [convert_to_openai_tool(t, strict=strict) for t in tools]
            llm = self.bind(**bind_kwargs)
            if is_pydantic:
                output_parser = RunnableLambda(lambda msg: _parse_structured(msg, schema)).with_types(
                    output_type=schema
                )
            else:
                output_parser = JsonOutputParser()
        else:
            raise ValueError(
                "Unrecognized method argument. Expected one of 'function_calling', 'json_schema' "
                f"or 'json_mode'. Received: '{method}'"
            )
        if include_raw:
            parser_assign = RunnablePassthrough.assign(
                parsed=itemgetter("raw") | output_parser, parsing_error=lambda _: None
            )
            parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
            parser_with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
            return RunnableMap(raw=llm) | parser_with_fallback
        return llm | output_parser

    # -- public entry points: pick the script key from the run config ---------------------

    def _with_key(self, config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.keyed or "script_key" in kwargs:
            return kwargs
        cfg = ensure_config(config)
        key = self._key_from(cfg.get("tags") or [], cfg.get("metadata") or {})
        return {**kwargs, "script_key": key} if key is not None else kwargs

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any) -> AIMessage:  # noqa: A002, D102
        return super().invoke(input, config, stop=stop, **self._with_key(config, kwargs))

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any) -> AIMessage:  # noqa: A002, D102
        return await super().ainvoke(input, config, stop=stop, **self._with_key(config, kwargs))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:  # noqa: A002, D102
        yield from super().stream(input, config, stop=stop, **self._with_key(config, kwargs))

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *, stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:  # noqa: A002, D102
        async for chunk in super().astream(input, config, stop=stop, **self._with_key(config, kwargs)):
            yield chunk

    # -- script consumption ------------------------------------------------------------------

    def _key_from(self, tags: Sequence[str], metadata: Mapping[str, Any]) -> str | None:
        keys = self._queues
        for name in ("script_key", "role"):
            value = metadata.get(name)
            if isinstance(value, str) and value in keys:
                return value
        for tag in tags:
            if tag in keys:
                return tag
        node = metadata.get("langgraph_node")
        if isinstance(node, str) and node in keys:
            return node
        return None

    def _resolve_key(self, kwargs: dict[str, Any], run_manager: Any) -> str | None:
        if not self.keyed:
            return None
        key = kwargs.get("script_key")
        if key is None and run_manager is not None:
            key = self._key_from(
                [*getattr(run_manager, "tags", []), *getattr(run_manager, "inheritable_tags", [])],
                {**getattr(run_manager, "inheritable_metadata", {}), **getattr(run_manager, "metadata", {})},
            )
        if key is None:
            key = DEFAULT_KEY
        if key not in self._queues:
            raise ScriptError(
                f"ScriptedChatModel: no script for key {key!r} (keys: {sorted(self._queues)}); "
                "choose one with script_key=..., run metadata role/script_key, a tag, the "
                "LangGraph node name, or add a 'default' script"
            )
        return key

    def _take(self, messages: list[BaseMessage], kwargs: dict[str, Any], run_manager: Any) -> tuple[Any, ScriptedCall, str | None]:
        kwargs = dict(kwargs)
        kwargs.pop("ls_structured_output_format", None)
        key = self._resolve_key(kwargs, run_manager)
        kwargs.pop("script_key", None)
        with self._lock:
            index = len(self._calls) + 1
            call = ScriptedCall(index=index, key=key, messages=list(messages), kwargs=kwargs)
            self._calls.append(call)
            queue, pos = self._queues[key], self._positions[key]
            if pos >= len(queue):
                answered = sum(1 for c in self._calls if c.response is not None)
                err = ScriptExhaustedError(
                    f"ScriptedChatModel: script{'' if key is None else f' {key!r}'} exhausted: it held "
                    f"{len(queue)} replies and all were used; this is call #{index} "
                    f"({index} calls made in total, {answered} answered). Add replies or look for "
                    "an unexpected extra model call."
                )
                call.error = err
                raise err
            self._positions[key] = pos + 1
            item = queue[pos]
        forced = forced_tool_name(kwargs.get("tool_choice"), kwargs.get("tools"))
        return item, call, forced

    def _finish(self, item: Any, call: ScriptedCall, forced: str | None) -> AIMessage:
        if isinstance(item, BaseException):
            call.error = item
            raise item
        try:
            msg = to_ai_message(item, call_index=call.index, forced_tool=forced)
        except Exception as exc:
            call.error = exc
            raise
        if msg.usage_metadata is None:
            inp = sum(count_tokens(message_text(m)) for m in call.messages)
            out = count_tokens(message_text(msg)) + sum(count_tokens(c["name"]) for c in msg.tool_calls)
            msg.usage_metadata = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
        msg.response_metadata = {
            "model_name": self.model_name,
            "finish_reason": "tool_calls" if (msg.tool_calls or msg.invalid_tool_calls) else "stop",
            **msg.response_metadata,
        }
        _attach_parsed(msg, call.kwargs.get("response_format"))
        call.response = msg
        return msg

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any], run_manager: Any) -> AIMessage:
        item, call, forced = self._take(messages, kwargs, run_manager)
        if callable(item) and not isinstance(item, (BaseException, BaseModel, type)):
            try:
                item = item(list(messages))
            except Exception as exc:
                call.error = exc
                raise
            if inspect.isawaitable(item):
                if hasattr(item, "close"):
                    item.close()
                err = TypeError("an async script callable was used by a sync call; use ainvoke/astream")
                call.error = err
                raise err
        if self.latency:
            time.sleep(self.latency)
        return self._finish(item, call, forced)

    async def _areply(self, messages: list[BaseMessage], kwargs: dict[str, Any], run_manager: Any) -> AIMessage:
        item, call, forced = self._take(messages, kwargs, run_manager)
        if callable(item) and not isinstance(item, (BaseException, BaseModel, type)):
            try:
                item = item(list(messages))
                if inspect.isawaitable(item):
                    item = await item
            except Exception as exc:
                call.error = exc
                raise
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._finish(item, call, forced)

    # -- BaseChatModel hooks ---------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if stop is not None:
            kwargs["stop"] = stop
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, kwargs, run_manager))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if stop is not None:
            kwargs["stop"] = stop
        msg = await self._areply(messages, kwargs, run_manager)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if stop is not None:
            kwargs["stop"] = stop
        yield from self._chunks(self._reply(messages, kwargs, run_manager))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if stop is not None:
            kwargs["stop"] = stop
        msg = await self._areply(messages, kwargs, run_manager)
        for chunk in self._chunks(msg):
            yield chunk
            await asyncio.sleep(0)

    def _chunks(self, msg: AIMessage) -> Iterator[ChatGenerationChunk]:
        """The reply as stream chunks: content pieces, tool-call chunks, then usage + metadata."""
        if isinstance(msg.content, str):
            pieces: list[Any] = _split_chunks(msg.content, self.stream_chunk_chars)
        else:
            pieces = [msg.content] if msg.content else []
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece, id=msg.id))
        calls = [(c["name"], json.dumps(c["args"]), c["id"]) for c in msg.tool_calls]
        calls += [(c.get("name"), c.get("args"), c.get("id")) for c in msg.invalid_tool_calls]
        for i, (name, args, call_id) in enumerate(calls):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="", id=msg.id, tool_call_chunks=[tool_call_chunk(name=name, args=args, id=call_id, index=i)]
                )
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=msg.id,
                usage_metadata=msg.usage_metadata,
                response_metadata=dict(msg.response_metadata),
                additional_kwargs={k: v for k, v in msg.additional_kwargs.items() if k != "parsed"},
                chunk_position="last",
            ),
            generation_info={"finish_reason": msg.response_metadata.get("finish_reason")},
        )


# ---------------------------------------------------------------------------
# Structured-output helpers
# ---------------------------------------------------------------------------


def _response_format(schema: Any, strict: bool | None) -> Any:
    """``response_format`` as ChatOpenAI binds it: the pydantic class itself, else JSON schema."""
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        return schema
    if isinstance(schema, dict) and schema.get("type") == "json_schema" and "json_schema" in schema:
        return schema
    if isinstance(schema, dict) and "name" in schema and "schema" in schema:
        return {"type": "json_schema", "json_schema": schema}
    if strict is None:
        strict = schema.get("strict") if isinstance(schema, dict) and isinstance(schema.get("strict"), bool) else False
    function = convert_to_openai_function(schema, strict=strict)
    function["schema"] = function.pop("parameters")
    return {"type": "json_schema", "json_schema": function}


def _attach_parsed(msg: AIMessage, response_format: Any) -> None:
    """Like ChatOpenAI with a pydantic ``response_format``: valid content lands in ``parsed``."""
    if not (isinstance(response_format, type) and is_basemodel_subclass(response_format)):
        return
    if msg.tool_calls or not isinstance(msg.content, str) or "parsed" in msg.additional_kwargs:
        return
    try:
        msg.additional_kwargs["parsed"] = response_format.model_validate_json(msg.content)
    except ValidationError:
        pass  # the parser raises OutputParserException (or include_raw reports it)


def _parse_structured(msg: AIMessage, schema: type[BaseModel]) -> BaseModel | None:
    parsed = msg.additional_kwargs.get("parsed")
    if parsed is not None:
        return schema(**parsed) if isinstance(parsed, dict) else parsed
    if msg.additional_kwargs.get("refusal"):
        raise OutputParserException(f"model refused: {msg.additional_kwargs['refusal']}")
    if msg.tool_calls:
        return None
    text = message_text(msg) if not isinstance(msg.content, str) else msg.content
    try:
        return schema.model_validate_json(text)
    except ValidationError as exc:
        raise OutputParserException(
            f"Failed to parse {schema.__name__} from completion {text!r}: {exc}", llm_output=text
        ) from exc
