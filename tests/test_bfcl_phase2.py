"""Generated blueprints on each of the eight BFCL classes become verified conversations (issue 12):
a grounded walk, an instruction that says what the walk's values need (a scripted writer),
the rule checks grounding included, then Phase 2 with the scripted oracle user and assistant."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("bfcl_eval")

from phase2_oracle import oracle_phase2_models  # noqa: E402

from apigen_mt.api import run_phase2  # noqa: E402
from apigen_mt.domains.bfcl.data import SHORT_NAMES  # noqa: E402
from apigen_mt.domains.bfcl.domain import BFCLDomain  # noqa: E402
from apigen_mt.domains.registry import get_domain  # noqa: E402
from apigen_mt.tools.checks.grounding import required_values  # noqa: E402
from apigen_mt.tools.checks.validate import validate_blueprint  # noqa: E402
from apigen_mt.tools.grounded_walk import as_blueprint, grounded_walk  # noqa: E402


def _scripted_instruction(domain, walk) -> tuple[str, list[str]]:
    """What a faithful instruction writer writes: the request, every value the walk needs said,
    and (for a calculation, whose only result is an answer) the answer to report."""
    must_say = required_values(domain, walk.actions)
    steps = ", then ".join(a["name"].replace("_", " ") for a in walk.actions)
    said = "; ".join(json.dumps(v) if not isinstance(v, str) else v for v in must_say)
    instruction = f"Please help me with this: {steps}." + (f" The details you need: {said}." if said else "")
    writes = any(domain.tool(a["name"]).kind.value == "write" for a in walk.actions)
    outputs = [] if writes else [str(json.loads(walk.observations[-1])["result"])]
    return instruction, outputs


@pytest.mark.parametrize("short", sorted(SHORT_NAMES))
def test_a_generated_blueprint_is_accepted_in_phase2(short):
    domain = get_domain(f"bfcl.{short}")
    walk = next(w for seed in range(10) if (w := grounded_walk(domain, random.Random(seed))) is not None)
    instruction, outputs = _scripted_instruction(domain, walk)
    blueprint = {**as_blueprint(walk, domain, instruction, f"bfcl.{short}-generated"), "outputs": outputs}
    checked = validate_blueprint(domain, blueprint)
    assert checked.passed, (checked.stage, checked.reasons)
    result = run_phase2([blueprint], chat_models=oracle_phase2_models(blueprint))
    assert result.summary()["accepted"] == 1, result.failed


def test_the_instruction_must_say_the_user_s_values():
    domain = get_domain("bfcl.ticket")
    walk = grounded_walk(domain, random.Random(0))
    login = next(a for a in walk.actions if a["name"] == "ticket_login")["arguments"]
    assert {login["username"], login["password"]} <= set(required_values(domain, walk.actions))
    unsaid = as_blueprint(walk, domain, "Log me in to the ticket system.")
    assert validate_blueprint(domain, unsaid).stage == "grounding"  # the credentials are the user's to give


class _Unstated(BFCLDomain):
    stated_arguments = {}  # no requests: only what the state and outputs hold


def test_without_the_user_s_requests_no_ticket_write_is_reached():
    assert grounded_walk(_Unstated(["TicketAPI"], name="bfcl.ticket_unstated"), random.Random(0)) is None
