"""Chat models for the roles: built from a :class:`ModelSpec`, managed on every call.

    runtime = LLMRuntime.from_configuration(cfg)          # one per run: records, budget, cache
    generator = runtime.role_model(cfg, "generator")
    reply = await generator.ainvoke(messages)             # bind_tools / with_structured_output work
    await runtime.aclose()                                # the run's HTTP clients and cache

Graph nodes get their models from the run's context (:mod:`apigen_mt.graphs.context`).

What a spec becomes
    * ``local``: ``ChatOpenAI`` on the embedded SmolLM2 server (:mod:`apigen_mt.llm.embedded`),
      api key ``"local"``, ``max_tokens`` always capped (:data:`LOCAL_MAX_TOKENS`). Building it
      starts nothing: the first call starts the server (``await server.astart()`` on the async
      path, so the event loop never blocks), and later calls follow it if it restarts.
    * ``base_url`` + name: ``ChatOpenAI`` on that OpenAI-compatible server (vLLM, llama.cpp,
      LM Studio). A key is sent only when the spec names its variable (``api_key_env``): a key
      for OpenAI is never handed to some other server by default.
    * ``openai:NAME``: ``ChatOpenAI``, key from ``$OPENAI_API_KEY`` (or ``api_key_env``).
    * ``ollama:NAME``: ``ChatOllama`` when ``langchain-ollama`` is installed, else ``ChatOpenAI``
      on Ollama's OpenAI-compatible endpoint (``$OLLAMA_HOST`` or 127.0.0.1:11434, ``/v1``).
    * other ``provider:NAME`` (anthropic, google_genai, mistralai, groq, ...): that provider's
      LangChain package when installed (else an error naming the ``pip install``), or
      ``langchain``'s ``init_chat_model`` when that is installed.
    Every model whose class takes HTTP clients (the whole ``ChatOpenAI`` family, whatever the
    provider) gets its own, owned by the runtime: see :func:`_http_clients`.

What "managed" means
    The model is a subclass of its own class (so ``bind_tools``, ``with_structured_output``,
    streaming and LangGraph's message streaming behave exactly as before) whose
    ``_generate``/``_agenerate``/``_stream``/``_astream`` go through, in order:
    the response cache (temperature 0 only; a hit costs no request and no budget), the run's
    :class:`~apigen_mt.llm.budget.Budget` (raises ``BudgetExceeded`` before the request), our
    retry loop (the client's own retries are off so ours can be counted), and the
    :class:`~apigen_mt.llm.accounting.CallRecorder`. Failures that retrying cannot fix become
    clear errors (:mod:`apigen_mt.llm.retry`): unreachable endpoint, timeout, unknown model,
    rejected key. A call that ends any other way (cancelled, interrupted) is settled and recorded
    too. API keys are read from the environment when a model is built and live only inside the
    client object.

Why not a library: LangChain's own cache is keyed on the whole serialized model (a server's
port would change every key), its rate limiter does not reserve tokens before a call, and its
``with_retry`` neither counts retries nor explains the final failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import importlib
import importlib.util
import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from apigen_mt.configuration import (
    Configuration,
    ModelSpec,
    redact_url,
    role_label,
)
from apigen_mt.llm.accounting import RECORDED_METADATA, CallRecord, CallRecorder, usage_of
from apigen_mt.llm.budget import Budget, BudgetExceeded, Reservation
from apigen_mt.llm.cache import ResponseCache, cache_key
from apigen_mt.llm.retry import (
    LLMConfigError,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    clear_error,
    retries_of,
)
from apigen_mt.llm.tracing import configure_tracing

__all__ = [
    "BudgetExceeded",
    "LOCAL_MAX_TOKENS",
    "LLMRuntime",
    "ManagedInfo",
    "Probe",
    "estimate_tokens",
    "make_chat_model",
    "managed_info",
    "probe_model",
    "probe_models",
    "wrap_chat_model",
]

LOCAL_MAX_TOKENS = 2048  # a quarter of the embedded server's per-request context (8192)
_LOCAL_PLACEHOLDER_URL = "http://127.0.0.1:9/v1"  # replaced by the server's URL at the first call
_OLLAMA_DEFAULT = "http://127.0.0.1:11434"
_OPENAI_DEFAULT = "https://api.openai.com/v1"

log = logging.getLogger(__name__)

# provider -> (pip package, module, class) for providers without a special case below.
_PROVIDER_CLASSES: dict[str, tuple[str, str, str]] = {
    "anthropic": ("langchain-anthropic", "langchain_anthropic", "ChatAnthropic"),
    "google_genai": ("langchain-google-genai", "langchain_google_genai", "ChatGoogleGenerativeAI"),
    "google_vertexai": ("langchain-google-vertexai", "langchain_google_vertexai", "ChatVertexAI"),
    "mistralai": ("langchain-mistralai", "langchain_mistralai", "ChatMistralAI"),
    "groq": ("langchain-groq", "langchain_groq", "ChatGroq"),
    "together": ("langchain-together", "langchain_together", "ChatTogether"),
    "fireworks": ("langchain-fireworks", "langchain_fireworks", "ChatFireworks"),
    "deepseek": ("langchain-deepseek", "langchain_deepseek", "ChatDeepSeek"),
    "xai": ("langchain-xai", "langchain_xai", "ChatXAI"),
    "bedrock_converse": ("langchain-aws", "langchain_aws", "ChatBedrockConverse"),
}

# The id of the managed model whose own _generate is running, so a model that streams
# internally (_generate -> _stream) is not accounted twice. Another managed model called from
# inside (an adapter wrapping a managed model) is still accounted: the ids differ.
_INSIDE: contextvars.ContextVar[int | None] = contextvars.ContextVar("apigen_mt_llm_inside", default=None)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Estimates
# ---------------------------------------------------------------------------------------------


def _text_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return len(str(value))


def estimate_tokens(messages: Sequence[BaseMessage], kwargs: Mapping[str, Any] | None = None) -> int:
    """A rough prompt size (4 characters a token, plus per-message overhead, plus tools and
    schemas). Used for budget reservations and when a server reports no usage."""
    chars = sum(_text_len(m.content) + _text_len(getattr(m, "tool_calls", None) or "") for m in messages)
    for name in ("tools", "response_format", "functions"):
        if kwargs and kwargs.get(name) is not None:
            value = kwargs[name]
            chars += _text_len(value if not isinstance(value, type) else getattr(value, "__name__", ""))
    return chars // 4 + 4 * len(messages) + 1


# ---------------------------------------------------------------------------------------------
# The managed subclass
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedInfo:
    """What a managed model is (``managed_info(model)``): for agents and reports."""

    role: str
    model: str  # display label, no credentials
    model_id: str  # cache identity
    endpoint: str
    tool_calling: str
    cache: bool
    spec: ModelSpec | None


class _Call:
    """Per-model state of a managed model: who it is and the run objects it reports to."""

    def __init__(
        self,
        *,
        info: ManagedInfo,
        runtime: LLMRuntime,
        policy: RetryPolicy,
        params: Mapping[str, Any],
        max_tokens: int | None,
        timeout: float | None,
        key_env: str | None,
        server: Any = None,
    ) -> None:
        self.info = info
        self.runtime = runtime
        self.policy = policy
        self.params = dict(params)
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.key_env = key_env
        self.server = server  # the EmbeddedServer for "local", else None
        self.endpoint = info.endpoint
        self._lock = threading.Lock()

    # -- the embedded server's URL, resolved at call time --------------------------------------

    def _point(self, model: Any, url: str) -> None:
        if getattr(model, "openai_api_base", None) == url:
            return
        with self._lock:
            model.openai_api_base = url
            for client in (getattr(model, "root_client", None), getattr(model, "root_async_client", None)):
                if client is not None:
                    client.base_url = url
            self.endpoint = url

    def ensure_endpoint(self, model: Any) -> None:
        if self.server is not None:
            self._point(model, self.server.start().base_url)

    async def aensure_endpoint(self, model: Any) -> None:
        if self.server is not None:
            if not self.server.running:
                await self.server.astart()
            self._point(model, self.server.base_url)  # running: returns at once

    # -- pieces ----------------------------------------------------------------------------------

    def begin(self, messages: Sequence[BaseMessage], stop: Any, kwargs: Mapping[str, Any], run_manager: Any,
              *, streamed: bool = False) -> _Flight:
        return _Flight(messages, kwargs, _metadata(run_manager), self.key(messages, stop, kwargs), streamed)

    def key(self, messages: Sequence[BaseMessage], stop: Any, kwargs: Mapping[str, Any]) -> str | None:
        cache = self.runtime.cache
        if cache is None or not self.info.cache:
            return None
        temperature = kwargs.get("temperature", self.params.get("temperature"))
        forced = self.info.spec is not None and self.info.spec.cache is True
        if temperature not in (0, 0.0, None) and not forced:
            return None
        return cache_key(self.info.model_id, messages, {**self.params, **kwargs, "stop": stop})

    def reserve(self, flight: _Flight) -> None:
        """Hold the call's worst case in the budget (raises BudgetExceeded before any request)."""
        flight.reservation = self.runtime.budget.reserve(self._worst_case(flight), self.info.role)

    async def areserve(self, flight: _Flight) -> None:
        """:meth:`reserve`, awaited where the budget lives elsewhere (a cluster's database)."""
        budget = self.runtime.budget
        if not hasattr(budget, "areserve"):
            return self.reserve(flight)
        flight.reservation = await budget.areserve(self._worst_case(flight), self.info.role)
        return None

    def _worst_case(self, flight: _Flight) -> int:
        kwargs = flight.kwargs
        completion = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens") or self.max_tokens or 0
        return estimate_tokens(flight.messages, kwargs) + int(completion)

    def usage(self, result: ChatResult, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> tuple[int, int, bool]:
        message = result.generations[0].message if result.generations else None
        found = usage_of(message) if message is not None else None
        if found is not None:
            return found[0], found[1], False
        completion = _text_len(message.content) // 4 + 1 if message is not None else 0
        return estimate_tokens(messages, kwargs), completion, True

    def record(self, flight: _Flight, *, prompt: int = 0, completion: int = 0, cache_hit: bool = False,
               error: BaseException | None = None, estimated: bool = False) -> None:
        self.runtime.recorder.record(
            CallRecord(
                role=self.info.role,
                model=self.info.model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                latency_s=round(time.perf_counter() - flight.t0, 4),
                retries=flight.retries,
                cache_hit=cache_hit,
                error=None if error is None else f"{type(error).__name__}: {error}"[:500],
                tokens_estimated=estimated,
                streamed=flight.streamed,
                started_at=flight.started,
                metadata=flight.meta,
            )
        )

    def hit(self, flight: _Flight, result: ChatResult) -> ChatResult:
        """Record a cache hit (no request, no budget) and return it."""
        message = result.generations[0].message if result.generations else None
        prompt, completion = (usage_of(message) or (0, 0)) if message is not None else (0, 0)
        self.record(flight, prompt=prompt, completion=completion, cache_hit=True)
        return result

    def succeed(self, flight: _Flight, result: ChatResult | None) -> None:
        """Settle and record a call that returned (for a stream: what it delivered)."""
        if result is not None:
            prompt, completion, estimated = self.usage(result, flight.messages, flight.kwargs)
        else:
            prompt, completion, estimated = estimate_tokens(flight.messages, flight.kwargs), 0, True
        self.runtime.budget.settle(flight.reservation, prompt + completion)
        self.record(flight, prompt=prompt, completion=completion, estimated=estimated)

    def reraise(self, flight: _Flight, exc: BaseException, delivered: ChatResult | None = None) -> NoReturn:
        """Settle and record a call that raised, then raise the clearer error (or ``exc``).

        Also for what is not an ``Exception``: a cancelled task (Ctrl-C, a timeout around the
        node) must not keep its reservation nor go unrecorded. ``delivered``: what a stream
        had sent before it broke (its tokens were spent)."""
        spent = sum(self.usage(delivered, flight.messages, flight.kwargs)[:2]) if delivered is not None else 0
        self.runtime.budget.settle(flight.reservation, spent)
        flight.retries = max(flight.retries, retries_of(exc))
        clear: BaseException = exc
        if isinstance(exc, Exception):
            spec = self.info.spec
            clear = clear_error(
                exc, role=self.info.role, model=spec.model if spec is not None else self.info.model,
                endpoint=self.endpoint, timeout=self.timeout, key_env=self.key_env, local=self.server is not None,
            )
        self.record(flight, error=clear)
        if clear is exc:
            raise exc
        raise clear from exc

    def on_retry(self, number: int, exc: BaseException, failure: Any, wait: float) -> None:
        # Kept quiet on purpose: retries are counted in the records; a debug line helps when tracing.
        log.debug("%s (%s): retry %d in %.2fs after %s", self.info.role, self.info.model, number, wait, failure.kind)

    def cache_put(self, flight: _Flight, result: ChatResult | None) -> None:
        if flight.key is not None and result is not None:
            self.runtime.cache.put(flight.key, self.info.model_id, result)

    async def acache_put(self, flight: _Flight, result: ChatResult | None) -> None:
        if flight.key is not None and result is not None:
            await self.runtime.cache.aput(flight.key, self.info.model_id, result)

    # -- the flows: cache -> budget -> retries -> settle and record, however the call ends ---------

    def generate(self, model: Any, call: Callable[[], ChatResult], messages, stop, kwargs, run_manager) -> ChatResult:
        self.ensure_endpoint(model)
        flight = self.begin(messages, stop, kwargs, run_manager)
        hit = self.runtime.cache.get(flight.key) if flight.key is not None else None
        if hit is not None:
            return self.hit(flight, hit)
        self.reserve(flight)
        try:
            result, flight.retries = call_with_retries(call, self.policy, on_retry=self.on_retry)
        except BaseException as exc:
            self.reraise(flight, exc)
        self.succeed(flight, result)
        self.cache_put(flight, result)
        return result

    async def agenerate(self, model: Any, call: Callable[[], Any], messages, stop, kwargs, run_manager) -> ChatResult:
        await self.aensure_endpoint(model)
        flight = self.begin(messages, stop, kwargs, run_manager)
        hit = await self.runtime.cache.aget(flight.key) if flight.key is not None else None
        if hit is not None:
            return self.hit(flight, hit)
        await self.areserve(flight)
        try:
            result, flight.retries = await acall_with_retries(call, self.policy, on_retry=self.on_retry)
        except BaseException as exc:
            self.reraise(flight, exc)
        self.succeed(flight, result)
        await self.acache_put(flight, result)
        return result

    def stream(self, model: Any, open_stream: Callable[[], Iterator[ChatGenerationChunk]], messages, stop, kwargs,
               run_manager) -> Iterator[ChatGenerationChunk]:
        self.ensure_endpoint(model)
        flight = self.begin(messages, stop, kwargs, run_manager, streamed=True)
        hit = self.runtime.cache.get(flight.key) if flight.key is not None else None
        if hit is not None:
            yield from _chunks_of(self.hit(flight, hit))
            return
        self.reserve(flight)

        def first() -> tuple[ChatGenerationChunk | None, Iterator[ChatGenerationChunk]]:
            iterator = open_stream()
            return next(iterator, None), iterator  # errors before the first chunk are retried

        chunks: list[ChatGenerationChunk] = []
        rest: Any = None
        try:
            (head, rest), flight.retries = call_with_retries(first, self.policy, on_retry=self.on_retry)
            if head is not None:
                chunks.append(head)
                yield head
                for chunk in rest:
                    chunks.append(chunk)
                    yield chunk
        except GeneratorExit:  # the consumer stopped early: count what it got, cache nothing
            self.succeed(flight, _collected(chunks))
            raise
        except BaseException as exc:  # mid-stream: cannot be retried (part of the reply is out)
            self.reraise(flight, exc, _collected(chunks))
        finally:
            if rest is not None and callable(getattr(rest, "close", None)):
                rest.close()  # the provider's response, at once (not when collected)
        result = _collected(chunks)
        self.succeed(flight, result)
        self.cache_put(flight, result)

    async def astream(self, model: Any, open_stream: Callable[[], AsyncIterator[ChatGenerationChunk]], messages,
                      stop, kwargs, run_manager) -> AsyncIterator[ChatGenerationChunk]:
        await self.aensure_endpoint(model)
        flight = self.begin(messages, stop, kwargs, run_manager, streamed=True)
        hit = await self.runtime.cache.aget(flight.key) if flight.key is not None else None
        if hit is not None:
            for chunk in _chunks_of(self.hit(flight, hit)):
                yield chunk
            return
        await self.areserve(flight)

        async def first() -> tuple[ChatGenerationChunk | None, AsyncIterator[ChatGenerationChunk]]:
            iterator = open_stream()
            try:
                return await iterator.__anext__(), iterator
            except StopAsyncIteration:
                return None, iterator

        chunks: list[ChatGenerationChunk] = []
        rest: Any = None
        try:
            (head, rest), flight.retries = await acall_with_retries(first, self.policy, on_retry=self.on_retry)
            if head is not None:
                chunks.append(head)
                yield head
                async for chunk in rest:
                    chunks.append(chunk)
                    yield chunk
        except GeneratorExit:
            self.succeed(flight, _collected(chunks))
            raise
        except BaseException as exc:
            self.reraise(flight, exc, _collected(chunks))
        finally:
            if rest is not None and callable(getattr(rest, "aclose", None)):
                await rest.aclose()
        result = _collected(chunks)
        self.succeed(flight, result)
        await self.acache_put(flight, result)


@dataclass
class _Flight:
    """One logical call from its start until it is settled (returned, failed or cancelled)."""

    messages: Sequence[BaseMessage]
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any]
    key: str | None
    streamed: bool = False
    started: float = dataclasses.field(default_factory=time.time)
    t0: float = dataclasses.field(default_factory=time.perf_counter)
    reservation: Reservation | None = None
    retries: int = 0


