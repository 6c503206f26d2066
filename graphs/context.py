"""The run context of the graphs: the live objects one run shares (LangGraph's runtime context).

Plain settings (each role's model, the phase settings) come from the runnable config's
``configurable``, which LangGraph Studio sets. Live objects cannot come from there, and must
not be shared beyond their run: the LLM runtime (budget, call recorder, response cache, HTTP
clients), the dedup index a run's threads share, ready chat models a caller hands in. They
travel as LangGraph's runtime context, the way langchain-ai/react-agent passes its
``Context``::

    graph.invoke(request, config, context=RunContext(chat_models={"generator": model, ...}))

    async def propose(state, config, runtime: Runtime[RunContext]):
        model = await run_context(runtime).amodel(config, "generator")

One context is one run: the runner makes one per phase (or per thread, when models differ per
item), and ``langgraph dev`` builds a fresh one from every run request, so each Studio run gets
its own budget and call records. A graph invoked without a context uses a shared one (one per
event loop) whose runtimes are shared by configuration; pass a context for a budget of its own.

Each role's model is resolved once per context and settings (the configuration is read, the
spec built, the cache opened, in a worker thread: an async node never blocks the event loop).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema

from apigen_mt.configuration import Configuration, settings_key
from apigen_mt.llm.factory import LLMRuntime

__all__ = ["RunContext", "run_context"]


class RunContext(BaseModel):
    """The live objects of one run. Every field is optional.

    Unknown keys are ignored: ``langgraph dev`` mirrors a run's ``configurable`` into its
    context, and those plain settings are read from the config, not from here. No field is
    in the JSON schema (none can be typed into Studio).
    """

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    llm: SkipJsonSchema[Any] = Field(None, description="the run's LLMRuntime (None: one is made for this context)")
    dedup_index: SkipJsonSchema[Any] = Field(None, description="the DedupIndex a run's threads share (None: no cross-thread dedup)")
    coverage: SkipJsonSchema[Any] = Field(None, description="the WriteCoverage a run's threads share: each new blueprint "
                                          "gets the least covered write tool (None: uniform sampling)")
    chat_models: SkipJsonSchema[Any] = Field(
        None, description="ready chat models by role, bypassing the configuration: {'generator': m, 'reviewers': [m1, m2]}"
    )

    _resolved: dict[Any, tuple[Any, Configuration]] = PrivateAttr(default_factory=dict)
    _models: dict[tuple[Any, str, int], Any] = PrivateAttr(default_factory=dict)
    _runtimes: dict[Any, LLMRuntime] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    # -- models ------------------------------------------------------------------------------

    def given(self) -> Mapping[str, Any]:
        given = self.chat_models or {}
        if not isinstance(given, Mapping):
            raise TypeError(f"RunContext.chat_models must map role -> model, not {type(given).__name__}")
        return given

    def _given_model(self, role: str, index: int) -> Any:
        model = self.given()[role]
        if isinstance(model, Sequence) and not isinstance(model, (str, bytes)):
            if not model:
                raise ValueError(f"RunContext.chat_models[{role!r}] is empty")
            return model[index % len(model)]
        return model

    def _known_configuration(self, key: Any) -> Configuration | None:
        with self._lock:
            known = self._resolved.get(key)
        return known[1] if known is not None else None

    def configuration(self, config: Mapping[str, Any] | None) -> Configuration:
        """The configuration ``config`` stands for, resolved once per context and settings
        (resolving may read the TOML file)."""
        key = settings_key(config)
        known = self._known_configuration(key)
        if known is not None:
            return known
        resolved = Configuration.from_runnable_config(config)
        base = ((config or {}).get("configurable") or {}).get("apigen_mt")  # kept alive: its id is in the key
        with self._lock:
            return self._resolved.setdefault(key, (base, resolved))[1]

    async def aconfiguration(self, config: Mapping[str, Any] | None) -> Configuration:
        """:meth:`configuration` for async nodes: a first resolution runs in a worker thread."""
        known = self._known_configuration(settings_key(config))
        return known if known is not None else await asyncio.to_thread(self.configuration, config)

    def llm_runtime(self, configuration: Configuration) -> LLMRuntime:
        """The run's LLM runtime: the one given, else one this context makes per cache and
        budget setting (one run: one runtime, so a budget per run), closed with the context."""
        if self.llm is not None:
            if not isinstance(self.llm, LLMRuntime):
                raise TypeError(f"RunContext.llm must be an LLMRuntime, not {type(self.llm).__name__}")
            return self.llm
        budget, cache = configuration.budget, configuration.cache
        key = (cache.enabled, str(configuration.cache_path), budget.max_calls, budget.max_tokens)
        with self._lock:
            runtime = self._runtimes.get(key)
            if runtime is None:
                runtime = self._runtimes[key] = LLMRuntime.from_configuration(configuration)
                weakref.finalize(self, runtime.close)  # a Studio run's cache file and clients go with it
            return runtime

    def _known_model(self, key: Any, role: str, index: int) -> Any:
        """The given model of ``role``, or the one resolved before for these settings; None if neither."""
        if role in self.given():
            return self._given_model(role, index)
        with self._lock:
            return self._models.get((key, role, index))

    def model(self, config: Mapping[str, Any] | None, role: str, index: int = 0) -> Any:
        """The chat model of ``role`` (``reviewers`` takes the judge's ``index``; judges beyond
        the configured or given committee reuse it in turn)."""
        key = settings_key(config)
        known = self._known_model(key, role, index)
        if known is not None:
            return known
        configuration = self.configuration(config)
        judge = index % len(configuration.models.reviewers) if role == "reviewers" else 0
        model = self.llm_runtime(configuration).role_model(configuration, role, judge)
        with self._lock:
            return self._models.setdefault((key, role, index), model)

    async def amodel(self, config: Mapping[str, Any] | None, role: str, index: int = 0) -> Any:
        """:meth:`model` for async nodes: a first resolution (configuration file, cache file)
        runs in a worker thread (``langgraph dev`` fails a run that blocks its loop)."""
        known = self._known_model(settings_key(config), role, index)
        return known if known is not None else await asyncio.to_thread(self.model, config, role, index)

    async def areviewer_count(self, config: Mapping[str, Any] | None) -> int:
        """How many judges the given models, else the configuration, name."""
        given = self.given().get("reviewers")
        if given is not None:
            return len(given) if isinstance(given, Sequence) and not isinstance(given, (str, bytes)) else 1
        return len((await self.aconfiguration(config)).models.reviewers)

    def generator_is_compact(self, config: Mapping[str, Any] | None) -> bool:
        """Whether the generator is the embedded small-window model (not replaced by a given one)."""
        if "generator" in self.given():
            return False
        return self.configuration(config).spec("generator").is_local


_SHARED: weakref.WeakKeyDictionary[Any, RunContext] = weakref.WeakKeyDictionary()
_SHARED_OFF_LOOP = RunContext()
_SHARED_LOCK = threading.Lock()


def _shared_context() -> RunContext:
    """The context of graphs invoked without one: one per event loop (a model's connections
    belong to the loop that opened them, so a second ``asyncio.run`` must not reuse them)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a sync node in a worker thread: no connections to keep apart
        return _SHARED_OFF_LOOP
    with _SHARED_LOCK:
        context = _SHARED.get(loop)
        if context is None:
            context = _SHARED[loop] = RunContext()
        return context


def run_context(runtime: Runtime[RunContext] | None) -> RunContext:
    """The context of the node's run (the process-wide one when the graph got none)."""
    context = getattr(runtime, "context", None)
    if context is None:
        return _shared_context()
    if not isinstance(context, RunContext):
        raise TypeError(f"the graphs' context is a RunContext (or a dict of its fields), not {type(context).__name__}")
    return context
