"""The contamination guard on BFCL domains: BFCL's multi-turn entries (all test data) are the
references; a copied call sequence on the same initial state, or a copied question turn, is
flagged, and data of the generator's own is not."""

from __future__ import annotations

import pytest

pytest.importorskip("bfcl_eval")

from apigen_mt.api import phase1_result  # noqa: E402
from apigen_mt.domains.bfcl import data  # noqa: E402
from apigen_mt.domains.bfcl.domain import ground_truth_actions  # noqa: E402
from apigen_mt.runner import ThreadOutcome  # noqa: E402
from apigen_mt.tools.contamination import benchmark_test_blueprints, guard_for  # noqa: E402
from apigen_mt.tools.state_diff import canonical_json  # noqa: E402

DOMAIN = "bfcl.file_system"


def _blueprint(blueprint_id, instruction, actions):
    return {"id": blueprint_id, "domain": DOMAIN, "instruction": instruction, "actions": actions, "outputs": []}


def test_calls_copied_from_an_entry_on_its_initial_state_are_flagged():
    turns = ground_truth_actions("multi_turn_base_0")  # the entry whose state is bfcl.file_system's
    guard = guard_for(DOMAIN)
    copied = _blueprint("g1", "Tidy my documents however you see fit.", turns[0] + turns[1])
    reason = guard.check(copied)
    assert reason is not None and "same action sequence" in reason and "multi_turn_base_0" in reason
    assert guard.check(_blueprint("g2", "Tidy my documents however you see fit.", turns[0][:2])) is None  # not a turn's end


def test_a_question_turn_copied_or_lightly_reworded_is_flagged_on_any_state():
    entry = data.get_entry("multi_turn_base_0")
    turn = entry["question"][1][0]["content"]
    guard = guard_for(DOMAIN)
    own_calls = [{"name": "ls", "arguments": {}}]
    for instruction in (turn, turn.replace("Perform", "Please perform", 1)):
        reason = guard.check(_blueprint("g3", instruction, own_calls))
        assert reason is not None and "near-duplicate" in reason and "multi_turn_base_0" in reason


def test_the_same_calls_on_another_initial_state_and_new_data_are_not_flagged():
    pristine = canonical_json(data.pristine_config("GorillaFileSystem"))
    references = {canonical_json(r["actions"]) for r in benchmark_test_blueprints(DOMAIN) if r["actions"]}
    other = next(
        e for e in data.all_entries() if e["involved_classes"] == ["GorillaFileSystem"]
        and canonical_json(data.entry_config(e, "GorillaFileSystem")) != pristine
        and len(ground_truth_actions(e["id"])[0]) >= 2
        and canonical_json(ground_truth_actions(e["id"])[0]) not in references
    )
    guard = guard_for(DOMAIN)
    elsewhere = _blueprint("g4", "Sort out the folder for me in whatever way is sensible.", ground_truth_actions(other["id"])[0])
    assert guard.check(elsewhere) is None
    new = _blueprint("g5", "Make a folder called archive_2026 and put an empty notes.txt in it.", [
        {"name": "mkdir", "arguments": {"dir_name": "archive_2026"}},
        {"name": "cd", "arguments": {"folder": "archive_2026"}},
        {"name": "touch", "arguments": {"file_name": "notes.txt"}},
    ])
    assert guard.check(new) is None


def test_a_kept_copy_is_flagged_in_the_phase_1_result():
    turns = ground_truth_actions("multi_turn_base_0")
    copied = _blueprint("bfcl.file_system-1", "Anything at all.", turns[0])
    new = _blueprint("bfcl.file_system-2", "Make a folder called archive_2026.", [{"name": "mkdir", "arguments": {"dir_name": "archive_2026"}}])
    outcomes = [ThreadOutcome(f"phase1:{bp['id']}", {"status": "accepted", "blueprint": bp, "attempts": []}) for bp in (copied, new)]
    result = phase1_result(outcomes, DOMAIN)
    assert list(result.contamination) == ["bfcl.file_system-1"]
    assert result.summary()["flagged_as_test_contamination"] == 1