def _collected(chunks: Sequence[ChatGenerationChunk]) -> ChatResult | None:
    return generate_from_stream(iter(chunks)) if chunks else None


def _metadata(run_manager: Any) -> dict[str, Any]:
    """The run-level fields (run_id, blueprint_id, phase, attempt, node) of this call's config."""
    merged: dict[str, Any] = {}
    if run_manager is not None:
        merged.update(getattr(run_manager, "inheritable_metadata", None) or {})
        merged.update(getattr(run_manager, "metadata", None) or {})
    else:  # the streaming path inside generate() gets no run manager: use the ambient config
        try:
            from langchain_core.runnables.config import var_child_runnable_config

            merged.update((var_child_runnable_config.get() or {}).get("metadata") or {})
        except Exception:  # noqa: BLE001 - metadata is a nicety
            pass
    return {k: merged[k] for k in RECORDED_METADATA if k in merged}


def _chunks_of(result: ChatResult) -> list[ChatGenerationChunk]:
    """A cached reply as one stream chunk (content, tool calls, usage, metadata)."""
    generation = result.generations[0]
    message = generation.message
    calls = [
        tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c.get("id"), index=i)
        for i, c in enumerate(getattr(message, "tool_calls", []) or [])
    ]
    offset = len(calls)
    calls += [
        tool_call_chunk(name=c.get("name"), args=c.get("args"), id=c.get("id"), index=offset + i)
        for i, c in enumerate(getattr(message, "invalid_tool_calls", []) or [])
    ]
    chunk = AIMessageChunk(
        content=message.content,
        additional_kwargs=dict(message.additional_kwargs),
        response_metadata=dict(message.response_metadata),
        usage_metadata=getattr(message, "usage_metadata", None),
        id=message.id,
        tool_call_chunks=calls,
        chunk_position="last",
    )
    return [ChatGenerationChunk(message=chunk, generation_info=generation.generation_info)]


