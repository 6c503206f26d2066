"""Which chat model a graph node uses for a role.

By default the configured one (``apigen_mt.llm.factory.get_chat_model``: per-role specs,
shared runtime with retries, budget, cache, accounting). A caller may instead hand over
ready model objects in ``configurable["chat_models"]``, ``{"generator": model, "reviewers":
[m1, m2, m3], ...}``: any LangChain chat model works (a test double, a model built by
hand). Committee members beyond the given list reuse it in turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from apigen_mt.configuration import Configuration
from apigen_mt.llm.factory import get_chat_model

__all__ = ["arole_model", "configured_reviewers", "role_model"]


def _given(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    given = ((config or {}).get("configurable") or {}).get("chat_models") or {}
    if not isinstance(given, Mapping):
        raise TypeError(f"configurable['chat_models'] must be a mapping of role -> model, not {type(given).__name__}")
    return given


def role_model(config: Mapping[str, Any] | None, role: str, index: int = 0) -> Any:
    """The model of ``role`` (``reviewers`` takes the judge's ``index``)."""
    given = _given(config)
    if role in given:
        model = given[role]
        if isinstance(model, Sequence) and not isinstance(model, (str, bytes)):
            if not model:
                raise ValueError(f"configurable['chat_models'][{role!r}] is empty")
            return model[index % len(model)]
        return model
    if role == "reviewers":
        return get_chat_model(config, role, index % max(1, configured_reviewers(config)))
    return get_chat_model(config, role)


async def arole_model(config: Mapping[str, Any] | None, role: str, index: int = 0) -> Any:
    """:func:`role_model` for async nodes: resolving a configured model may read the
    configuration file and open the response cache, which must not block the event loop
    (``langgraph dev`` fails a run that does)."""
    if role in _given(config):
        return role_model(config, role, index)
    return await asyncio.to_thread(role_model, config, role, index)


def configured_reviewers(config: Mapping[str, Any] | None) -> int:
    """How many judges the configuration (or the given models) names."""
    given = _given(config).get("reviewers")
    if given is not None:
        return len(given) if isinstance(given, Sequence) and not isinstance(given, (str, bytes)) else 1
    return len(Configuration.from_runnable_config(config).models.reviewers)
