"""LangSmith tracing: off by default, never in the way offline, filterable when on.

Tracing happens only when the user asks for it: ``LANGSMITH_TRACING=true`` (or the older
``LANGCHAIN_TRACING_V2``) AND an API key (``LANGSMITH_API_KEY`` / ``LANGCHAIN_API_KEY``). If
tracing is requested without a key, :func:`configure_tracing` switches it off for this process
(LangChain would otherwise try to upload every run and log an error each time) and says why.
With tracing off nothing is sent and no LangSmith client is created, so offline runs never wait
on the network. (With tracing on, LangChain uploads from a background thread.)

Every graph run and LLM call carries the same metadata and tags, so traces can be filtered in
LangSmith (``metadata.blueprint_id = "..."`` or tag ``phase:phase1``)::

    config = run_config(run_id="r1", blueprint_id="b7", phase="phase1", attempt=2)
    graph.invoke(state, config)                       # the graph run and everything inside it
    llm.invoke(msgs, with_trace(config, role="reviewer[0]"))

Managed models (:mod:`apigen_mt.llm.factory`) also carry ``role`` and ``model`` metadata and a
``role:<role>`` tag of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

__all__ = [
    "TRACE_FIELDS",
    "TracingStatus",
    "configure_tracing",
    "run_config",
    "trace_metadata",
    "trace_tags",
    "tracing_status",
    "with_trace",
]

TRACE_FIELDS = ("run_id", "blueprint_id", "phase", "role", "attempt")
_TRUE = {"1", "true", "yes", "on"}
_FLAGS = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")
_KEYS = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


@dataclass(frozen=True)
class TracingStatus:
    enabled: bool
    requested: bool
    has_key: bool
    project: str | None
    detail: str


def tracing_status(environ: Mapping[str, str] | None = None) -> TracingStatus:
    """Whether LangSmith tracing is on, and why (never reveals the key)."""
    env = os.environ if environ is None else environ
    requested = any(env.get(flag, "").strip().lower() in _TRUE for flag in _FLAGS)
    has_key = any(env.get(key, "").strip() for key in _KEYS)
    project = env.get("LANGSMITH_PROJECT") or env.get("LANGCHAIN_PROJECT") or None
    if requested and has_key:
        detail = f"on (project {project or 'default'})"
    elif requested:
        detail = "requested (LANGSMITH_TRACING) but no LANGSMITH_API_KEY: off"
    else:
        detail = "off (set LANGSMITH_TRACING=true and LANGSMITH_API_KEY to trace)"
    return TracingStatus(requested and has_key, requested, has_key, project, detail)


def configure_tracing(environ: MutableMapping[str, str] | None = None) -> TracingStatus:
    """Apply the policy: tracing requested without a key is switched off in ``environ``
    (``os.environ`` by default) so LangChain never tries to upload. Returns the status."""
    env = os.environ if environ is None else environ
    status = tracing_status(env)
    if status.requested and not status.has_key:
        for flag in _FLAGS:
            if flag in env:
                env[flag] = "false"
    return status


def trace_metadata(
    *,
    run_id: str | None = None,
    blueprint_id: str | None = None,
    phase: str | None = None,
    role: str | None = None,
    attempt: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dict (``None`` values left out)."""
    values = {"run_id": run_id, "blueprint_id": blueprint_id, "phase": phase, "role": role, "attempt": attempt, **extra}
    return {k: v for k, v in values.items() if v is not None}


def trace_tags(metadata: Mapping[str, Any]) -> list[str]:
    """``phase:phase1``, ``role:generator``, ... for the standard fields present."""
    return [f"{name}:{metadata[name]}" for name in TRACE_FIELDS if metadata.get(name) is not None]


def _merge_tags(*groups: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for tag in group:
            seen.setdefault(tag, None)
    return list(seen)


def run_config(
    *,
    run_id: str | None = None,
    blueprint_id: str | None = None,
    phase: str | None = None,
    role: str | None = None,
    attempt: int | None = None,
    base: RunnableConfig | Mapping[str, Any] | None = None,
    run_name: str | None = None,
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    configurable: Mapping[str, Any] | None = None,
) -> RunnableConfig:
    """A RunnableConfig carrying the trace fields as metadata and tags, merged over ``base``
    (a new dict; ``base`` is not modified). Later values win for metadata and configurable;
    tags accumulate. Standard fields replace their older tags (``phase:phase1`` ->
    ``phase:phase2``)."""
    config: dict[str, Any] = dict(base or {})
    fields = trace_metadata(run_id=run_id, blueprint_id=blueprint_id, phase=phase, role=role, attempt=attempt)
    merged_meta = {**(config.get("metadata") or {}), **(metadata or {}), **fields}
    stale = {f"{name}:" for name in fields}
    old_tags = [t for t in (config.get("tags") or []) if not any(t.startswith(s) for s in stale)]
    config["metadata"] = merged_meta
    config["tags"] = _merge_tags(old_tags, tags, trace_tags(fields))
    if run_name is not None:
        config["run_name"] = run_name
    if configurable:
        config["configurable"] = {**(config.get("configurable") or {}), **configurable}
    return config  # type: ignore[return-value]


def with_trace(config: RunnableConfig | Mapping[str, Any] | None, **fields: Any) -> RunnableConfig:
    """``config`` plus more trace fields, e.g. ``with_trace(config, role="user", attempt=2)``."""
    return run_config(base=config, **fields)
