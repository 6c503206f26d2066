"""Structured (pydantic) outputs that never crash a run: parse -> validate -> repair once -> typed failure.

Every LLM role that must return data (generator, reviewer, feedback, critic, recombiner)
calls :func:`structured_call` (or :func:`astructured_call` in async code)::

    result = structured_call(model, Review, messages)
    if result.ok:
        review = result.value                  # a validated Review instance
    else:
        route_on(result.failure.kind)          # e.g. "validation", "malformed_json"

What happens
    1. The model is asked for the schema: ``method="json_schema"`` binds
       ``response_format={"type": "json_schema", ...}`` (constrained decoding on llama.cpp,
       structured outputs on OpenAI); ``method="function_calling"`` binds the schema as the
       one forced tool. ``max_tokens`` is always capped (see ``max_tokens`` below).
    2. The reply is parsed as JSON (plain text only: model output is data, never evaluated;
       a reply wrapped in code fences or with trailing text is still found) and validated
       with pydantic.
    3. If that fails and ``repair`` is on, the model gets ONE more turn: the invalid output
       and the exact error are appended to the conversation, with a request for a corrected
       answer.
    4. If it still fails, the result says so: ``ok=False``, ``error`` (text) and ``failure``
       (a :class:`StructuredOutputFailure` with a machine-readable ``kind``).

Malformed output of any sort (not JSON, wrong shape, failed validation, cut off at
``max_tokens``, a refusal, an unreadable HTTP body from the endpoint) never raises.
Programming errors do: a ``schema`` that is not a pydantic model, an unknown ``method``,
no messages. Transport errors (connection refused, 429/5xx) propagate too: they are not about
the output; a managed model has already retried them, and the runner records the item as
unfinished for ``apigen-mt resume``.

Why not ``with_structured_output(...).with_retry(...)``: it raises on bad output (a run must
not stop for it), retries blindly instead of showing the model its error, and says nothing
typed about why the output was unusable (a graph routes on :class:`FailureKind`).

Bounded schemas
    A small model under constrained decoding will happily emit an endless array or string;
    ``max_tokens`` then cuts the JSON off mid-way. Schemas used here should therefore bound
    every array (``Field(max_length=N)`` on a list -> ``maxItems``) and every string
    (``Field(max_length=N)`` -> ``maxLength``; ``Literal``/enums are bounded already).
    :func:`unbounded_fields` lists the fields that are not; :func:`bounded` is a class
    decorator that refuses an unbounded schema at import time. Tests run
    ``unbounded_fields`` over every schema the project ships.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Generic, Literal, TypeVar

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, convert_to_messages
from langchain_core.messages.ai import add_usage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from pydantic import BaseModel, Field, ValidationError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FailureKind",
    "LongStr",
    "MediumStr",
    "ShortStr",
    "StructuredOutputError",
    "StructuredOutputFailure",
    "StructuredResult",
    "astructured_call",
    "bounded",
    "format_validation_error",
    "json_schema_for",
    "load_json_output",
    "response_format_for",
    "structured_call",
    "unbounded_fields",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` for a structured call when neither the caller nor the model sets one."""

MAX_ECHO_CHARS = 4000
"""How much of an invalid output is shown back to the model in the repair turn."""

ShortStr = Annotated[str, Field(max_length=200)]
"""A name, an id, a short phrase."""
MediumStr = Annotated[str, Field(max_length=1000)]
"""A sentence or a short paragraph: a reason, a piece of feedback."""
LongStr = Annotated[str, Field(max_length=4000)]
"""An instruction or a message."""

T = TypeVar("T", bound=BaseModel)
Method = Literal["json_schema", "function_calling"]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


class FailureKind(str, Enum):
    """Why an output could not be used (a graph routes on these)."""

    MALFORMED_JSON = "malformed_json"
    """The output is not JSON (or not a JSON object)."""
    VALIDATION = "validation"
    """JSON, but it does not fit the schema."""
    TRUNCATED = "truncated"
    """The output was cut off at ``max_tokens``."""
    REFUSAL = "refusal"
    """The model refused (OpenAI ``refusal``, content filter)."""
    EMPTY = "empty"
    """No content and no tool call."""
    MALFORMED_RESPONSE = "malformed_response"
    """The endpoint's HTTP body itself could not be read."""


