"""The pipeline graph: Phase 1 then Phase 2 as subgraphs, with scripted models."""

from __future__ import annotations

import asyncio

from langgraph.checkpoint.memory import InMemorySaver

from apigen_mt.graphs.context import RunContext
from apigen_mt.graphs.pipeline import build_pipeline_graph, graph
from apigen_mt.testing import ScriptedChatModel

from phase1_oracle import YES, oracle_generator_reply, retail_blueprint_for
from phase2_oracle import oracle_assistant_reply, oracle_user_reply


def _models(blueprint):
    return {
        "generator": ScriptedChatModel([oracle_generator_reply]),
        "reviewers": [ScriptedChatModel([YES]) for _ in range(3)],
        "user": ScriptedChatModel([oracle_user_reply(blueprint)] * 5),
        "assistant": ScriptedChatModel([oracle_assistant_reply({**blueprint, "domain": "retail"})] * 10),
    }


def _request_and_expected():
    # the seed's sampled user decides the oracle's blueprint; find it through Phase 1's prepare
    from apigen_mt.graphs.phase1 import graph as phase1

    prepared = asyncio.run(phase1.ainvoke({"domain": "retail", "blueprint_id": "p-1", "seed": 4}, {},
                                          context=RunContext(chat_models={"generator": None}), interrupt_after=["prepare"]))
    return {"domain": "retail", "blueprint_id": "p-1", "seed": 4, "mode": "llm"}, retail_blueprint_for(prepared["context"]["user_id"])


def test_pipeline_runs_phase1_then_phase2_on_the_accepted_blueprint():
    request, expected = _request_and_expected()
    cfg = {"configurable": {"phase2": {"best_of_n": 1}}}
    out = asyncio.run(graph.ainvoke(request, cfg, context=RunContext(chat_models=_models(expected))))
    assert out["blueprint"]["actions"] == expected["actions"]
    assert [a["stage"] for a in out["attempts"]] == ["accepted"]
    [trajectory] = out["trajectories"]
    assert trajectory["reward"] == 1.0 and trajectory["blueprint_id"] == "p-1"
    assert out["status"] == "accepted"


def test_pipeline_stops_after_a_rejected_blueprint_and_checkpoints_nest():
    request, expected = _request_and_expected()
    models = _models(expected)
    models["generator"] = ScriptedChatModel([{"thought": "", "instruction": " ", "actions": [], "outputs": []}])
    cfg = {"configurable": {"phase1": {"max_rounds": 1}, "thread_id": "pipe-1"}}
    compiled = build_pipeline_graph().compile(checkpointer=InMemorySaver())
    out = asyncio.run(compiled.ainvoke(request, cfg, context=RunContext(chat_models=models)))
    assert out["status"] == "rejected" and out["trajectories"] == []
    assert len(models["assistant"].calls) == 0
    assert compiled.get_state(cfg, subgraphs=True).values["status"] == "rejected"
