"""Every way a user names a model reaches a real HTTP server, across both phases.

``openai:NAME`` with ``OPENAI_BASE_URL``, ``azure_openai:NAME`` with ``AZURE_OPENAI_ENDPOINT`` and
``ollama:NAME`` with ``OLLAMA_HOST``, all pointed at the OpenAI-compatible stub: ``generate``
runs Phase 1 and then Phase 2 (two event loops in one process), and the Python API runs
``run_phase1`` then ``run_phase2``. Before the fix, ``openai:`` and ``azure_openai:`` models
shared the OpenAI SDK's process-wide connection pool, and Phase 2 died with "Event loop is
closed" while ``generate`` still exited 0.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from apigen_mt.api import run_phase1, run_phase2
from apigen_mt.cli import main
from apigen_mt.store import RunStore
from apigen_mt.testing import OpenAIStubServer

from test_cli_generate import ROLES, Oracles

PROVIDERS = ("openai", "azure_openai", "ollama")


def _point_at(provider: str, stub: OpenAIStubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    root = stub.base_url.removesuffix("/v1")
    if provider == "openai":
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    elif provider == "azure_openai":
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", root)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-test")
        monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    else:
        monkeypatch.setenv("OLLAMA_HOST", root.removeprefix("http://"))
    monkeypatch.delenv("APIGEN_MT_CONFIG", raising=False)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_generate_runs_both_phases_through_a_provider_string(provider, tmp_path, monkeypatch, capsys):
    if provider == "ollama" and importlib.util.find_spec("langchain_ollama") is not None:
        pytest.skip("langchain-ollama is installed: ollama: then speaks Ollama's own API, which the stub does not")
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        _point_at(provider, stub, monkeypatch)
        args = ["generate", "--domain", "retail", "--blueprints", "2", "--run-dir", str(run_dir), "--best-of-n", "1",
                "--concurrency", "2", "--seed", "40", "--no-cache", "--no-report"]
        for role in ROLES:
            args += ["--model", f"{role}={provider}:{role[:3]}"]
        code = main(args)
        assert stub.errors == []
        models = {r.body["model"] for r in stub.chat_requests}
    out = capsys.readouterr().out
    assert code == 0, out
    assert "phase 1: 2 blueprints kept" in out and "phase 2: 2 verified conversations, 0 failed" in out
    assert out.count(" 0 unfinished") == 2
    assert {"gen", "use", "ass"} <= models  # every phase reached the server through the provider
    assert RunStore(run_dir).counts()["errors"] == 0
    assert len((run_dir / "dataset.openai.jsonl").read_text().splitlines()) == 2
    assert "sk-test" not in json.dumps(json.loads((run_dir / "config.json").read_text()))


def test_run_phase1_then_run_phase2_through_openai(tmp_path, monkeypatch):
    oracle = Oracles()
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        _point_at("openai", stub, monkeypatch)
        from apigen_mt.configuration import Configuration

        configuration = Configuration.load(env={}, use_default_file=False, overrides={
            **{f"{role}_model": f"openai:{role[:3]}" for role in ROLES}, "cache": False,
        })
        p1 = run_phase1("retail", 2, seed=40, configuration=configuration, run_dir=tmp_path / "r")
        p2 = run_phase2(p1.blueprints, configuration=configuration, run_dir=tmp_path / "r", settings={"best_of_n": 1})
        assert stub.errors == []
    assert len(p1.blueprints) == 2 and p1.errors == {}
    assert p2.errors == {} and len(p2.trajectories) == 2
