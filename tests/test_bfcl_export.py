"""`apigen-mt export --format bfcl`: verified conversations of BFCL domains as BFCL multi-turn
entries that bfcl-eval's own loader reads and its multi-turn checker scores."""

from __future__ import annotations

import pytest

pytest.importorskip("bfcl_eval")

from phase2_oracle import oracle_phase2_models  # noqa: E402

from apigen_mt.api import Phase1Result, run_phase2  # noqa: E402
from apigen_mt.cli import main  # noqa: E402
from apigen_mt.domains.bfcl.domain import parse_bfcl_call  # noqa: E402
from apigen_mt.domains.bfcl.export import ANSWER_DIR, bfcl_call, to_bfcl_entry  # noqa: E402
from apigen_mt.store import RunStore  # noqa: E402

FILE_SYSTEM = {
    "id": "bfcl.file_system-9001", "domain": "bfcl.file_system", "outputs": [],
    "instruction": "In the document folder, make a folder named archive_2026 and move final_report.pdf into it.",
    "actions": [{"name": "cd", "arguments": {"folder": "document"}},
                {"name": "mkdir", "arguments": {"dir_name": "archive_2026"}},
                {"name": "mv", "arguments": {"source": "final_report.pdf", "destination": "archive_2026"}}],
}
VEHICLE = {
    "id": "bfcl.vehicle-9002", "domain": "bfcl.vehicle", "outputs": [],
    "instruction": "Lock all four doors of my car (driver, passenger, rear left, rear right), then set the climate control to 22 degrees with fan speed 40.",
    "actions": [{"name": "lockDoors", "arguments": {"unlock": False, "door": ["driver", "passenger", "rear_left", "rear_right"]}},
                {"name": "adjustClimateControl", "arguments": {"temperature": 22.0, "fanSpeed": 40}}],
}


def _bfcl_score(entry, ground_truth, model_turns, model_name):
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    # bfcl-eval keeps instances per (model name, entry id): a fresh name per check
    return multi_turn_checker([[turn] for turn in model_turns], ground_truth, entry, entry["id"].rsplit("_", 1)[0],
                              model_name)


def _dropped(ground_truth, turn, index):
    return [[c for i, c in enumerate(calls) if not (t == turn and i == index)] for t, calls in enumerate(ground_truth)]


def test_exported_conversations_load_in_bfcl_eval_and_its_checker_scores_them(tmp_path, capsys):
    from bfcl_eval.utils import load_file

    blueprints = [FILE_SYSTEM, VEHICLE]
    trajectories = []
    for blueprint in blueprints:
        result = run_phase2([blueprint], chat_models=oracle_phase2_models(blueprint))
        assert result.summary()["accepted"] == 1, result.failed
        trajectories += result.trajectories
    store = RunStore(tmp_path)
    store.save_phase1(Phase1Result(blueprints=blueprints, attempts={b["id"]: [] for b in blueprints}))
    from apigen_mt.api import Phase2Result

    store.save_phase2(Phase2Result(trajectories=trajectories))
    out = tmp_path / "export" / "BFCL_v3_multi_turn_apigen.json"
    assert main(["export", str(tmp_path), "--format", "bfcl", "--out", str(out)]) == 0
    assert "2 BFCL multi-turn entries" in capsys.readouterr().out
    entries = load_file(out, sort_by_id=True)
    answers = {a["id"]: a["ground_truth"] for a in load_file(out.parent / ANSWER_DIR / out.name)}
    assert [e["apigen_blueprint_id"] for e in entries] == [FILE_SYSTEM["id"], VEHICLE["id"]]
    assert entries[0]["involved_classes"] == ["GorillaFileSystem"] and entries[1]["involved_classes"] == ["VehicleControlAPI"]
    assert entries[0]["question"] == [[{"role": "user", "content": FILE_SYSTEM["instruction"]}]]
    assert entries[0]["path"] == ["GorillaFileSystem.cd", "GorillaFileSystem.mkdir", "GorillaFileSystem.mv"]
    for number, entry in enumerate(entries):
        truth = answers[entry["id"]]
        assert _bfcl_score(entry, truth, truth, f"apigen_export_ok_{number}") == {"valid": True}
        for index in range(len(truth[0])):
            dropped = _bfcl_score(entry, truth, _dropped(truth, 0, index), f"apigen_export_dropped_{number}_{index}")
            assert dropped["valid"] is False, (entry["id"], index, dropped)


def test_turns_follow_the_user_and_keep_only_the_calls_that_succeeded(tmp_path):
    def assistant(*names):
        return {"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}} for i, n in enumerate(names)]}

    calls = [
        {"name": "cd", "arguments": {"folder": "document"}, "ok": True},
        {"name": "cd", "arguments": {"folder": "no_such_folder"}, "ok": False},
        {"name": "mkdir", "arguments": {"dir_name": "archive_2026"}, "ok": True},
        {"name": "mv", "arguments": {"source": "final_report.pdf", "destination": "archive_2026"}, "ok": True},
    ]
    trajectory = {"blueprint_id": "b1", "domain": "bfcl.file_system", "calls": calls, "messages": [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "I need a new folder."},
        {"role": "assistant", "content": "Where, and named how?"},
        {"role": "user", "content": "archive_2026, in document."},
        assistant("cd"), {"role": "tool", "content": "{}"},
        assistant("cd", "mkdir"), {"role": "tool", "content": "{}"}, {"role": "tool", "content": "null"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "Now move final_report.pdf into it."},
        assistant("mv"), {"role": "tool", "content": "{}"},
        {"role": "assistant", "content": "Moved."},
        {"role": "user", "content": "Thanks!"},
    ]}
    entry, answer = to_bfcl_entry(trajectory, 7)
    assert entry["id"] == answer["id"] == "multi_turn_apigen_7"
    assert entry["question"] == [
        [{"role": "user", "content": "I need a new folder."}, {"role": "user", "content": "archive_2026, in document."}],
        [{"role": "user", "content": "Now move final_report.pdf into it."}],
    ]
    assert answer["ground_truth"] == [["cd(folder='document')", "mkdir(dir_name='archive_2026')"],
                                      ["mv(source='final_report.pdf', destination='archive_2026')"]]
    truth = answer["ground_truth"]
    assert _bfcl_score(entry, truth, truth, "apigen_turns_ok") == {"valid": True}
    assert _bfcl_score(entry, truth, _dropped(truth, 1, 0), "apigen_turns_dropped")["valid"] is False
    assert to_bfcl_entry({**trajectory, "calls": [dict(c, ok=False) for c in calls]}, 8) is None
    with pytest.raises(ValueError, match="not a BFCL domain"):
        to_bfcl_entry({**trajectory, "domain": "retail"}, 9)


def test_call_strings_read_back_as_the_same_call():
    arguments = {"content": "it's \"quoted\"\nand multi-line", "ids": [1, 2.5], "nested": {"a": None, "b": True}}
    text = bfcl_call("post_tweet", arguments)
    assert parse_bfcl_call(text) == ("post_tweet", arguments)
