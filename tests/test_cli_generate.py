"""`apigen-mt generate` and `export` end to end, models served by the OpenAI-compatible stub."""

from __future__ import annotations

import json

from apigen_mt.cli import main
from apigen_mt.testing import OpenAIStubServer

from phase1_oracle import PLAN, YES, blueprint_for_prompt

ROLES = ("generator", "reviewers", "feedback", "user", "assistant")


class Oracles:
    """Reactive stub replies: the generator proposes a valid blueprint for the sampled user;
    the user states the instruction then stops; the assistant replays the actions."""

    def __init__(self) -> None:
        self.made: dict[str, dict] = {}

    def generator(self, body: dict) -> dict:
        blueprint = blueprint_for_prompt(body["messages"][0]["content"])
        self.made[blueprint["instruction"]] = blueprint
        return blueprint

    def _blueprint_in(self, text: str) -> dict:
        return next(bp for instruction, bp in self.made.items() if instruction in text)

    def user(self, body: dict) -> str:
        if any(m["role"] == "assistant" for m in body["messages"]):
            return "###STOP###"
        return self._blueprint_in(body["messages"][0]["content"])["instruction"]

    def assistant(self, body: dict) -> dict:
        first_user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        blueprint = self._blueprint_in(first_user)
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < len(blueprint["actions"]):
            action = blueprint["actions"][done]
            return {"content": "", "tool_calls": [{"name": action["name"], "args": action["arguments"], "id": f"c{done}"}]}
        return {"content": "Done: " + " ".join(blueprint["outputs"])}


def _args(stub: OpenAIStubServer, run_dir) -> list[str]:
    args = ["generate", "--domain", "retail", "--blueprints", "3", "--run-dir", str(run_dir), "--best-of-n", "1",
            "--concurrency", "3", "--seed", "40", "--no-cache"]
    for role in ROLES:
        args += ["--model", f"{role}={role[:3]}", "--base-url", f"{role}={stub.base_url}"]
    return args


def test_generate_writes_a_run_directory_and_export_writes_both_formats(tmp_path, capsys):
    oracle = Oracles()
    script = {"gen": [oracle.generator] * 20, "rev": [YES] * 60, "fee": [PLAN] * 20,
              "use": [oracle.user] * 40, "ass": [oracle.assistant] * 60}
    run_dir = tmp_path / "run"
    with OpenAIStubServer(script, max_lifetime=120) as stub:
        assert main(_args(stub, run_dir)) == 0
        out = capsys.readouterr().out
        requests = len(stub.requests)
        assert stub.errors == []
        # the same command again reuses every finished step: no model request at all
        assert main(_args(stub, run_dir)) == 0
        assert len(stub.requests) == requests
    assert "phase 1: 3 blueprints kept" in out and "phase 2: 3 verified conversations" in out
    for name in ("blueprints.jsonl", "dataset.openai.jsonl", "store.sqlite", "checkpoints.sqlite", "config.json"):
        assert (run_dir / name).exists(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["generate"]["domain"] == "retail" and '"api_key":' not in json.dumps(config)  # key names only
    rows = [json.loads(line) for line in (run_dir / "dataset.openai.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["messages"][0]["role"] == "system" for r in rows)
    assert all(any(m.get("tool_calls") for m in r["messages"]) for r in rows)

    assert main(["export", str(run_dir), "--format", "sharegpt", "--out", str(tmp_path / "sharegpt.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "sharegpt.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        kinds = [c["from"] for c in row["conversations"]]
        assert kinds[0] == "human" and "function_call" in kinds and "observation" in kinds and kinds[-1] == "gpt"
        assert isinstance(json.loads(row["tools"]), list) and row["system"]
        call = json.loads(next(c["value"] for c in row["conversations"] if c["from"] == "function_call"))
        assert call["name"] == "find_user_id_by_name_zip" and isinstance(call["arguments"], dict)


def test_export_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--format", "openai", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "run `apigen-mt generate` first" in capsys.readouterr().err


def test_generate_phase1_needs_a_domain(tmp_path, capsys):
    assert main(["generate", "--run-dir", str(tmp_path / "r"), "--phase", "1"]) == 2
    assert "--domain is required" in capsys.readouterr().err


def test_a_corrupt_store_is_reported_not_raised(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "store.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["export", str(run_dir), "--format", "openai", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "not a readable run store" in capsys.readouterr().err
