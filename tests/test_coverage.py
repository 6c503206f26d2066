"""Coverage-steered sampling: the least covered write next, in walks, the API sampler and Phase 1."""

from __future__ import annotations

import asyncio
import random
import re
import threading
from types import SimpleNamespace

from apigen_mt.api import _seed_run, run_phase1
from apigen_mt.domains.base import ToolKind
from apigen_mt.domains.registry import get_domain
from apigen_mt.testing import ScriptedChatModel
from apigen_mt.tools.coverage import WriteCoverage, steered_walk
from apigen_mt.tools.dedup import DedupIndex
from apigen_mt.tools.samplers.api import APISampler

YES = {"reflection": "Fine.", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1,
       "suggested_correction": None}


def _writes(domain, actions):
    return [a["name"] for a in actions if domain.tool(a["name"]).kind is ToolKind.WRITE]


def test_the_least_covered_candidate_is_picked_ties_at_random():
    coverage = WriteCoverage({"a": 2, "b": 1, "c": 1})
    picks = {coverage.pick(random.Random(seed), ["a", "b", "c"]) for seed in range(20)}
    assert picks == {"b", "c"}
    assert coverage.pick(random.Random(0), ["a", "b", "c"], exclude=["b", "c"]) == "a"
    assert coverage.pick(random.Random(0), ["a"], exclude=["a"]) is None
    assert sorted(coverage.pick_many(random.Random(0), ["a", "b", "c"], 2)) == ["b", "c"]


def test_counts_are_safe_across_threads():
    coverage = WriteCoverage()
    workers = [threading.Thread(target=lambda: [coverage.add(["w"]) for _ in range(1000)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert coverage.counts() == {"w": 8000}


def test_steered_walks_cover_every_write_before_repeating_one():
    library = get_domain("library")
    writes = {spec.name for spec in library.tools if spec.kind is ToolKind.WRITE}
    coverage, rng = WriteCoverage(), random.Random(0)
    firsts = [_writes(library, steered_walk(library, rng, coverage).actions)[-1] for _ in range(len(writes))]
    assert set(firsts) == writes  # each write once in the first four walks


def test_the_api_sampler_follows_the_coverage():
    retail = get_domain("retail")
    sampler, coverage = APISampler(retail), WriteCoverage()
    rng = random.Random(0)
    for _ in range(14):
        coverage.add(sampler.sample(rng, coverage).writes)
    counts = coverage.counts()
    assert set(counts) == set(sampler.writes) and max(counts.values()) <= 2 * min(counts.values())


def _writer_reply(messages):
    """An instruction writer that says what it is told to: the prompt's must-say values."""
    prompt = messages[-1].content
    section = prompt.split("written exactly so", 1)[1].split("## The calls", 1)[0]
    values = re.findall(r"^- (.+)$", section, re.M)
    return {"thought": "t", "instruction": "You are " + " ".join(values) + ". Please do what is needed.", "outputs": []}


def test_phase1_grounded_blueprints_spread_over_the_write_tools():
    library = get_domain("library")
    writes = {spec.name for spec in library.tools if spec.kind is ToolKind.WRITE}
    models = {"generator": ScriptedChatModel([_writer_reply] * 40), "reviewers": [ScriptedChatModel([YES] * 40)],
              "feedback": ScriptedChatModel(["plan"] * 40)}
    result = run_phase1("library", 4, mode="grounded", concurrency=1, chat_models=models,
                        settings={"committee_size": 1, "max_rounds": 1, "dedup": False})
    kept = [_writes(library, bp["actions"])[-1] for bp in result.blueprints]
    assert len(kept) == 4 and set(kept) == writes, (kept, result.rejected)


def test_a_resumed_run_counts_the_writes_of_the_threads_prepared_before():
    retail = get_domain("retail")
    states = {
        "t1": {"walk": {"actions": [{"name": "find_user_id_by_email"}, {"name": "cancel_pending_order"}]}},
        "t2": {"context": {"write_tools": ["modify_user_address"]}},
        "t3": {},
    }

    class Compiled:
        async def aget_state(self, config):
            return SimpleNamespace(values=states[config["configurable"]["thread_id"]])

    coverage = WriteCoverage()
    asyncio.run(_seed_run(Compiled(), [(t, None) for t in states], DedupIndex(), coverage, retail))
    assert coverage.counts() == {"cancel_pending_order": 1, "modify_user_address": 1}
