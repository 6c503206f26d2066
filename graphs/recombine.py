"""Reverse task recombination as a LangGraph state machine (APIGen-MT Phase 1, step 6).

    recombine -> format_check -> execution_check -> policy_check -> grounding_check -> dedup_check
              -> review x K -> aggregate -> accept | feedback -> recombine | give_up

Input: ``{"domain", "blueprint_id", "sources": [validated blueprints of ONE user]}``.
The sources' actions and outputs are concatenated (a shared look-up made once); the
recombiner writes one instruction for them; the result goes through the same checks and
committee as any proposal (:mod:`.verification`), so a longer task is correct by
construction or rejected with its reasons. Feedback rewrites the instruction; the actions
stay the sources'. Groups come from :func:`apigen_mt.tools.user_groups.group_by_user`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from apigen_mt.agents.recombiner import arecombine_instructions, combined_blueprint
from apigen_mt.domains.registry import get_domain
from apigen_mt.tools.user_groups import user_of

from . import verification as v
from .context import RunContext, run_context
from .settings import Phase1Settings
from .state import RecombineState

__all__ = ["build_recombine_graph", "graph"]


async def recombine(state: RecombineState, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """One round: the recombiner's instruction over the merged actions and outputs."""
    if len(state.sources) < 2:
        raise ValueError(f"recombination needs at least two blueprints of one user, got {len(state.sources)}")
    users = {user_of(source) for source in state.sources}
    if len(users) != 1 or None in users:
        raise ValueError(f"recombination needs blueprints of one known user, got users {sorted(map(str, users))}")
    worlds = {str(source.get("domain") or state.domain) for source in state.sources}
    if len(worlds) != 1:  # blueprints of one user in two initial states cannot be one task
        raise ValueError(f"recombination needs blueprints of one domain and state, got {sorted(worlds)}")
    settings = Phase1Settings.from_config(config)
    context = run_context(runtime)
    domain = get_domain(worlds.pop())
    round_ = state.round + 1
    limits = await v.round_limits(settings, context, config, domain.name)
    trace = v.trace_config(config, {"blueprint_id": state.blueprint_id, "round": round_}, "recombine", "recombiner")
    result = await arecombine_instructions(
        await context.amodel(config, "recombiner"), domain, state.sources, state.feedback,
        prompts_dir=settings.prompts_dir, config=trace,
    )
    if not result.ok:
        failure = {"stage": "generation", "passed": False, "reasons": [result.error], "diff": None}
        return {"round": round_, "proposal": None, "check": failure, **limits}
    blueprint = combined_blueprint(result.value, domain, state.sources, state.blueprint_id, user_id=users.pop())
    return {"domain": domain.name, "round": round_, "proposal": blueprint.to_json(), "check": None, **limits}


def build_recombine_graph() -> StateGraph:
    """The uncompiled graph (compile it with or without a checkpointer)."""
    builder = StateGraph(RecombineState, context_schema=RunContext)
    builder.add_node("recombine", recombine)
    v.add_verification(builder, proposer="recombine")
    builder.add_edge(START, "recombine")
    return builder


graph = build_recombine_graph().compile()
graph.name = "recombine"
