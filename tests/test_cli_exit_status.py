"""`generate` and `resume` fail early on a model that cannot be built, and exit honestly.

Exit status: 0 when every item finished, 2 for a usage or configuration error (a missing API
key found before any work included), 3 when items did not finish (after writing all that did).
File-system errors are one line, never a traceback.
"""

from __future__ import annotations

import pytest

from apigen_mt.cli import main
from apigen_mt.cli.run_commands import EXIT_UNFINISHED
from apigen_mt.testing import OpenAIStubServer

from phase1_oracle import PLAN, YES
from test_cli_generate import ROLES, Oracles


def _stub_args(stub: OpenAIStubServer, run_dir, provider: str | None = None, n: int = 2) -> list[str]:
    args = ["generate", "--domain", "retail", "--blueprints", str(n), "--run-dir", str(run_dir), "--best-of-n", "1",
            "--concurrency", "1", "--seed", "40", "--no-cache", "--no-report"]
    for role in ROLES:
        if provider is None:
            args += ["--model", f"{role}={role[:3]}", "--base-url", f"{role}={stub.base_url}"]
        else:
            args += ["--model", f"{role}={provider}:{role[:3]}"]
    return args


def test_a_missing_api_key_stops_generate_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    code = main(["generate", "--domain", "library", "--blueprints", "1", "--run-dir", str(run_dir),
                 "--model", "openai:gpt-4o-mini"])
    err = capsys.readouterr().err
    assert code == 2
    assert "nothing was run" in err
    assert ("roles generator, reviewer[0], reviewer[1], reviewer[2], feedback, user, user_critic, assistant: "
            "model 'openai:gpt-4o-mini' needs an API key in $OPENAI_API_KEY") in err  # the roles this run calls
    assert not run_dir.exists()


def test_an_azure_model_without_its_endpoint_stops_generate_with_the_variable_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-test")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    code = main(["generate", "--domain", "library", "--blueprints", "1", "--run-dir", str(tmp_path / "run"),
                 "--model", "generator=azure_openai:my-deployment"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "role generator: model 'azure_openai:my-deployment' needs the resource's endpoint URL in $AZURE_OPENAI_ENDPOINT" in err


def test_resume_checks_the_models_again(tmp_path, monkeypatch, capsys):
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        assert main(_stub_args(stub, run_dir, "openai", n=1)) == 0
        monkeypatch.delenv("OPENAI_API_KEY")
        requests = len(stub.requests)
        assert main(["resume", str(run_dir)]) == 2
        assert len(stub.requests) == requests
    assert "needs an API key in $OPENAI_API_KEY" in capsys.readouterr().err


def test_unfinished_items_exit_non_zero_after_writing_what_finished(tmp_path, capsys):
    oracle = Oracles()
    run_dir = tmp_path / "run"
    # one generator reply for two blueprints: the second one's call fails (the stub answers 500,
    # not to be retried), so that blueprint does not finish
    script = {"gen": [oracle.generator], "rev": [YES] * 3, "fee": [PLAN] * 3, "use": [oracle.user] * 4,
              "ass": [oracle.assistant] * 6}
    with OpenAIStubServer(script, max_lifetime=120) as stub:
        code = main(_stub_args(stub, run_dir))
    out = capsys.readouterr().out
    assert code == EXIT_UNFINISHED == 3
    assert "phase 1: 1 blueprints kept, 0 rejected (by stage: {}), 1 unfinished" in out
    assert "phase 2: 1 verified conversations" in out and "1 item(s) did not finish" in out
    assert len((run_dir / "blueprints.jsonl").read_text().splitlines()) == 1
    assert len((run_dir / "dataset.openai.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("command", [
    ["import-tau2", "--domain", "retail", "--split", "train", "--out", "{file}/tasks.jsonl"],
    ["graph", "--domain", "retail", "--format", "dot", "--out", "{file}/graph.dot"],
    ["generate", "--domain", "library", "--blueprints", "1", "--run-dir", "{file}/run"],
])
def test_an_unwritable_output_path_is_one_clear_line(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([part.format(file=blocker) for part in command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("apigen-mt: error: cannot ") and str(blocker) in err
    assert "Traceback" not in err
