"""The pool of initial states of a BFCL class (issue 12, item 2): each state BFCL's entries load
the class in is a domain ``bfcl.<class>@<entry id>``; Phase 1 draws one per blueprint, every
check runs in it, and the contamination guard compares against the entries of that state."""

from __future__ import annotations

import asyncio
import re

import pytest

pytest.importorskip("bfcl_eval")

from apigen_mt.api import contamination_flags  # noqa: E402
from apigen_mt.domains.base import DomainError  # noqa: E402
from apigen_mt.domains.bfcl import data  # noqa: E402
from apigen_mt.domains.bfcl.domain import ground_truth_actions  # noqa: E402
from apigen_mt.domains.registry import get_domain, is_builtin, pool_root  # noqa: E402
from apigen_mt.graphs.context import RunContext  # noqa: E402
from apigen_mt.graphs.phase1 import graph  # noqa: E402
from apigen_mt.testing import ScriptedChatModel  # noqa: E402
from apigen_mt.tools.checks.validate import validate_blueprint  # noqa: E402
from apigen_mt.tools.coverage import WriteCoverage  # noqa: E402
from apigen_mt.tools.state_diff import canonical_json  # noqa: E402

YES = {"reflection": "Fine.", "correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 1, "suggested_correction": None}
PLAN = {"summary": "Say the values.", "agreed_issues": [], "disagreements": [], "plan": []}
MUST_SAY = re.compile(r"## Values the instruction must contain, written exactly so\n.*?\n(.*?)\n\n", re.S)


def _writer(messages):
    """A faithful instruction writer: every value the prompt lists, said."""
    listed = MUST_SAY.search(messages[-1].content).group(1)
    values = [line[2:] for line in listed.splitlines() if line.startswith("- ")]
    return {"thought": "say them", "instruction": "Please do this for me. Details: " + "; ".join(values) + ".", "outputs": []}


def _phase1(seed, **settings):
    models = {"generator": ScriptedChatModel([_writer] * 4), "reviewers": [ScriptedChatModel([YES] * 4)],
              "feedback": ScriptedChatModel([PLAN] * 4)}
    request = {"domain": "bfcl.ticket", "blueprint_id": f"t-{seed}", "seed": seed, "mode": "grounded"}
    config = {"configurable": {"phase1": {"committee_size": 1, **settings}}}
    return asyncio.run(graph.ainvoke(request, config, context=RunContext(chat_models=models)))


def test_each_state_a_class_is_loaded_in_is_a_domain():
    pool = get_domain("bfcl.ticket").state_pool()
    assert pool[0] == "bfcl.ticket" and len(pool) == len(set(pool)) >= 20
    configs = set()
    for name in pool[1:]:
        entry_id = name.split("@", 1)[1]
        domain = get_domain(name)
        assert domain.initial_config() == {"TicketAPI": data.entry_config(entry_id, "TicketAPI")}
        assert entry_id in domain.user_ids() and domain.state_pool() == []
        configs.add(canonical_json(domain.initial_config()))
    assert len(configs) == len(pool) - 1 and canonical_json(get_domain("bfcl.ticket").initial_config()) not in configs
    assert get_domain("bfcl.math").state_pool() == [] and get_domain("bfcl.multi_turn_base_2").state_pool() == []
    with pytest.raises(DomainError, match="not one of the initial states of BFCL TicketAPI"):
        get_domain("bfcl.ticket@multi_turn_base_0")  # an entry without the ticket system
    with pytest.raises(DomainError, match="pristine state of BFCL TicketAPI: use bfcl.ticket"):
        get_domain("bfcl.ticket@multi_turn_base_2")  # one state, one name
    assert is_builtin(pool[1]) and pool_root(pool[1]) == "bfcl.ticket" and not is_builtin("bfcl.nothing@x")


def test_blueprints_start_in_states_drawn_from_the_pool_and_verify_there():
    outs = [_phase1(seed) for seed in range(8)]
    accepted = [o["blueprint"] for o in outs if o["status"] == "accepted"]
    assert len(accepted) >= 6
    assert len({b["domain"] for b in accepted}) >= 3 and all(b["domain"].startswith("bfcl.ticket") for b in accepted)
    for blueprint in accepted:
        assert validate_blueprint(get_domain(blueprint["domain"]), blueprint).passed
    assert {_phase1(seed, state_pool=False)["blueprint"]["domain"] for seed in range(3)} == {"bfcl.ticket"}


def test_a_calculator_run_walks_although_it_has_no_write_to_steer_to():
    models = {"generator": ScriptedChatModel([_writer] * 2), "reviewers": [ScriptedChatModel([YES] * 2)],
              "feedback": ScriptedChatModel([PLAN] * 2)}
    request = {"domain": "bfcl.math", "blueprint_id": "m-0", "seed": 0, "mode": "grounded"}
    context = RunContext(chat_models=models, coverage=WriteCoverage())  # as run_phase1 sets it up
    out = asyncio.run(graph.ainvoke(request, {"configurable": {"phase1": {"committee_size": 1}}}, context=context))
    assert out["proposer"] == "grounded" and len(out["walk"]["actions"]) >= 2


def test_a_copy_of_an_entry_in_its_own_state_is_flagged():
    entry_id = "multi_turn_base_51"  # its first turn locks every door of a car BFCL loads in its own state
    calls = ground_truth_actions(entry_id)[0]
    assert f"bfcl.vehicle@{entry_id}" in get_domain("bfcl.vehicle").state_pool()
    copied = {"id": "copy", "domain": f"bfcl.vehicle@{entry_id}", "instruction": "Lock up the car.", "actions": calls}
    assert "bfcl:" + entry_id in contamination_flags([copied], "bfcl.vehicle")["copy"]
    elsewhere = {**copied, "id": "pristine", "domain": "bfcl.vehicle"}  # the same calls in another world
    assert "pristine" not in contamination_flags([elsewhere], "bfcl.vehicle")