@dataclass(frozen=True)
class StructuredOutputFailure:
    """One failed attempt: its kind, the error (as shown to the model), the raw output."""

    kind: FailureKind
    message: str
    raw_text: str | None = None
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for graph state and the run store."""
        return {"kind": self.kind.value, "message": self.message, "raw_text": self.raw_text, "attempt": self.attempt}


class StructuredOutputError(ValueError):
    """Raised only by :meth:`StructuredResult.unwrap` on a failed result."""

    def __init__(self, failure: StructuredOutputFailure) -> None:
        super().__init__(f"{failure.kind.value}: {failure.message}")
        self.failure = failure


@dataclass
class StructuredResult(Generic[T]):
    """The outcome of :func:`structured_call`. ``ok`` iff ``value`` is a validated instance."""

    ok: bool
    value: T | None
    error: str | None
    raw: AIMessage | None
    """The model's last reply (``None`` when no reply could be read at all)."""
    attempts: int
    """Model calls made (1, or 2 after a repair turn)."""
    failure: StructuredOutputFailure | None = None
    """Why the last attempt failed (``None`` when ``ok``)."""
    failures: list[StructuredOutputFailure] = field(default_factory=list)
    """Every failed attempt, in order (a repaired success has one)."""
    usage: dict[str, Any] | None = None
    """Token usage summed over all attempts (when the model reports it)."""

    @property
    def repaired(self) -> bool:
        return self.ok and bool(self.failures)

    def unwrap(self) -> T:
        """The value, or raise :class:`StructuredOutputError` (for callers that want to raise)."""
        if self.ok and self.value is not None:
            return self.value
        assert self.failure is not None
        raise StructuredOutputError(self.failure)


# ---------------------------------------------------------------------------
# Errors that mean "the output was bad", not "the program is wrong"
# ---------------------------------------------------------------------------


def _output_error_types() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [json.JSONDecodeError, OutputParserException, ValidationError]
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on it
        return tuple(kinds)
    for name in ("LengthFinishReasonError", "ContentFilterFinishReasonError", "APIResponseValidationError"):
        kind = getattr(openai, name, None)
        if isinstance(kind, type):
            kinds.append(kind)
    return tuple(kinds)


OUTPUT_ERRORS: tuple[type[BaseException], ...] = _output_error_types()
"""Exceptions a model call raises because of what the model (or endpoint) sent back."""


