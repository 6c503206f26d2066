"""The programmatic entry points: one call per phase, no CLI needed.

    from apigen_mt.api import run_phase1, run_phase2

    p1 = run_phase1("retail", 20, model="openai:gpt-4o-mini", run_dir="runs/r1")
    p1.blueprints          # the validated blueprints (JSON form), deduplicated
    p1.attempts            # blueprint id -> every round (proposal, stage, reasons, votes, feedback)
    p1.summary()           # accepted / rejected counts, rejections by stage, rounds used
    p2 = run_phase2(p1.blueprints, model="openai:gpt-4o-mini", run_dir="runs/r1")
    p2.trajectories        # verified conversations (OpenAI messages, tools, reward)
    p2.failed              # every failed one, with its reasons

``run_dir`` persists LangGraph checkpoints: calling again with the same arguments resumes
interrupted items and reuses finished ones. Without it everything stays in memory.
``chat_models`` hands over ready LangChain models per role (e.g. test doubles);
otherwise models come from the configuration (defaults < TOML < environment < ``model``).
``observer`` (a :class:`~apigen_mt.runner.RunObserver`, e.g. the CLI's progress display)
sees every finished node, finished thread and model call while the run goes on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_mt.blueprint import blueprint_json
from apigen_mt.configuration import Configuration
from apigen_mt.domains.registry import generating_domain, get_domain
from apigen_mt.graphs.context import RunContext
from apigen_mt.llm.accounting import CallRecorder
from apigen_mt.llm.factory import LLMRuntime
from apigen_mt.llm.preflight import phase_roles
from apigen_mt.runner import RunObserver, ThreadOutcome, open_checkpointer, run_threads
from apigen_mt.tools.contamination import contamination_flags
from apigen_mt.tools.coverage import WriteCoverage, write_names
from apigen_mt.tools.dedup import DedupIndex

__all__ = [
    "Phase1Result", "Phase2Result", "arun_phase1", "arun_phase2", "phase1_result", "phase2_result", "run_phase1", "run_phase2",
]


@dataclass
class Phase1Result:
    """What a Phase-1 run produced, kept and not."""

    blueprints: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    llm: dict[str, Any] | None = None
    contamination: dict[str, str] = field(default_factory=dict)
    """Accepted blueprints that look like a benchmark test task: id -> reason (kept, flagged)."""

    def summary(self) -> dict[str, Any]:
        """Counts for a report: kept, rejected by final stage, errors, rounds, feedback effect."""
        first_try = sum(1 for bp in self.blueprints if len(self.attempts.get(bp["id"], [])) == 1)
        return {
            "accepted": len(self.blueprints),
            "rejected": len(self.rejected),
            "errors": len(self.errors),
            "accepted_first_round": first_try,
            "accepted_after_feedback": len(self.blueprints) - first_try,
            "flagged_as_test_contamination": len(self.contamination),
            "rejected_by_stage": dict(Counter(r["rejection"].get("stage") for r in self.rejected)),
            "failed_rounds_by_stage": dict(
                Counter(a["stage"] for rounds in self.attempts.values() for a in rounds if a["stage"] != "accepted")
            ),
        }


def _thread_id(blueprint_id: str) -> str:
    return f"phase1:{blueprint_id}"


def _resolve_configuration(configuration: Configuration | None, model: str | None, run_dir: str | Path | None) -> Configuration:
    if configuration is not None and model:
        raise ValueError("give either model or configuration, not both (set the model in the configuration)")
    if configuration is None:
        configuration = Configuration.load(overrides={"model": model} if model else None)
    if run_dir is not None and configuration.cache.path is None:
        configuration = configuration.model_copy(update={"run_dir": Path(run_dir)})
    return configuration


async def _open_runtime(
    configuration: Configuration | None,
    model: str | None,
    run_dir: str | Path | None,
    chat_models: Mapping[str, Any] | None,
    roles: set[str],
    observer: RunObserver | None = None,
) -> tuple[Configuration, LLMRuntime]:
    """The resolved configuration and the run's LLM runtime (cache under ``run_dir``); the
    embedded server is started off the event loop unless ready models cover ``roles``."""
    configuration = _resolve_configuration(configuration, model, run_dir)
    recorder = CallRecorder(sink=observer.llm_call if observer is not None else None)
    runtime = LLMRuntime.from_configuration(configuration, recorder=recorder)
    await runtime.aopen()
    if not callable(chat_models) and not roles <= set(chat_models or {}):
        await runtime.astart_local(configuration)
    return configuration, runtime


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
    observer: RunObserver | None = None,
    database_url: str | None = None,
    workers: int | None = None,
    cluster: Any = None,
) -> Phase1Result:
    """Async :func:`run_phase1`."""
    from apigen_mt.graphs.phase1 import build_phase1_graph
    from apigen_mt.graphs.settings import Phase1Settings

    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    generating_domain(domain)  # a bad domain fails here, with its own message, before any thread starts
    phase1 = Phase1Settings.model_validate(dict(settings or {})) if not isinstance(settings, Phase1Settings) else settings
    prefix = id_prefix or domain
    items = [
        (_thread_id(f"{prefix}-{seed + i}"), {"domain": domain, "blueprint_id": f"{prefix}-{seed + i}", "seed": seed + i, "mode": mode})
        for i in range(n)
    ]
    if database_url or workers is not None or cluster is not None:
        outcomes, llm = await _run_on_cluster(
            build_phase1_graph(), 1, items, phase1, configuration, model, run_dir, chat_models, database_url, workers,
            concurrency, observer, cluster,
        )
        result = phase1_result(outcomes, domain)
        result.llm = llm
        return result
    configuration, runtime = await _open_runtime(configuration, model, run_dir, chat_models, phase_roles(1), observer)
    index = DedupIndex(threshold=phase1.dedup_threshold)
    coverage = WriteCoverage()
    config = {"configurable": {"apigen_mt": configuration, "phase1": phase1}, "recursion_limit": 200}
    context = RunContext(llm=runtime, dedup_index=index, coverage=coverage, chat_models=dict(chat_models or {}))

    async def seed_index(compiled: Any) -> None:
        if run_dir is not None:
            await _seed_run(compiled, items, index, coverage, get_domain(domain))

    outcomes, llm = await _run_graph(
        build_phase1_graph(), items, config, context, runtime, run_dir=run_dir, concurrency=concurrency,
        before=seed_index, observer=observer,
    )
    result = phase1_result(outcomes, domain)
    result.llm = llm
    return result


async def _run_on_cluster(
    builder: Any, phase: int, items: Sequence[tuple[str, Any]], settings: Any, configuration: Configuration | None,
    model: str | None, run_dir: str | Path | None, chat_models: Any, database_url: str | None, workers: int | None,
    concurrency: int, observer: RunObserver | None, cluster: Any,
) -> tuple[list[ThreadOutcome], dict[str, Any]]:
    """A phase's items as jobs for workers (see :mod:`apigen_mt.cluster`), on ``cluster`` when
    one is open (a :class:`~apigen_mt.cluster.coordinator.LocalCluster`)."""
    from apigen_mt.cluster.coordinator import arun_cluster_phase

    if chat_models:
        raise ValueError("chat_models are objects of this process: workers cannot use them; "
                         "name the models in the configuration (e.g. an OpenAI-compatible base URL)")
    configuration = _resolve_configuration(configuration, model, run_dir)
    return await arun_cluster_phase(
        builder, phase, items, settings.model_dump(mode="json", exclude_unset=True), configuration, run_dir=run_dir,
        database_url=database_url, workers=workers, concurrency=concurrency, observer=observer, cluster=cluster,
    )


async def _run_graph(
    builder: Any,
    items: Sequence[tuple[str, Any]],
    config: Any,
    context: Any,
    runtime: LLMRuntime,
    *,
    run_dir: str | Path | None,
    concurrency: int,
    before: Callable[[Any], Awaitable[None]] | None = None,
    observer: RunObserver | None = None,
) -> tuple[list[ThreadOutcome], dict[str, Any]]:
    """Compile ``builder`` with the run's checkpointer (``before`` sees the compiled graph),
    run the items, close the runtime (its HTTP clients on this loop); returns the outcomes and
    the runtime's LLM report."""
    try:
        async with open_checkpointer(run_dir) as saver:
            compiled = builder.compile(checkpointer=saver)
            if before is not None:
                await before(compiled)
            outcomes = await run_threads(
                compiled, items, config, context=context, concurrency=concurrency, observer=observer
            )
            return outcomes, runtime.report()
    finally:
        await runtime.aclose()


