"""Phase 1 of APIGen-MT as a LangGraph state machine: one verified task blueprint per run.

    prepare -> propose -> format_check -> execution_check -> policy_check -> grounding_check
            -> dedup_check -> review x K (parallel) -> aggregate -> accept
    a failed check or vote -> feedback -> propose (bounded rounds) | give_up

``prepare`` samples the generator context from the request's seed and picks the proposer:
``llm`` (the paper: the generator writes q, a_gt and o_gt) or ``grounded`` (a random walk
on the API graph, executed over real entities, gives a_gt; the LLM writes q and o_gt for
it, and is told the values the instruction must say, those no lookup reaches; the
``grounding`` check enforces them). ``mixed`` draws one of the two per blueprint from the seed.
With the run's coverage (``RunContext.coverage``), each blueprint is steered to the write
tool least covered so far, in both modes (:mod:`apigen_mt.tools.coverage`). The shared checks,
committee and feedback nodes live in :mod:`apigen_mt.graphs.verification`.

The module-level ``graph`` has no checkpointer (what ``langgraph dev`` needs); the runner
compiles :func:`build_phase1_graph` with one. Input: ``{"domain", "blueprint_id", "seed",
"mode"}``; settings from ``configurable["phase1"]`` (see :mod:`.settings`); models, the LLM
runtime and the dedup index from the run's context (:class:`~.context.RunContext`).
"""

from __future__ import annotations

import random
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from apigen_mt.agents.generator import MAX_ACTIONS, agenerate_blueprint, to_blueprint
from apigen_mt.agents.instruction_writer import awrite_instruction, to_grounded_blueprint
from apigen_mt.domains.registry import generating_domain, get_domain
from apigen_mt.tools.checks.execution import execute_blueprint, execution_errors
from apigen_mt.tools.checks.grounding import required_values
from apigen_mt.tools.checks.policy import policy_violations
from apigen_mt.tools.coverage import steered_walk, write_names
from apigen_mt.tools.grounded_walk import grounded_walk
from apigen_mt.tools.samplers.context import sample_context

from . import verification as v
from .context import RunContext, run_context
from .settings import Phase1Settings
from .state import Phase1State

__all__ = ["build_phase1_graph", "graph"]


def _rng(seed: int, purpose: str) -> random.Random:
    """Independent deterministic streams per purpose, so adding a draw to one keeps the others."""
    return random.Random(f"{seed}:{purpose}")


def _clean_walk(domain: Any, seed: int, tries: int, coverage: Any = None, pooled: bool = False) -> dict[str, Any] | None:
    """The first executed walk that also passes the policy rules for generated data, with the
    values its instruction must say (``must_say``: what no lookup reaches). With the run's
    ``coverage``, each walk ends in the least covered write tool (counted once it is clean;
    a domain without writes has nothing to steer). ``pooled``: ``domain`` is one state of a
    pool, where a write it cannot reach may be reachable in another (no miss is counted)."""
    rng = _rng(seed, "walk")
    if not write_names(domain, [spec.name for spec in domain.tools]):
        coverage = None
    trace: Any = None  # of the walk ``clean`` saw last: the one returned when it was clean

    def clean(walk: Any) -> bool:
        nonlocal trace
        trace = execute_blueprint(domain, walk.actions)
        return not execution_errors(trace) and not policy_violations(domain, trace, generated=True)

    for _ in range(tries):
        walk = (steered_walk(domain, rng, coverage, accept=clean, count_misses=not pooled) if coverage is not None
                else grounded_walk(domain, rng))
        if walk is None:
            return None
        if coverage is not None or clean(walk):
            return {**walk.to_json(), "must_say": required_values(domain, walk.actions, trace)}
    return None


def prepare(state: Phase1State, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Draw the initial state (a domain of the run domain's state pool, when it has one),
    sample the context; resolve the proposer (a grounded request without a clean walk falls
    back to ``llm`` and says so in the context)."""
    settings = Phase1Settings.from_config(config)
    domain = generating_domain(state.domain)
    pool = domain.state_pool() if settings.state_pool else []
    if pool:  # the world this blueprint starts in: its domain from here on
        domain = get_domain(pool[_rng(state.seed, "state").randrange(len(pool))])
    mode = state.mode or settings.mode
    if mode not in ("llm", "grounded", "mixed"):
        raise ValueError(f"mode must be llm, grounded or mixed, not {mode!r}")
    if mode == "mixed":
        mode = "grounded" if _rng(state.seed, "mode").random() < settings.grounded_ratio else "llm"
    coverage = run_context(runtime).coverage
    walk = _clean_walk(domain, state.seed, settings.walk_tries, coverage, pooled=bool(pool)) if mode == "grounded" else None
    compact = run_context(runtime).generator_is_compact(config)
    sampler = settings.sampler_for(compact)
    context = sample_context(domain, _rng(state.seed, "context"), sampler, user_id=(walk or {}).get("user_id"),
                             coverage=coverage if walk is None else None)
    if walk is None and coverage is not None:
        coverage.add(context.get("write_tools") or [])
    if mode == "grounded" and walk is None:
        context["fallback"] = "no executable, policy-clean API-graph walk was found: the LLM proposes the actions"
        mode = "llm"
    return {"domain": domain.name, "context": context, "walk": walk, "proposer": mode,
            "max_actions": settings.actions_for(compact)}


async def propose(state: Phase1State, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """One round's proposal: the generator's (llm) or the instruction writer's over the walk."""
    settings = Phase1Settings.from_config(config)
    context = run_context(runtime)
    domain = get_domain(state.domain)
    round_ = state.round + 1
    limits = await v.round_limits(settings, context, config, state.domain)
    model = await context.amodel(config, "generator")
    trace = v.trace_config(config, {"blueprint_id": state.blueprint_id, "round": round_}, "phase1", "generator")
    extra = {"user_id": state.context.get("user_id")} if state.context.get("user_id") else {}
    if state.proposer == "grounded":
        walk = state.walk
        result = await awrite_instruction(
            model, domain, state.context, walk["actions"], walk.get("observations") or [], state.feedback,
            must_say=walk.get("must_say") or (), prompts_dir=settings.prompts_dir, config=trace,
        )
        make = lambda value: to_grounded_blueprint(value, domain, walk["actions"], state.blueprint_id, **extra)  # noqa: E731
    else:
        result = await agenerate_blueprint(
            model, domain, state.context, state.feedback,
            prompts_dir=settings.prompts_dir, config=trace,
            max_actions=state.max_actions or MAX_ACTIONS,
        )
        make = lambda value: to_blueprint(value, domain, state.blueprint_id, **extra)  # noqa: E731
    if not result.ok:
        failure = {"stage": "generation", "passed": False, "reasons": [result.error], "diff": None}
        return {"round": round_, "proposal": None, "check": failure, **limits}
    return {"round": round_, "proposal": make(result.value).to_json(), "check": None, **limits}


def build_phase1_graph() -> StateGraph:
    """The uncompiled graph (compile it with or without a checkpointer)."""
    builder = StateGraph(Phase1State, context_schema=RunContext)
    builder.add_node("prepare", prepare)
    builder.add_node("propose", propose)
    v.add_verification(builder, proposer="propose")
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "propose")
    return builder


graph = build_phase1_graph().compile()
graph.name = "phase1"