class _BadOutput(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def failure_from_exception(exc: BaseException, attempt: int) -> StructuredOutputFailure:
    """A failure record for an exception in :data:`OUTPUT_ERRORS` raised by a model call."""
    name = type(exc).__name__
    raw: str | None = None
    completion = getattr(exc, "completion", None)
    if completion is not None:
        try:
            raw = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raw = None
    if name == "LengthFinishReasonError":
        return StructuredOutputFailure(
            FailureKind.TRUNCATED,
            "the answer was cut off at the token limit before the JSON was complete; answer more briefly",
            raw,
            attempt,
        )
    if name == "ContentFilterFinishReasonError":
        return StructuredOutputFailure(FailureKind.REFUSAL, "the answer was stopped by a content filter", raw, attempt)
    if isinstance(exc, OutputParserException):
        llm_output = getattr(exc, "llm_output", None)
        return StructuredOutputFailure(FailureKind.MALFORMED_JSON, str(exc)[:500], llm_output, attempt)
    if isinstance(exc, ValidationError):
        return StructuredOutputFailure(FailureKind.VALIDATION, format_validation_error(exc), raw, attempt)
    return StructuredOutputFailure(
        FailureKind.MALFORMED_RESPONSE, f"the endpoint's response could not be read ({name}: {str(exc)[:200]})", raw, attempt
    )


# ---------------------------------------------------------------------------
# JSON from model text
# ---------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def load_json_output(text: str) -> Any:
    """The JSON value in a model's text output; raises ``ValueError`` saying what is wrong.

    Accepts plain JSON, JSON in a code fence, and JSON followed (or preceded) by prose: the
    first complete JSON object or array wins. Only ``json`` parses anything here.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("the answer is empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        first_error = exc
    fenced = _FENCE.match(stripped)
    if fenced:
        try:
            return json.loads(fenced.group(1))
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", stripped):
        try:
            value, _end = decoder.raw_decode(stripped, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, (dict, list)):
            return value
    raise ValueError(f"the answer is not valid JSON ({first_error.msg} at line {first_error.lineno} column {first_error.colno})")


def format_validation_error(exc: ValidationError, *, limit: int = 12) -> str:
    """A compact, model-readable list of what is wrong (no documentation URLs)."""
    lines = []
    errors = exc.errors(include_url=False)
    for error in errors[:limit]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "(root)"
        got = error.get("input")
        shown = json.dumps(got, default=str) if not isinstance(got, str) else repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        detail = f"{where}: {error.get('msg', 'invalid')}"
        if error.get("type") != "missing":
            detail += f" (got {shown})"
        lines.append(detail)
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more errors")
    return "; ".join(lines)


def message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


# ---------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------


def inline_schema_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with local ``$ref``s replaced by their definitions (``$defs`` dropped).

    A recursive schema cannot be inlined: it is returned unchanged (``$defs`` kept).
    """
    defs = dict(schema.get("$defs") or schema.get("definitions") or {})

    class _Cycle(Exception):
        pass

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                name = ref.rsplit("/", 1)[-1]
                if name in stack:
                    raise _Cycle
                target = defs.get(name)
                if target is None:
                    return {k: walk(v, stack) for k, v in node.items()}
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged, (*stack, name))
            return {k: walk(v, stack) for k, v in node.items() if k not in ("$defs", "definitions")}
        if isinstance(node, list):
            return [walk(item, stack) for item in node]
        return node

    try:
        return walk(schema, ())
    except _Cycle:
        return dict(schema)


def _check_schema(schema: Any) -> type[BaseModel]:
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(f"schema must be a pydantic BaseModel subclass, got {schema!r}")
    return schema


def schema_name(schema: type[BaseModel]) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
    return name or "output"


