"""`apigen-mt generate` and `export` end to end, models served by the OpenAI-compatible stub."""

from __future__ import annotations

import json

import pytest

from apigen_mt.cli import main
from apigen_mt.store import RunStore
from apigen_mt.testing import OpenAIStubServer

from phase1_oracle import PLAN, YES, blueprint_for_prompt

ROLES = ("generator", "reviewers", "feedback", "user", "assistant")


class Oracles:
    """Reactive stub replies: the generator proposes a valid blueprint for the sampled user;
    the user states the instruction then stops; the assistant replays the actions (and,
    with ``fail_first``, leaves the expected output unsaid in each blueprint's first
    conversation, so that conversation fails and the second one succeeds)."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.made: dict[str, dict] = {}
        self.fail_first = fail_first
        self.finals: dict[str, int] = {}

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
        self.finals[blueprint["instruction"]] = self.finals.get(blueprint["instruction"], 0) + 1
        if self.fail_first and self.finals[blueprint["instruction"]] == 1:
            return {"content": "Done."}
        return {"content": "Done: " + " ".join(blueprint["outputs"])}

    def script(self, n: int = 1) -> dict:
        """Stub replies for ``n`` runs of 3 blueprints (the model names are the roles' first letters)."""
        return {"gen": [self.generator] * 20 * n, "rev": [YES] * 60 * n, "fee": [PLAN] * 20 * n,
                "use": [self.user] * 40 * n, "ass": [self.assistant] * 80 * n}


def _args(stub: OpenAIStubServer, run_dir, *, cache: bool = False) -> list[str]:
    args = ["generate", "--domain", "retail", "--blueprints", "3", "--run-dir", str(run_dir), "--best-of-n", "1",
            "--concurrency", "3", "--seed", "40", *([] if cache else ["--no-cache"])]
    for role in ROLES:
        args += ["--model", f"{role}={role[:3]}", "--base-url", f"{role}={stub.base_url}"]
    return args


def test_generate_writes_a_run_directory_and_export_writes_both_formats(tmp_path, capsys):
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
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
    assert "has no store.sqlite: run `apigen-mt generate --run-dir" in capsys.readouterr().err


def test_generate_phase1_needs_a_domain(tmp_path, capsys):
    assert main(["generate", "--run-dir", str(tmp_path / "r"), "--phase", "1"]) == 2
    assert "--domain is required" in capsys.readouterr().err


def test_a_corrupt_store_is_reported_not_raised(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "store.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["export", str(run_dir), "--format", "openai", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "not a readable run store" in capsys.readouterr().err


def test_generate_report_and_every_export_end_to_end(tmp_path, capsys):
    """generate (first conversations fail, second succeed) -> report -> openai, sharegpt,
    tau2, dpo; the JSONL exports load with `datasets`, the tau2 tasks with tau2's loader."""
    oracle = Oracles(fail_first=True)
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        assert main(_args(stub, run_dir)) == 0
        requests = len(stub.chat_requests)
    captured = capsys.readouterr()
    assert "phase 2: 3 verified conversations, 3 failed" in captured.out
    # the progress display's last line per phase (plain lines: not a terminal)
    assert "phase 1 [3/3 done] | accepted 3, rejected 0, unfinished 0" in captured.err
    assert "phase 2 [3/3 done] | accepted 3" in captured.err and "verified 3 > failed 3" in captured.err
    # every model call is in the store, with its role and phase; the events say what ran
    store = RunStore(run_dir)
    calls = list(store.db["llm_calls"].rows)
    assert len(calls) == requests and all(c["prompt_tokens"] > 0 and not c["cache_hit"] for c in calls)
    assert {c["phase"] for c in calls} == {"phase1", "phase2"}
    assert {c["role"] for c in calls} >= {"generator", "user", "assistant"}
    assert [(e["kind"], e["phase"]) for e in store.events()] == [("started", None), ("finished", "phase1"), ("finished", "phase2")]
    reviews = list(store.db["reviews"].rows)  # one judge per committee round here
    assert len(reviews) == 3 and all(r["correctness"] == 1 and r["error"] is None and r["reflection"] for r in reviews)
    # the report was written at the end, and `report` writes it again
    assert (run_dir / "report" / "report.md").exists() and (run_dir / "report" / "report.html").exists()
    assert main(["report", str(run_dir), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text() and "report.md" in capsys.readouterr().out

    outputs = {fmt: tmp_path / f"out.{fmt}.{'json' if fmt == 'tau2' else 'jsonl'}" for fmt in ("openai", "sharegpt", "tau2", "dpo")}
    for fmt, path in outputs.items():
        assert main(["export", str(run_dir), "--format", fmt, "--out", str(path)]) == 0, fmt
    out = capsys.readouterr().out
    assert "3 conversations written" in out and "3 tau2-bench tasks written" in out and "3 preference pairs written" in out

    datasets = pytest.importorskip("datasets")
    openai_rows = datasets.load_dataset("json", data_files=str(outputs["openai"]), split="train")
    assert openai_rows.num_rows == 3 and set(openai_rows.column_names) >= {"messages", "tools"}
    first = openai_rows[0]["messages"]
    assert [m["role"] for m in first][:2] == ["system", "user"] and any(m.get("tool_calls") for m in first)
    sharegpt_rows = datasets.load_dataset("json", data_files=str(outputs["sharegpt"]), split="train")
    assert sharegpt_rows.num_rows == 3 and set(sharegpt_rows.column_names) == {"conversations", "tools", "system"}
    dpo_rows = datasets.load_dataset("json", data_files=str(outputs["dpo"]), split="train")
    assert dpo_rows.num_rows == 3
    for row in dpo_rows:  # the split is at the final answer: said the email vs did not
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert row["chosen"][0]["content"].startswith("Done: ") and row["rejected"][0]["content"] == "Done."
        assert row["prompt"][-1]["role"] == "tool"

    task_model = pytest.importorskip("tau2.data_model.tasks").Task
    tasks = [task_model.model_validate(t) for t in json.loads(outputs["tau2"].read_text())]
    assert sorted(t.id for t in tasks) == sorted(bp["id"] for bp in store.accepted_blueprints())
    assert all([a.name for a in t.evaluation_criteria.actions] == ["find_user_id_by_name_zip", "get_user_details"] for t in tasks)


def test_resume_reuses_a_finished_run_and_explains_bad_directories(tmp_path, capsys):
    oracle = Oracles()
    run_dir = tmp_path / "run"
    with OpenAIStubServer(oracle.script(), max_lifetime=120) as stub:
        assert main(_args(stub, run_dir) + ["--no-report"]) == 0
        requests = len(stub.requests)
        assert main(["resume", str(run_dir)]) == 0  # the saved command, base URLs included
        assert len(stub.requests) == requests
    out = capsys.readouterr().out
    assert "resuming: apigen-mt generate --domain retail" in out and out.count("phase 2: 3 verified conversations") == 2
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["argv"][:3] == ["generate", "--domain", "retail"]

    assert main(["resume", str(tmp_path)]) == 2
    assert "has no config.json: it is not an `apigen-mt generate` run directory" in capsys.readouterr().err
    (run_dir / "config.json").write_text("{not json")
    assert main(["resume", str(run_dir)]) == 2
    assert "run the original generate command again" in capsys.readouterr().err


def test_saved_command_keeps_no_credentials(tmp_path):
    from apigen_mt.cli.run_commands import _public_argv

    argv = ["generate", "--base-url", "assistant=http://me:secret@host:8000/v1?key=abc", "--base-url=http://u:p@h/v1"]
    public = _public_argv(argv)
    assert "secret" not in " ".join(public) and "abc" not in " ".join(public) and ":p@" not in " ".join(public)
    assert public[2] == "assistant=http://***@host:8000/v1?***" and public[3] == "--base-url=http://***@h/v1"