class _ManagedMixin:
    """Routes the four model hooks through :class:`_Call` (see the module docstring)."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        call_state: _Call | None = self._apigen  # type: ignore[attr-defined]
        if call_state is None or _INSIDE.get() == id(self):
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)  # type: ignore[misc]

        def once() -> ChatResult:
            token = _INSIDE.set(id(self))
            try:
                return super(_ManagedMixin, self)._generate(messages, stop=stop, run_manager=run_manager, **kwargs)  # type: ignore[misc]
            finally:
                _INSIDE.reset(token)

        return call_state.generate(self, once, messages, stop, kwargs, run_manager)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        call_state: _Call | None = self._apigen  # type: ignore[attr-defined]
        if call_state is None or _INSIDE.get() == id(self):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)  # type: ignore[misc]

        async def once() -> ChatResult:
            token = _INSIDE.set(id(self))
            try:
                return await super(_ManagedMixin, self)._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)  # type: ignore[misc]
            finally:
                _INSIDE.reset(token)

        return await call_state.agenerate(self, once, messages, stop, kwargs, run_manager)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        call_state: _Call | None = self._apigen  # type: ignore[attr-defined]
        base = super()._stream  # type: ignore[misc]
        if call_state is None or _INSIDE.get() == id(self):
            yield from base(messages, stop=stop, run_manager=run_manager, **kwargs)
            return
        yield from call_state.stream(
            self, lambda: base(messages, stop=stop, run_manager=run_manager, **kwargs), messages, stop, kwargs, run_manager
        )

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        # ``aclosing``: an early ``aclose()`` reaches the inner stream at once (``async for``
        # alone would leave it to the garbage collector, the reservation held meanwhile).
        call_state: _Call | None = self._apigen  # type: ignore[attr-defined]
        base = super()._astream  # type: ignore[misc]
        if call_state is None or _INSIDE.get() == id(self):
            inner = base(messages, stop=stop, run_manager=run_manager, **kwargs)
        else:
            inner = call_state.astream(
                self, lambda: base(messages, stop=stop, run_manager=run_manager, **kwargs), messages, stop, kwargs,
                run_manager,
            )
        async with contextlib.aclosing(inner) as chunks:
            async for chunk in chunks:
                yield chunk


_CLASSES: dict[type, type] = {}
_CLASSES_LOCK = threading.Lock()


def _managed_class(base: type) -> type:
    with _CLASSES_LOCK:
        cls = _CLASSES.get(base)
        if cls is None:
            namespace = {
                "__module__": __name__,
                "__qualname__": f"Managed{base.__name__}",
                "__annotations__": {"_apigen": Any},
                "_apigen": PrivateAttr(default=None),
                "__doc__": f"{base.__name__} with apigen-mt accounting, budget, cache and retries.",
            }
            cls = type(f"Managed{base.__name__}", (_ManagedMixin, base), namespace)
            _CLASSES[base] = cls
        return cls


def _unmanaged_class(model: BaseChatModel) -> type:
    for cls in type(model).__mro__:
        if cls is not _ManagedMixin and not issubclass(cls, _ManagedMixin):
            return cls
    raise TypeError(type(model))  # pragma: no cover


def _managed_copy(model: BaseChatModel, state: _Call, *, metadata: Mapping[str, Any], tags: Sequence[str]) -> BaseChatModel:
    """A shallow copy of ``model`` as its managed subclass (what ``model_copy`` does, re-classed)."""
    cls = _managed_class(_unmanaged_class(model))
    new = cls.__new__(cls)
    data = dict(model.__dict__)
    data["metadata"] = {**(data.get("metadata") or {}), **metadata}
    data["tags"] = list(dict.fromkeys([*(data.get("tags") or []), *tags]))
    data["name"] = data.get("name") or _unmanaged_class(model).__name__  # traces: ChatOpenAI, not Managed...
    if state.info.cache:
        data["cache"] = False  # ours replaces LangChain's global cache for this model
    object.__setattr__(new, "__dict__", data)
    object.__setattr__(new, "__pydantic_fields_set__", set(model.__pydantic_fields_set__) | {"metadata", "tags"})
    extra = getattr(model, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_extra__", dict(extra) if extra is not None else None)
    private = dict(getattr(model, "__pydantic_private__", None) or {})
    private["_apigen"] = state
    object.__setattr__(new, "__pydantic_private__", private)
    return new


def managed_info(model: Any) -> ManagedInfo | None:
    """Role, model label, endpoint, tool-calling mode of a managed model (through bindings)."""
    target = model
    for _ in range(5):
        state = getattr(target, "__pydantic_private__", None) or {}
        if isinstance(state.get("_apigen"), _Call):
            return state["_apigen"].info
        target = getattr(target, "bound", None)
        if target is None:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# The run's shared objects
# ---------------------------------------------------------------------------------------------


class LLMRuntime:
    """What every model of one run shares: the call recorder, the budget, the response cache,
    and the HTTP clients its models were built with (closed with the runtime).

    ``retry`` is the backoff template (each spec's ``max_retries`` is applied on top). Models
    are memoized per (role, spec): asking twice returns the same object. One runtime serves one
    run on one event loop: a second ``asyncio.run`` gets a runtime of its own (its models'
    connections belong to their loop).
    """

    def __init__(
        self,
        *,
        recorder: CallRecorder | None = None,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
        server: Any = None,
    ) -> None:
        self.recorder = recorder if recorder is not None else CallRecorder()
        self.budget = budget if budget is not None else Budget()
        self.cache = cache
        self.retry = retry if retry is not None else RetryPolicy()
        self._server = server
        self._models: dict[Any, BaseChatModel] = {}
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._building = threading.Lock()

    @classmethod
    def from_configuration(cls, config: Configuration, **kwargs: Any) -> LLMRuntime:
        """A runtime for ``config``: its budget, its cache file (opened lazily), the LangSmith
        policy applied (tracing requested without a key is switched off)."""
        configure_tracing()
        kwargs.setdefault("budget", Budget(config.budget.max_calls, config.budget.max_tokens))
        if "cache" not in kwargs:
            kwargs["cache"] = ResponseCache(config.cache_path) if config.cache.enabled else None
        return cls(**kwargs)

    @property
    def server(self) -> Any:
        if self._server is None:
            from apigen_mt.llm.embedded import get_embedded_server

            self._server = get_embedded_server()
        return self._server

    def open(self) -> LLMRuntime:
        """Check the cache file now (raises CacheCorruptError with the fix); call before a run."""
        if self.cache is not None:
            self.cache.open()
        return self

    async def aopen(self) -> LLMRuntime:
        await asyncio.to_thread(self.open)
        return self

    def chat_model(self, spec: ModelSpec | str, role: str, **kwargs: Any) -> BaseChatModel:
        spec = ModelSpec.model_validate(spec)
        memo = (role, spec.model_dump_json(), tuple(sorted(kwargs.items())))
        with self._lock:
            model = self._models.get(memo)
        if model is None:
            with self._building:  # the run's first threads ask together: one builds (clients, TLS context)
                with self._lock:
                    model = self._models.get(memo)
                if model is None:
                    model = make_chat_model(spec, role, runtime=self, **kwargs)
                    with self._lock:
                        model = self._models.setdefault(memo, model)
        return model

    def role_model(self, config: Configuration, role: str, index: int = 0) -> BaseChatModel:
        return self.chat_model(config.spec(role, index), role_label(role, index))

    def adopt(self, *clients: Any) -> None:
        """HTTP clients built for this runtime's models: closed by :meth:`close` / :meth:`aclose`."""
        with self._lock:
            self._clients.extend(clients)

    async def astart_local(self, config: Configuration) -> None:
        """Start the embedded server now, off the event loop, if any role uses it."""
        if any(spec.is_local for _, spec in config.models.items()):
            await self.server.astart()

    def report(self) -> dict[str, Any]:
        """For the run report: per-role/model call totals, the budget, the cache."""
        return {
            "calls": self.recorder.summary(),
            "budget": self.budget.snapshot(),
            "cache": self.cache.stats() if self.cache is not None else None,
        }

    def _release(self) -> list[Any]:
        with self._lock:
            clients, self._clients = self._clients, []
            self._models.clear()
        if self.cache is not None:
            self.cache.close()
        return clients

    def close(self) -> None:
        """Close the cache and the synchronous clients; the async ones stay for :meth:`aclose`
        (they can only be closed on their loop; never closed, they go with the runtime)."""
        for client in self._release():
            if hasattr(client, "aclose"):
                self.adopt(client)
            else:
                client.close()

    async def aclose(self) -> None:
        """Close the cache and every client, on the loop the run used (the runner calls this)."""
        for client in self._release():
            if hasattr(client, "aclose"):
                await client.aclose()
            else:
                client.close()


# ---------------------------------------------------------------------------------------------
# Building models
# ---------------------------------------------------------------------------------------------


def _api_key(spec: ModelSpec, role: str, *, required: bool) -> str | None:
    name = spec.key_env
    if name is None:
        return None
    value = os.environ.get(name, "").strip()
    if not value and required:
        raise LLMConfigError(
            f"role {role}: model {spec.label!r} needs an API key in ${name}, which is not set. "
            "Export it in the environment (keys are never read from config files).",
            role=role, model=spec.label,
        )
    return value or None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxy_env() -> bool:
    return any(os.environ.get(name) for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"))


def _http_clients(cls: type, url: str | None, runtime: LLMRuntime) -> dict[str, Any]:
    """Clients of one model's own, for a model class that takes them (every ``ChatOpenAI``
    relative, ``ChatGroq``...); none for a class that does not.

    Why: such a class otherwise falls back on one process-wide async pool whose keep-alive
    connections belong to the first event loop, so a second ``asyncio.run`` in the same
    process (Phase 1, then Phase 2) fails with "Event loop is closed". The runtime adopts the
    clients and closes them when the run ends. A loopback server is never reached through an
    HTTP(S)_PROXY from the environment.
    """
    fields = getattr(cls, "model_fields", {})
    if "http_async_client" not in fields:
        return {}
    import httpx

    trust_env = not (url is not None and _is_loopback(url) and _proxy_env())
    clients: dict[str, Any] = {"http_async_client": httpx.AsyncClient(trust_env=trust_env)}
    if "http_client" in fields:
        clients["http_client"] = httpx.Client(trust_env=trust_env)
    runtime.adopt(*clients.values())
    return clients


def _ollama_root() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return _OLLAMA_DEFAULT
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    hostname = parts.hostname or "127.0.0.1"
    if hostname in ("0.0.0.0", "::"):  # a bind address, not where to connect
        hostname = "127.0.0.1"
    return f"{parts.scheme}://{hostname}:{parts.port or 11434}"


@dataclass
class _Built:
    model: BaseChatModel
    model_id: str
    endpoint: str
    max_tokens: int | None
    server: Any = None


def _build(spec: ModelSpec, role: str, runtime: LLMRuntime) -> _Built:
    from langchain_openai import AzureChatOpenAI, ChatOpenAI

    provider, name = spec.provider_and_name()
    common: dict[str, Any] = {"temperature": spec.temperature, "timeout": spec.timeout, "max_retries": 0}
    if provider == "local":
        server = runtime.server
        max_tokens = min(spec.max_tokens, LOCAL_MAX_TOKENS)
        model = ChatOpenAI(
            model=server.model, base_url=_LOCAL_PLACEHOLDER_URL, api_key="local", max_tokens=max_tokens,
            stream_usage=True, **common, **_http_clients(ChatOpenAI, _LOCAL_PLACEHOLDER_URL, runtime),
        )
        return _Built(model, f"local:{server.model}", "the embedded local model server", max_tokens, server)
    if provider == "openai-compatible":
        assert spec.base_url is not None
        key = _api_key(spec, role, required=True) or "not-needed"
        model = ChatOpenAI(
            model=name, base_url=spec.base_url, api_key=key, max_tokens=spec.max_tokens, stream_usage=True,
            **common, **_http_clients(ChatOpenAI, spec.base_url, runtime),
        )
        return _Built(model, f"{redact_url(spec.base_url)}#{name}", redact_url(spec.base_url) or "", spec.max_tokens)
    if provider == "openai":
        key = _api_key(spec, role, required=True)
        url = os.environ.get("OPENAI_BASE_URL") or _OPENAI_DEFAULT
        model = ChatOpenAI(model=name, api_key=key, max_tokens=spec.max_tokens, **common, **_http_clients(ChatOpenAI, url, runtime))
        return _Built(model, f"openai:{name}", redact_url(url) or _OPENAI_DEFAULT, spec.max_tokens)
    if provider == "azure_openai":
        key = _api_key(spec, role, required=True)
        for variable, what in (("AZURE_OPENAI_ENDPOINT", "the resource's endpoint URL"), ("OPENAI_API_VERSION", "the API version")):
            if not os.environ.get(variable, "").strip():
                raise LLMConfigError(f"role {role}: model {spec.label!r} needs {what} in ${variable}, which is not set",
                                     role=role, model=spec.label)
        url = os.environ.get("AZURE_OPENAI_ENDPOINT")
        model = AzureChatOpenAI(
            azure_deployment=name, api_key=key, max_tokens=spec.max_tokens, **common,
            **_http_clients(AzureChatOpenAI, url, runtime),
        )
        return _Built(model, f"azure_openai:{name}", redact_url(url) or "Azure OpenAI", spec.max_tokens)
    if provider == "ollama":
        root = _ollama_root()
        if _has_module("langchain_ollama"):
            from langchain_ollama import ChatOllama  # type: ignore[import-not-found]

            # ChatOllama builds its own clients per instance (nothing process-wide to share).
            model = ChatOllama(
                model=name, base_url=root, temperature=spec.temperature, num_predict=spec.max_tokens,
                client_kwargs={"timeout": spec.timeout},
            )
        else:
            # Ollama's OpenAI-compatible endpoint; max_tokens also in the body for older servers
            # that do not read max_completion_tokens.
            model = ChatOpenAI(
                model=name, base_url=root + "/v1", api_key="ollama", max_tokens=spec.max_tokens,
                stream_usage=True, extra_body={"max_tokens": spec.max_tokens}, **common,
                **_http_clients(ChatOpenAI, root, runtime),
            )
        return _Built(model, f"ollama:{name}", root + "/v1", spec.max_tokens)
    return _Built(_build_other(spec, role, provider, name, runtime), f"{provider}:{name}", provider, spec.max_tokens)


def _build_other(spec: ModelSpec, role: str, provider: str, name: str, runtime: LLMRuntime) -> BaseChatModel:
    package, module_name, class_name = _PROVIDER_CLASSES.get(provider, ("", "", ""))
    key = _api_key(spec, role, required=KNOWN_KEY_REQUIRED.get(provider, False))
    kwargs: dict[str, Any] = {
        "temperature": spec.temperature, "max_tokens": spec.max_tokens, "timeout": spec.timeout, "max_retries": 0,
    }
    if key:
        kwargs["api_key"] = key
    if module_name and _has_module(module_name):
        cls = getattr(importlib.import_module(module_name), class_name)
        try:
            return cls(model=name, **kwargs, **_http_clients(cls, None, runtime))
        except Exception as error:  # noqa: BLE001 - an unusual constructor: try init_chat_model below
            first_error: Exception | None = error
    else:
        first_error = None
    if _has_module("langchain"):
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]

        return init_chat_model(name, model_provider=provider, **kwargs)
    if first_error is not None:
        raise LLMConfigError(
            f"role {role}: cannot build {class_name} for {spec.label!r}: {type(first_error).__name__}: {first_error}",
            role=role, model=spec.label,
        ) from first_error
    hint = f"pip install {package}" if package else "pip install langchain (for init_chat_model)"
    raise LLMConfigError(
        f"role {role}: model {spec.label!r} needs the {package or provider} package, which is not "
        f"installed: {hint}. (Installed here: the embedded 'local' model, openai:..., ollama:..., "
        "and any OpenAI-compatible server via base_url.)",
        role=role, model=spec.label,
    )


KNOWN_KEY_REQUIRED = {
    "anthropic": True, "google_genai": True, "mistralai": True, "groq": True,
    "together": True, "fireworks": True, "deepseek": True, "xai": True,
}


def make_chat_model(
    spec: ModelSpec | str,
    role: str = "model",
    *,
    runtime: LLMRuntime | None = None,
    cache: bool | None = None,
    retry: RetryPolicy | None = None,
) -> BaseChatModel:
    """The managed chat model for ``spec`` playing ``role``.

    ``runtime``: the run's recorder/budget/cache (default: a fresh one with no cache and no
    limits). ``cache``: force the cache on/off for this model (default: the spec's rule).
    ``retry``: the backoff template (default: the runtime's), ``max_retries`` from the spec.
    Raises :class:`~apigen_mt.llm.retry.LLMConfigError` when the model cannot be built (a
    provider package or an API key variable missing); building never sends a request.
    """
    spec = ModelSpec.model_validate(spec)
    runtime = runtime if runtime is not None else LLMRuntime()
    built = _build(spec, role, runtime)
    policy = dataclasses.replace(retry or runtime.retry, max_retries=spec.max_retries)
    use_cache = spec.cache_enabled(runtime.cache is not None) if cache is None else (cache and runtime.cache is not None)
    info = ManagedInfo(
        role=role, model=spec.label, model_id=built.model_id, endpoint=built.endpoint,
        tool_calling=spec.effective_tool_calling, cache=bool(use_cache), spec=spec,
    )
    state = _Call(
        info=info, runtime=runtime, policy=policy,
        params={"temperature": spec.temperature, "max_tokens": built.max_tokens},
        max_tokens=built.max_tokens, timeout=spec.timeout, key_env=spec.key_env, server=built.server,
    )
    return _managed_copy(built.model, state, metadata={"role": role, "model": spec.label}, tags=[f"role:{role}"])


def wrap_chat_model(
    model: BaseChatModel,
    role: str = "model",
    *,
    runtime: LLMRuntime | None = None,
    model_id: str | None = None,
    cache: bool | None = None,
    retry: RetryPolicy | None = None,
    max_tokens: int | None = None,
) -> BaseChatModel:
    """Any chat model (e.g. :class:`~apigen_mt.testing.ScriptedChatModel`) with the same
    accounting, budget, cache and retries as :func:`make_chat_model` gives. A copy is returned;
    state the model keeps by reference (a scripted model's calls) stays shared.

    The cache, by default, is used when the model's ``temperature`` is 0 (or it has none)."""
    runtime = runtime if runtime is not None else LLMRuntime()
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    label = str(name)
    ident = model_id or f"{getattr(model, '_llm_type', type(model).__name__)}:{name}"
    temperature = getattr(model, "temperature", None)
    use_cache = (runtime.cache is not None) and (cache if cache is not None else temperature in (None, 0, 0.0))
    try:
        params = dict(model._identifying_params)
    except Exception:  # noqa: BLE001
        params = {}
    base = retry or runtime.retry
    policy = base
    info = ManagedInfo(role=role, model=label, model_id=ident, endpoint=type(model).__name__,
                       tool_calling="auto", cache=bool(use_cache), spec=None)
    limit = max_tokens if max_tokens is not None else getattr(model, "max_tokens", None)
    state = _Call(info=info, runtime=runtime, policy=policy, params=params, max_tokens=limit,
                  timeout=getattr(model, "request_timeout", None), key_env=None)
    return _managed_copy(model, state, metadata={"role": role, "model": label}, tags=[f"role:{role}"])


# ---------------------------------------------------------------------------------------------
# Probing (apigen-mt doctor)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One role's model answering (or not) one tiny request."""

    role: str
    model: str
    ok: bool
    detail: str
    latency_s: float = 0.0


PROBE_PROMPT = "Reply with the single word OK."


def probe_model(spec: ModelSpec | str, role: str = "model", *, timeout: float = 60.0,
                retry: RetryPolicy | None = None, runtime: LLMRuntime | None = None) -> Probe:
    """Send one tiny request (a few output tokens, no cache, no budget, at most one retry)."""
    spec = ModelSpec.model_validate(spec)
    tiny = spec.model_copy(update={
        "max_tokens": 8, "timeout": min(spec.timeout, timeout), "max_retries": min(spec.max_retries, 1), "cache": False,
    })
    runtime = runtime or LLMRuntime(retry=retry or RetryPolicy(initial_delay=0.2, max_delay=1.0))
    t0 = time.perf_counter()
    try:
        model = make_chat_model(tiny, role, runtime=runtime, cache=False)
        reply = model.invoke([HumanMessage(PROBE_PROMPT)])
    except Exception as error:  # noqa: BLE001 - the doctor reports every failure as a row
        return Probe(role, spec.label, False, f"{type(error).__name__}: {error}", round(time.perf_counter() - t0, 3))
    latency = round(time.perf_counter() - t0, 3)
    info = managed_info(model)
    endpoint = model.openai_api_base if info is not None and info.endpoint.startswith("the embedded") else (info.endpoint if info else "")
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    text = " ".join(text.split())[:30]
    return Probe(role, spec.label, True, f"answered {text!r} in {latency:.2f} s ({endpoint})", latency)


def probe_models(config: Configuration, *, timeout: float = 60.0, retry: RetryPolicy | None = None,
                 workers: int = 4) -> list[Probe]:
    """:func:`probe_model` for every role; identical endpoints are asked once, concurrently."""
    rows = config.models.items()
    unique: dict[str, tuple[str, ModelSpec]] = {}
    for label, spec in rows:
        ident = json.dumps([spec.model, spec.base_url, spec.api_key_env])
        unique.setdefault(ident, (label, spec))
    runtime = LLMRuntime(retry=retry or RetryPolicy(initial_delay=0.2, max_delay=1.0))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(unique)))) as pool:
        futures = {
            ident: pool.submit(probe_model, spec, label, timeout=timeout, runtime=runtime)
            for ident, (label, spec) in unique.items()
        }
        results = {ident: future.result() for ident, future in futures.items()}
    out = []
    for label, spec in rows:
        probe = results[json.dumps([spec.model, spec.base_url, spec.api_key_env])]
        out.append(dataclasses.replace(probe, role=label, model=spec.label))
    return out