def json_schema_for(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the model: pydantic's, refs inlined (a fresh copy each call;
    pydantic's schema generation is computed once per class, it costs milliseconds)."""
    return copy.deepcopy(_cached_json_schema(_check_schema(schema)))


@functools.lru_cache(maxsize=256)
def _cached_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    return inline_schema_refs(schema.model_json_schema())


def response_format_for(
    schema: type[BaseModel], *, strict: bool | None = None, output_schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``response_format`` (OpenAI ``json_schema`` form) for a pydantic schema
    (``output_schema``, when given, is sent instead of the schema pydantic derives)."""
    sent = dict(output_schema) if output_schema is not None else json_schema_for(schema)
    spec: dict[str, Any] = {"name": schema_name(schema), "schema": sent}
    doc = (schema.__doc__ or "").strip()
    if doc and not doc.startswith(("Usage docs", "!!!")):
        spec["description"] = doc[:500]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


_BOUNDED_FORMATS = frozenset({"date-time", "date", "time", "uuid", "duration", "ipv4", "ipv6"})


def unbounded_fields(schema: type[BaseModel] | Mapping[str, Any], *, ignore: Iterable[str] = ()) -> list[str]:
    """Paths of the arrays without ``maxItems``, strings without ``maxLength``, open-ended
    maps without ``maxProperties`` and untyped values (``Any``) in a schema.

    ``schema`` is a pydantic model class or a JSON schema. Paths read ``field``,
    ``items[].name`` (array items), ``attrs{}`` (map values). ``ignore`` lists paths (or
    path prefixes ending in ``.``/``[]``/``{}``) that are allowed to stay open; a class made
    with ``@bounded(ignore=...)`` carries its own list. An empty list means bounded.
    """
    ignored = list(ignore)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        ignored += list(getattr(schema, "__unbounded_ok__", ()))
        root = schema.model_json_schema()
    elif isinstance(schema, Mapping):
        root = dict(schema)
    else:
        raise TypeError(f"expected a pydantic model class or a JSON schema, got {schema!r}")
    defs = dict(root.get("$defs") or root.get("definitions") or {})
    found: list[str] = []

    def covered(name: str, prefix: str) -> bool:
        if name == prefix or (prefix.endswith((".", "[]", "{}")) and name.startswith(prefix)):
            return True
        return name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in (".", "[", "{")

    def report(path: str, what: str) -> None:
        name = path or "(root)"
        if any(covered(name, prefix) for prefix in ignored):
            return
        entry = f"{name} ({what})"
        if entry not in found:
            found.append(entry)

    def walk(node: Any, path: str, stack: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in stack:
                return  # recursion: the referenced schema is checked at its first use
            walk({**defs.get(name, {}), **{k: v for k, v in node.items() if k != "$ref"}}, path, (*stack, name))
            return
        options = [o for key in ("anyOf", "oneOf", "allOf") for o in node.get(key) or []]
        for option in options:
            walk(option, path, stack)
        if "const" in node or "enum" in node:
            return
        declared = node.get("type")
        types = set(declared if isinstance(declared, list) else [declared] if declared else [])
        if not types and not options and not ({"properties", "items", "additionalProperties"} & set(node)):
            report(path, "any value")
            return
        if "string" in types and "maxLength" not in node and node.get("format") not in _BOUNDED_FORMATS:
            report(path, "string without maxLength")
        if "array" in types or "items" in node or "prefixItems" in node:
            for index, item in enumerate(node.get("prefixItems") or []):
                walk(item, f"{path}[{index}]", stack)
            items = node.get("items")
            if items is False or (node.get("prefixItems") and items is None):
                pass  # a fixed-length tuple
            elif "maxItems" not in node:
                report(path, "array without maxItems")
            if isinstance(items, Mapping):
                walk(items, f"{path}[]", stack)
        if "object" in types or "properties" in node:
            for key, sub in (node.get("properties") or {}).items():
                walk(sub, f"{path}.{key}" if path else key, stack)
            extra = node.get("additionalProperties")
            open_map = extra is True or isinstance(extra, Mapping) or ("properties" not in node and extra is None)
            if open_map and "maxProperties" not in node:
                report(path, "object without maxProperties")
            if isinstance(extra, Mapping) and extra:
                walk(extra, f"{path}{{}}", stack)  # an empty or True value schema: any JSON, the map is reported

    walk(root, "", ())
    return found


def bounded(schema: type[T] | None = None, *, ignore: Iterable[str] = ()) -> Any:
    """Class decorator: refuse a pydantic schema with unbounded fields (``TypeError``).

    ``@bounded`` or ``@bounded(ignore=["actions[].arguments"])``; the ignore list is kept on
    the class (``__unbounded_ok__``) so :func:`unbounded_fields` honours it later too.
    """
    allowed = tuple(ignore)

    def apply(cls: type[T]) -> type[T]:
        _check_schema(cls)
        if allowed:
            cls.__unbounded_ok__ = tuple(getattr(cls, "__unbounded_ok__", ())) + allowed  # type: ignore[attr-defined]
        problems = unbounded_fields(cls)
        if problems:
            raise TypeError(
                f"{cls.__name__} has unbounded fields: {', '.join(problems)}. Add Field(max_length=...) "
                "to lists and strings (or list the path in bounded(ignore=...))"
            )
        return cls

    return apply(schema) if schema is not None else apply


_checked_schemas: set[type] = set()


def _note_unbounded(schema: type[BaseModel]) -> None:
    if schema in _checked_schemas:
        return
    _checked_schemas.add(schema)
    problems = unbounded_fields(schema)
    if problems:
        log.warning(
            "structured output schema %s has unbounded fields (%s); a small model may run into max_tokens",
            schema.__name__,
            ", ".join(problems),
        )


# ---------------------------------------------------------------------------
# Model plumbing shared with tool_calling
# ---------------------------------------------------------------------------


def as_messages(value: LanguageModelInput) -> list[BaseMessage]:
    """Chat-model input (str, PromptValue, messages, message-likes) as a list of messages."""
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(content=value)]
    if isinstance(value, BaseMessage):
        return [value]
    return list(convert_to_messages(value))


def base_model_of(model: Runnable) -> Runnable:
    """The chat model inside bindings (``.bind``, ``.with_config``, ``.with_retry``)."""
    seen = 0
    while isinstance(model, RunnableBinding) and seen < 32:
        model = model.bound
        seen += 1
    return model


def configured_max_tokens(model: Runnable) -> int | None:
    """The ``max_tokens`` a model (or a binding of it) already sends, if any."""
    node: Any = model
    for _ in range(32):
        if isinstance(node, RunnableBinding):
            for key in ("max_tokens", "max_completion_tokens"):
                value = node.kwargs.get(key)
                if isinstance(value, int) and value > 0:
                    return value
            node = node.bound
            continue
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict"):
            value = getattr(node, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None
    return None


def capped_max_tokens(model: Runnable, cap: int | None, default: int) -> int:
    """The ``max_tokens`` to bind: the smaller of the model's own setting and ``cap``.

    With no ``cap`` the model's own setting stands, else ``default``: never unlimited.
    """
    own = configured_max_tokens(model)
    if cap is not None and cap <= 0:
        raise ValueError(f"max_tokens must be positive, got {cap}")
    if cap is None:
        return own if own is not None else default
    return min(own, cap) if own is not None else cap


def sum_usage(messages: Sequence[AIMessage | None]) -> dict[str, Any] | None:
    total = None
    for message in messages:
        usage = getattr(message, "usage_metadata", None) if message is not None else None
        if usage:
            total = usage if total is None else add_usage(total, usage)
    return dict(total) if total is not None else None


@dataclass
class Outcome:
    """What one model call produced: a reply, or an exception from :data:`OUTPUT_ERRORS`."""

    message: AIMessage | None = None
    error: BaseException | None = None


Steps = Generator[list[BaseMessage], Outcome, Any]


def drive(steps: Steps, call: Callable[[list[BaseMessage]], AIMessage]) -> Any:
    """Run a request/response generator with a synchronous model call."""
    request = next(steps)
    while True:
        try:
            outcome = Outcome(message=call(request))
        except OUTPUT_ERRORS as exc:
            outcome = Outcome(error=exc)
        try:
            request = steps.send(outcome)
        except StopIteration as stop:
            return stop.value


async def adrive(steps: Steps, call: Callable[[list[BaseMessage]], Any]) -> Any:
    """Run a request/response generator with an async model call."""
    request = next(steps)
    while True:
        try:
            outcome = Outcome(message=await call(request))
        except OUTPUT_ERRORS as exc:
            outcome = Outcome(error=exc)
        try:
            request = steps.send(outcome)
        except StopIteration as stop:
            return stop.value


def repair_request(messages: list[BaseMessage], raw_text: str | None, error: str, instruction: str) -> list[BaseMessage]:
    """The conversation for a repair turn: the invalid output, the error, what to do now."""
    extra: list[BaseMessage] = []
    if raw_text:
        shown = raw_text if len(raw_text) <= MAX_ECHO_CHARS else raw_text[:MAX_ECHO_CHARS] + " ...(cut)"
        extra.append(AIMessage(content=shown))
        lead = "That answer could not be used"
    else:
        lead = "Your previous answer could not be used"
    extra.append(HumanMessage(content=f"{lead}. Error: {error}\n{instruction}"))
    return [*messages, *extra]


def next_request(messages: list[BaseMessage], failure: StructuredOutputFailure, instruction: str) -> list[BaseMessage]:
    """The request after a failed attempt: a plain retry when the endpoint's body itself was
    unreadable (the model said nothing we could show it), else a repair turn."""
    if failure.kind is FailureKind.MALFORMED_RESPONSE and not failure.raw_text:
        return messages
    return repair_request(messages, failure.raw_text, failure.message, instruction)


# ---------------------------------------------------------------------------
# structured_call
# ---------------------------------------------------------------------------

REPAIR_INSTRUCTION = (
    "Answer again with only one corrected JSON object that matches the required schema. "
    "Fix exactly the problems listed; no other text."
)


def _bind_for(
    model: Runnable,
    schema: type[BaseModel],
    method: str,
    max_tokens: int,
    strict: bool | None,
    output_schema: Mapping[str, Any] | None = None,
) -> Runnable:
    if method == "json_schema":
        response_format = response_format_for(schema, strict=strict, output_schema=output_schema)
        return model.bind(response_format=response_format, max_tokens=max_tokens)
    if method == "function_calling":
        tool = {
            "type": "function",
            "function": {
                "name": schema_name(schema),
                "description": (schema.__doc__ or f"Return a {schema.__name__}.").strip()[:1000],
                "parameters": dict(output_schema) if output_schema is not None else json_schema_for(schema),
            },
        }
        if strict is not None:
            tool["function"]["strict"] = strict
        binder = base_model_of(model) if isinstance(model, RunnableBinding) else model
        if not hasattr(binder, "bind_tools"):
            raise TypeError(f"method='function_calling' needs a chat model with bind_tools, got {type(model).__name__}")
        bound = binder.bind_tools([tool], tool_choice=schema_name(schema), max_tokens=max_tokens)
        if binder is not model:  # keep the outer bindings' kwargs and config
            bound = rewrap_binding(model, bound)
        return bound
    raise ValueError(f"method must be 'json_schema' or 'function_calling', got {method!r}")


def rewrap_binding(binding: Runnable, inner: Runnable) -> Runnable:
    """``binding`` with its innermost model replaced by ``inner`` (kwargs/config kept)."""
    if not isinstance(binding, RunnableBinding):
        return inner
    return binding.model_copy(update={"bound": rewrap_binding(binding.bound, inner)})


def _extract(message: AIMessage, schema: type[BaseModel], method: str) -> tuple[Any, str | None]:
    """(data, raw text) from a reply; raises :class:`_BadOutput`."""
    refusal = message.additional_kwargs.get("refusal")
    if refusal:
        raise _BadOutput(FailureKind.REFUSAL, f"the model refused: {str(refusal)[:300]}")
    finish = (message.response_metadata or {}).get("finish_reason")
    text = message_text(message)
    if method == "function_calling":
        wanted = schema_name(schema)
        for call in message.tool_calls:
            if call.get("name") == wanted or len(message.tool_calls) == 1:
                args = call.get("args")
                return args, json.dumps(args, ensure_ascii=False, default=str)
        if message.invalid_tool_calls:
            bad = message.invalid_tool_calls[0]
            raise _BadOutput(
                FailureKind.TRUNCATED if finish == "length" else FailureKind.MALFORMED_JSON,
                f"the tool arguments are not valid JSON ({bad.get('error') or 'unparseable'})",
            )
        if not text.strip():
            raise _BadOutput(FailureKind.EMPTY, f"no call of {wanted} and no content")
    if not text.strip():
        raise _BadOutput(FailureKind.TRUNCATED if finish == "length" else FailureKind.EMPTY, "the answer is empty")
    try:
        data = load_json_output(text)
    except ValueError as exc:
        kind = FailureKind.TRUNCATED if finish == "length" else FailureKind.MALFORMED_JSON
        message_ = str(exc) + ("; it was cut off at the token limit, answer more briefly" if finish == "length" else "")
        raise _BadOutput(kind, message_) from None
    return data, text


def _raw_text(message: AIMessage) -> str:
    text = message_text(message)
    if text.strip():
        return text
    if message.tool_calls:
        return json.dumps(message.tool_calls[0].get("args"), ensure_ascii=False, default=str)
    if message.invalid_tool_calls:
        return str(message.invalid_tool_calls[0].get("args") or "")
    return text


def _structured_steps(schema: type[T], messages: list[BaseMessage], method: str, repair: bool) -> Steps:
    failures: list[StructuredOutputFailure] = []
    replies: list[AIMessage | None] = []
    request = messages
    max_attempts = 2 if repair else 1
    for attempt in range(1, max_attempts + 1):
        outcome: Outcome = yield request
        replies.append(outcome.message)
        if outcome.error is not None:
            failure = failure_from_exception(outcome.error, attempt)
        else:
            message = outcome.message
            assert message is not None
            raw = _raw_text(message)
            try:
                data, raw = _extract(message, schema, method)
                if not isinstance(data, dict):
                    raise _BadOutput(FailureKind.MALFORMED_JSON, f"expected one JSON object, got {type(data).__name__}")
                value = schema.model_validate(data)
            except _BadOutput as bad:
                failure = StructuredOutputFailure(bad.kind, bad.message, raw, attempt)
            except ValidationError as exc:
                failure = StructuredOutputFailure(FailureKind.VALIDATION, format_validation_error(exc), raw, attempt)
            else:
                return StructuredResult(
                    ok=True, value=value, error=None, raw=message, attempts=attempt,
                    failure=None, failures=failures, usage=sum_usage(replies),
                )
        failures.append(failure)
        log.debug("structured output %s attempt %d failed: %s", schema.__name__, attempt, failure.message)
        request = next_request(messages, failure, REPAIR_INSTRUCTION)
    last = failures[-1]
    raw_message = next((r for r in reversed(replies) if r is not None), None)
    return StructuredResult(
        ok=False, value=None, error=f"{last.kind.value}: {last.message}", raw=raw_message,
        attempts=len(replies), failure=last, failures=failures, usage=sum_usage(replies),
    )


def _prepare(
    model: Runnable,
    schema: Any,
    messages: LanguageModelInput,
    method: str,
    max_tokens: int | None,
    strict: bool | None,
    output_schema: Mapping[str, Any] | None = None,
) -> tuple[Runnable, list[BaseMessage]]:
    schema = _check_schema(schema)
    if method not in ("json_schema", "function_calling"):
        raise ValueError(f"method must be 'json_schema' or 'function_calling', got {method!r}")
    msgs = as_messages(messages)
    if not msgs:
        raise ValueError("structured_call needs at least one message")
    _note_unbounded(schema)
    tokens = capped_max_tokens(model, max_tokens, DEFAULT_MAX_TOKENS)
    if output_schema is not None and not isinstance(output_schema, Mapping):
        raise TypeError(f"output_schema must be a JSON schema (a mapping), got {type(output_schema).__name__}")
    return _bind_for(model, schema, method, tokens, strict, output_schema), msgs


def structured_call(
    model: Runnable,
    schema: type[T],
    messages: LanguageModelInput,
    *,
    method: Method = "json_schema",
    repair: bool = True,
    max_tokens: int | None = None,
    strict: bool | None = None,
    config: RunnableConfig | None = None,
    output_schema: Mapping[str, Any] | None = None,
) -> StructuredResult[T]:
    """Ask ``model`` for a ``schema`` instance; never raises on malformed output.

    Args:
        model: a chat model (``ChatOpenAI``, the embedded model's client, a test double) or
            a binding of one.
        schema: a pydantic model class (bound every array and string: see :func:`bounded`).
        messages: the conversation (messages, message-likes, a string or a PromptValue).
        method: ``"json_schema"`` (``response_format``; default, and what the embedded model
            needs) or ``"function_calling"`` (the schema as the one forced tool).
        repair: allow one repair turn showing the model its invalid output and the error.
        max_tokens: cap on the reply length; the smaller of this and the model's own
            ``max_tokens`` is sent. Default: the model's own, else ``DEFAULT_MAX_TOKENS``.
        strict: passed to OpenAI structured outputs (``None``: not sent).
        config: the runnable config for the model calls (callbacks, tags, metadata).
        output_schema: a JSON schema sent to the model instead of the one pydantic derives
            from ``schema``: a narrowing of it (e.g. actions limited to the sampled tools and
            their real argument schemas, so constrained decoding cannot invent a tool). The
            reply is still validated with ``schema``.
    """
    bound, msgs = _prepare(model, schema, messages, method, max_tokens, strict, output_schema)
    return drive(_structured_steps(schema, msgs, method, repair), lambda req: bound.invoke(req, config))


async def astructured_call(
    model: Runnable,
    schema: type[T],
    messages: LanguageModelInput,
    *,
    method: Method = "json_schema",
    repair: bool = True,
    max_tokens: int | None = None,
    strict: bool | None = None,
    config: RunnableConfig | None = None,
    output_schema: Mapping[str, Any] | None = None,
) -> StructuredResult[T]:
    """Async :func:`structured_call` (same arguments, same guarantees)."""
    bound, msgs = _prepare(model, schema, messages, method, max_tokens, strict, output_schema)
    return await adrive(_structured_steps(schema, msgs, method, repair), lambda req: bound.ainvoke(req, config))
