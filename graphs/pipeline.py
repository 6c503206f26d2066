"""Both phases for one blueprint request, for LangGraph Studio: Phase 1, then Phase 2 on
the accepted blueprint. The two graphs are added as subgraphs (their own nodes show in
Studio, and their checkpoints nest under this thread's).

    phase1 (subgraph) -> accepted? -> phase2 (subgraph) -> END
                      -> rejected  -> END

Input: ``{"domain", "blueprint_id", "seed", "mode"}`` as for Phase 1; settings from
``configurable["phase1"]`` and ``configurable["phase2"]``.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from .phase1 import build_phase1_graph
from .context import RunContext
from .phase2 import build_phase2_graph
from .state import PipelineState

__all__ = ["build_pipeline_graph", "graph"]


def after_phase1(state: PipelineState) -> str:
    return "phase2" if state.status == "accepted" and state.blueprint else END


def build_pipeline_graph() -> StateGraph:
    builder = StateGraph(PipelineState, context_schema=RunContext)
    builder.add_node("phase1", build_phase1_graph().compile())
    builder.add_node("phase2", build_phase2_graph().compile())
    builder.add_edge(START, "phase1")
    builder.add_conditional_edges("phase1", after_phase1, ["phase2", END])
    builder.add_edge("phase2", END)
    return builder


graph = build_pipeline_graph().compile()
graph.name = "pipeline"
