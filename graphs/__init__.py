"""LangGraph state machines: ``phase1`` (verified blueprints), ``recombine`` (longer tasks
from one user's blueprints), ``phase2`` (verified conversations) and ``pipeline`` (both).

Each module has a ``build_*_graph()`` (compile it with a checkpointer, as the runner does)
and a module-level ``graph`` compiled without one (for ``langgraph dev`` / Studio).
Nodes shared by Phase 1 and recombination are in :mod:`.verification`; the live objects of
one run (LLM runtime, dedup index, ready models) come as LangGraph's runtime context
(:mod:`.context`), the plain settings from ``configurable`` (:mod:`.settings`).
"""
