"""The programmatic entry points: one call per phase, no CLI needed.

    from apigen_mt.api import run_phase1

    result = run_phase1("retail", 20, model="openai:gpt-4o-mini", run_dir="runs/r1")
    result.blueprints      # the validated blueprints (JSON form), deduplicated
    result.attempts        # blueprint id -> every round (proposal, stage, reasons, votes, feedback)
    result.summary()       # accepted / rejected counts, rejections by stage, rounds used

``run_dir`` persists LangGraph checkpoints: calling again with the same arguments resumes
interrupted blueprints and reuses finished ones. Without it everything stays in memory.
``chat_models`` hands over ready LangChain models per role (e.g. test doubles);
otherwise models come from the configuration (defaults < TOML < environment < ``model``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_mt.configuration import Configuration
from apigen_mt.domains.registry import get_domain
from apigen_mt.llm.factory import LLMRuntime
from apigen_mt.runner import ThreadOutcome, open_checkpointer, run_threads
from apigen_mt.tools.dedup import DedupIndex

__all__ = ["Phase1Result", "arun_phase1", "run_phase1"]


@dataclass
class Phase1Result:
    """What a Phase-1 run produced, kept and not."""

    blueprints: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    llm: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Counts for a report: kept, rejected by final stage, errors, rounds, feedback effect."""
        first_try = sum(1 for bp in self.blueprints if len(self.attempts.get(bp["id"], [])) == 1)
        return {
            "accepted": len(self.blueprints),
            "rejected": len(self.rejected),
            "errors": len(self.errors),
            "accepted_first_round": first_try,
            "accepted_after_feedback": len(self.blueprints) - first_try,
            "rejected_by_stage": dict(Counter(r["rejection"].get("stage") for r in self.rejected)),
            "failed_rounds_by_stage": dict(
                Counter(a["stage"] for rounds in self.attempts.values() for a in rounds if a["stage"] != "accepted")
            ),
        }


def _thread_id(blueprint_id: str) -> str:
    return f"phase1:{blueprint_id}"


async def arun_phase1(
    domain: str,
    n: int,
    *,
    mode: str = "llm",
    seed: int = 0,
    concurrency: int = 8,
    run_dir: str | Path | None = None,
    model: str | None = None,
    configuration: Configuration | None = None,
    settings: Mapping[str, Any] | None = None,
    chat_models: Mapping[str, Any] | None = None,
    id_prefix: str | None = None,
) -> Phase1Result:
    """Async :func:`run_phase1`."""
    from apigen_mt.graphs.phase1 import build_phase1_graph
    from apigen_mt.graphs.settings import Phase1Settings

    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    get_domain(domain)  # a bad domain fails here, with its own message, before any thread starts
    if configuration is not None and model:
        raise ValueError("give either model or configuration, not both (set the model in the configuration)")
    if configuration is None:
        configuration = Configuration.load(overrides={"model": model} if model else None)
    phase1 = Phase1Settings.model_validate(dict(settings or {})) if not isinstance(settings, Phase1Settings) else settings
    if run_dir is not None and configuration.cache.path is None:
        configuration = configuration.model_copy(update={"run_dir": Path(run_dir)})
    runtime = LLMRuntime.from_configuration(configuration)
    await runtime.aopen()
    if not chat_models or set(chat_models) < {"generator", "reviewers", "feedback"}:
        await runtime.astart_local(configuration)
    index = DedupIndex(threshold=phase1.dedup_threshold)
    config = {
        "configurable": {
            "apigen_mt": configuration,
            "llm_runtime": runtime,
            "phase1": phase1,
            "chat_models": dict(chat_models or {}),
            "dedup_index": index,
        },
        "recursion_limit": 200,
    }
    prefix = id_prefix or domain
    items = [
        (_thread_id(f"{prefix}-{seed + i}"), {"domain": domain, "blueprint_id": f"{prefix}-{seed + i}", "seed": seed + i, "mode": mode})
        for i in range(n)
    ]
    result = Phase1Result()
    try:
        async with open_checkpointer(run_dir) as saver:
            compiled = build_phase1_graph().compile(checkpointer=saver)
            if run_dir is not None:
                await _seed_index(compiled, items, index)
            outcomes = await run_threads(compiled, items, config, concurrency=concurrency)
    finally:
        result.llm = runtime.report()
        runtime.close()
    _collect(outcomes, result)
    return result


async def _seed_index(compiled: Any, items: Sequence[tuple[str, Any]], index: DedupIndex) -> None:
    """On a resumed run, the blueprints accepted before the interruption are known duplicates."""
    for thread_id, _ in items:
        snapshot = await compiled.aget_state({"configurable": {"thread_id": thread_id}})
        values = snapshot.values or {}
        if values.get("status") == "accepted" and values.get("blueprint"):
            index.add(values["blueprint"]["id"], values["blueprint"])


def _collect(outcomes: Sequence[ThreadOutcome], result: Phase1Result) -> None:
    for outcome in outcomes:
        blueprint_id = outcome.thread_id.split(":", 1)[1]
        if not outcome.ok:
            result.errors[blueprint_id] = outcome.error or "no state"
            continue
        values = outcome.values
        result.attempts[blueprint_id] = list(values.get("attempts") or [])
        if values.get("status") == "accepted":
            result.blueprints.append(values["blueprint"])
        elif values.get("status") == "rejected":
            result.rejected.append({"id": blueprint_id, "rejection": values.get("rejection") or {}})
        else:
            result.errors[blueprint_id] = f"unfinished (status {values.get('status')!r})"


def run_phase1(domain: str, n: int, **kwargs: Any) -> Phase1Result:
    """Run Phase 1 for ``n`` blueprints of ``domain`` and return them with every attempt.

    Args:
        domain: a domain name (``retail``, ``airline``, ``bfcl.file_system``...) or a module path.
        n: how many blueprint requests (seeds ``seed`` .. ``seed + n - 1``); each may end
            accepted or rejected.
        mode: ``llm``, ``grounded`` or ``mixed`` (see :mod:`apigen_mt.graphs.phase1`).
        seed: the first seed; the same seeds give the same sampled contexts.
        concurrency: blueprint threads at once.
        run_dir: where checkpoints (and the LLM cache) live; None keeps everything in memory.
        model: one model for every role (``openai:gpt-4o``, ``local``...), over the configuration.
        configuration: a resolved :class:`~apigen_mt.configuration.Configuration`.
        settings: :class:`~apigen_mt.graphs.settings.Phase1Settings` fields (max_rounds,
            committee_size, pass_threshold, sampler, ...).
        chat_models: ready chat models per role, bypassing the configuration for those roles.
        id_prefix: blueprint ids are ``<id_prefix>-<seed>`` (default: the domain name).
    """
    return asyncio.run(arun_phase1(domain, n, **kwargs))