async def _seed_run(compiled: Any, items: Sequence[tuple[str, Any]], index: DedupIndex, coverage: WriteCoverage,
                    domain: Any) -> None:
    """On a resumed run, the blueprints accepted before the interruption are known duplicates,
    and the write tools of the threads prepared before it are covered."""
    for thread_id, _ in items:
        snapshot = await compiled.aget_state({"configurable": {"thread_id": thread_id}})
        values = snapshot.values or {}
        if values.get("status") == "accepted" and values.get("blueprint"):
            index.add(values["blueprint"]["id"], values["blueprint"])
        walk, context = values.get("walk") or {}, values.get("context") or {}
        claimed = [a["name"] for a in walk.get("actions") or []] if walk else list(context.get("write_tools") or [])
        coverage.add(write_names(domain, claimed))


def phase1_result(outcomes: Sequence[ThreadOutcome], domain: str) -> Phase1Result:
    """The Phase-1 result of some finished threads (all of a run, or one as it ends)."""
    result = Phase1Result()
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
    result.contamination = contamination_flags(result.blueprints, domain)
    return result


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
        observer: sees nodes, threads and model calls as they happen (progress, accounting).
        database_url: run on Postgres: the requests become jobs that workers run
            (``apigen-mt worker``, see :mod:`apigen_mt.cluster`); the database holds this run only.
        workers: local worker processes to start (default with ``database_url``: one per core;
            0: remote workers only); without ``database_url``, an embedded Postgres in ``run_dir``.
        cluster: an open :class:`~apigen_mt.cluster.coordinator.LocalCluster` (the database and
            local workers) used instead of ``database_url`` and ``workers``: one for both phases
            starts the workers and an embedded server once.
    """
    return asyncio.run(arun_phase1(domain, n, **kwargs))


# ---------------------------------------------------------------------------------------------
# Phase 2
# ---------------------------------------------------------------------------------------------


@dataclass
class Phase2Result:
    """Verified conversations, and every failed one with its reasons."""

    trajectories: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    llm: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        attempted = len(self.trajectories) + len(self.failed)
        kept = self.trajectories
        return {
            "accepted": len(kept),
            "failed_conversations": len(self.failed),
            "errors": len(self.errors),
            "success_rate": len(kept) / attempted if attempted else None,
            "failed_by_stop": dict(Counter(t["stop"] for t in self.failed)),
            "mean_turns": sum(t["turns"] for t in kept) / len(kept) if kept else None,
            "mean_tool_calls": sum(t["tool_calls"] for t in kept) / len(kept) if kept else None,
            "mean_user_turns": sum(t["user_turns"] for t in kept) / len(kept) if kept else None,
        }


async def arun_phase2(
    blueprints: Sequence[Mapping[str, Any]],
    *,
    concurrency: int = 8,
    run_dir: str | Path | None = None,
    model: str | None = None,
    configuration: Configuration | None = None,
    settings: Mapping[str, Any] | None = None,
    chat_models: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    observer: RunObserver | None = None,
    database_url: str | None = None,
    workers: int | None = None,
    cluster: Any = None,
) -> Phase2Result:
    """Async :func:`run_phase2`."""
    from apigen_mt.graphs.phase2 import build_phase2_graph
    from apigen_mt.graphs.settings import Phase2Settings

    items = []
    for blueprint in blueprints:
        data = dict(blueprint_json(blueprint))
        missing = [k for k in ("id", "domain", "instruction", "actions") if k not in data]
        if missing:
            raise ValueError(f"blueprint {data.get('id', '?')!r} lacks {', '.join(missing)}: give validated blueprints")
        generating_domain(data["domain"])
        items.append((f"phase2:{data['id']}", {"blueprint": data}))
    if len({thread for thread, _ in items}) != len(items):
        raise ValueError("blueprint ids must be unique")
    phase2 = Phase2Settings.model_validate(dict(settings or {})) if not isinstance(settings, Phase2Settings) else settings
    if database_url or workers is not None or cluster is not None:
        outcomes, llm = await _run_on_cluster(
            build_phase2_graph(), 2, items, phase2, configuration, model, run_dir, chat_models, database_url, workers,
            concurrency, observer, cluster,
        )
        result = phase2_result(outcomes)
        result.llm = llm
        return result
    configuration, runtime = await _open_runtime(
        configuration, model, run_dir, chat_models, phase_roles(2, phase2.best_of_n), observer
    )
    config = {"configurable": {"apigen_mt": configuration, "phase2": phase2}, "recursion_limit": 1000}
    shared = RunContext(llm=runtime, chat_models=dict(chat_models or {})) if not callable(chat_models) else None

    def context_for(thread_id: str, request: Mapping[str, Any]) -> RunContext:
        if shared is not None:
            return shared
        return RunContext(llm=runtime, chat_models=dict(chat_models(request["blueprint"]) or {}))

    outcomes, llm = await _run_graph(
        build_phase2_graph(), items, config, context_for, runtime, run_dir=run_dir, concurrency=concurrency,
        observer=observer,
    )
    result = phase2_result(outcomes)
    result.llm = llm
    return result


def phase2_result(outcomes: Sequence[ThreadOutcome]) -> Phase2Result:
    """The Phase-2 result of some finished threads (all of a run, or one as it ends)."""
    result = Phase2Result()
    for outcome in outcomes:
        blueprint_id = outcome.thread_id.split(":", 1)[1]
        if not outcome.ok or outcome.values.get("status") not in ("accepted", "rejected"):
            result.errors[blueprint_id] = outcome.error or f"unfinished (status {(outcome.values or {}).get('status')!r})"
            continue
        for trajectory in outcome.values.get("trajectories") or []:
            if trajectory["reward"] == 1.0 and not trajectory.get("duplicate"):
                result.trajectories.append(trajectory)
            elif trajectory["reward"] != 1.0:
                result.failed.append(trajectory)
    return result


def run_phase2(blueprints: Sequence[Mapping[str, Any]], **kwargs: Any) -> Phase2Result:
    """Simulate and verify conversations for validated blueprints.

    Args:
        blueprints: blueprints in JSON form (``id``, ``domain``, ``instruction``, ``actions``,
            ``outputs``), e.g. ``run_phase1(...).blueprints`` or lines of a blueprints file.
        concurrency, run_dir, model, configuration: as in :func:`run_phase1`.
        settings: :class:`~apigen_mt.graphs.settings.Phase2Settings` fields (max_attempts,
            best_of_n, max_turns, ...).
        chat_models: ready chat models per role (``user``, ``user_critic``, ``assistant``),
            or a function of the blueprint returning them.
        observer, database_url, workers, cluster: as in :func:`run_phase1`.

    Returns the verified, unique conversations (OpenAI message form, tools, reward) and
    every failed one with its reasons (stop cause, state differences, missing outputs).
    """
    return asyncio.run(arun_phase2(blueprints, **kwargs))
