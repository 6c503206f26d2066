"""Duplicate detection for blueprints: action signatures, instruction similarity, the index."""

from __future__ import annotations

import random
import threading

import pytest

from apigen_mt.blueprint import Blueprint
from apigen_mt.tools.dedup import DedupIndex, DuplicateMatch, action_signature, instruction_similarity

LONG = (
    "You are Mia Garcia in zip code 80219 and you want to return the hiking boots and the "
    "water bottle from order #W4817420 to your original credit card, but only if the refund "
    "arrives within five business days"
)


def _bp(bp_id, instruction, actions=None, domain="retail"):
    return {
        "id": bp_id,
        "domain": domain,
        "instruction": instruction,
        "actions": actions if actions is not None else [],
        "outputs": [],
    }


def _cancel(order_id="#W123", reason="no longer needed"):
    return [
        {"name": "get_order_details", "arguments": {"order_id": order_id}},
        {"name": "cancel_pending_order", "arguments": {"order_id": order_id, "reason": reason}},
    ]


def _change_word(text, position, word="xyzzy"):
    words = text.split()
    words[position] = word
    return " ".join(words)


# ------------------------------------------------------------------ action signatures


def test_signature_ignores_wording_and_argument_key_order():
    a = _bp("a", "Cancel my order #W123, I don't need it.", _cancel())
    reordered = [
        {"name": "get_order_details", "arguments": {"order_id": "#W123"}},
        {"arguments": {"reason": "no longer needed", "order_id": "#W123"}, "name": "cancel_pending_order"},
    ]
    b = _bp("b", "Please get rid of the pending order W123.", reordered)
    assert action_signature(a) == action_signature(b)
    assert len(action_signature(a)) == 64


def test_signature_accepts_blueprint_models():
    data = _bp("a", "Cancel order #W123", _cancel())
    assert action_signature(Blueprint(**data)) == action_signature(data)


@pytest.mark.parametrize(
    "other",
    [
        _cancel(order_id="#W999"),  # another entity
        _cancel(reason="ordered by mistake"),  # another argument value
        list(reversed(_cancel())),  # another order
        _cancel()[:1],  # fewer calls
    ],
)
def test_signature_changes_with_arguments_calls_and_order(other):
    assert action_signature(_bp("a", "x", _cancel())) != action_signature(_bp("b", "x", other))


# ------------------------------------------------------------------ instruction similarity


def test_similarity_ignores_case_punctuation_and_whitespace():
    assert instruction_similarity(LONG, "  " + LONG.upper().replace(" ", "   \n") + "!!! ") == 1.0
    assert instruction_similarity("Cancel order #W123.", "cancel ORDER w123") == 1.0


@pytest.mark.parametrize("position", [0, 7, 15, 28])
def test_one_changed_word_in_a_long_instruction_is_near_identical(position):
    assert len(LONG.split()) >= 30
    assert instruction_similarity(LONG, _change_word(LONG, position)) >= 0.85


def test_one_inserted_word_is_near_identical():
    words = LONG.split()
    assert instruction_similarity(LONG, " ".join(words[:12] + ["really"] + words[12:])) >= 0.85


def test_different_tasks_of_one_domain_are_far_apart():
    sim = instruction_similarity(
        "cancel order #W123 because I no longer need it",
        "exchange the shoes in order #W123 for size 10",
    )
    assert sim < 0.5
    same_user_other_task = (
        "You are Mia Garcia in zip code 80219 and you want to exchange the hiking boots from "
        "order #W4817420 for a bigger size, paying any difference with your gift card"
    )
    assert instruction_similarity(LONG, same_user_other_task) < 0.7


def test_similarity_is_symmetric_and_bounded():
    rng = random.Random(3)
    vocab = ["order", "cancel", "return", "the", "shoes", "#W1", "size", "refund", "card", "gift"]
    for _ in range(50):
        a = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12)))
        b = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12)))
        sim = instruction_similarity(a, b)
        assert 0.0 <= sim <= 1.0
        assert sim == instruction_similarity(b, a)
    assert instruction_similarity("", "") == 1.0
    assert instruction_similarity("", "cancel it") == 0.0
    assert instruction_similarity("cancel it", "cancel it") == 1.0


# ------------------------------------------------------------------ the index


def test_same_actions_with_different_wording_are_duplicates():
    index = DedupIndex()
    assert index.claim("bp-12", _bp("bp-12", "Cancel my order #W123, I don't need it.", _cancel())) is None
    match = index.claim("bp-13", _bp("bp-13", "The user wants pending order W123 gone.", _cancel()))
    assert match == DuplicateMatch("same_actions", "bp-12", 1.0)
    assert "bp-13" not in index and len(index) == 1


def test_different_arguments_are_not_duplicates():
    index = DedupIndex()
    index.add("a", _bp("a", "Cancel my order #W123, I don't need it.", _cancel("#W123")))
    assert index.find(_bp("b", "Cancel my order #W456 since I ordered it by mistake.", _cancel("#W456"))) is None


def test_same_actions_in_another_domain_or_no_actions_are_not_duplicates():
    index = DedupIndex()
    index.add("a", _bp("a", "Look up order #W123.", _cancel()))
    index.add("empty", _bp("empty", "What is your return policy?", []))
    assert index.find(_bp("b", "Something else entirely.", _cancel(), domain="other")) is None
    assert index.find(_bp("c", "Tell me the store's opening hours.", [])) is None


def test_near_identical_instruction_is_flagged_with_different_actions():
    index = DedupIndex()
    index.add("bp-7", _bp("bp-7", LONG, _cancel("#W4817420")))
    match = index.find(_bp("bp-8", _change_word(LONG, 15), _cancel("#W1")))
    assert match is not None
    assert (match.kind, match.of) == ("near_instruction", "bp-7")
    assert 0.85 <= match.similarity < 1.0


def test_best_near_match_is_reported():
    index = DedupIndex()
    index.add("far", _bp("far", _change_word(_change_word(LONG, 5), 20)))
    index.add("near", _bp("near", _change_word(LONG, 33)))
    assert index.find(_bp("q", LONG)).of == "near"


def test_distinct_tasks_are_not_flagged():
    instructions = [
        "cancel order #W123 because I no longer need it",
        "exchange the shoes in order #W123 for size 10",
        "return the water bottle from order #W123 to my gift card",
        "change the shipping address of order #W123 to 12 Elm Street, Austin",
        "what is the total I spent on order #W123 and #W456",
        LONG,
    ]
    index = DedupIndex()
    for number, text in enumerate(instructions):
        assert index.claim(f"bp-{number}", _bp(f"bp-{number}", text, [{"name": "t", "arguments": {"n": number}}])) is None
    assert len(index) == len(instructions)


def test_find_does_not_add_and_works_as_contamination_guard():
    tests = [
        _bp("test-0", LONG, _cancel("#W4817420")),
        Blueprint(**_bp("test-1", "Exchange the shoes in order #W123 for size 10.", _cancel("#W123"))),
    ]
    guard = DedupIndex.from_blueprints(tests, threshold=0.9)
    assert len(guard) == 2 and "test-0" in guard and "test-1" in guard
    assert guard.threshold == 0.9
    generated = _bp("gen-1", "EXCHANGE the shoes in order W123 for size 10, please!", [])
    assert guard.find(generated).of == "test-1"
    assert guard.find(_bp("gen-2", "Return my lamp.", _cancel("#W4817420"))).kind == "same_actions"
    assert len(guard) == 2 and "gen-1" not in guard


def test_a_blueprint_is_never_its_own_duplicate():
    index = DedupIndex()
    blueprint = _bp("bp-1", LONG, _cancel())
    index.add("bp-1", blueprint)
    assert index.find(blueprint) is None
    assert index.find(dict(blueprint, id="bp-2")).of == "bp-1"


def test_claim_is_idempotent():
    index = DedupIndex()
    blueprint = _bp("bp-1", LONG, _cancel())
    assert index.claim("bp-1", blueprint) is None
    assert index.claim("bp-1", blueprint) is None
    assert index.claim("bp-1", _bp("bp-1", "something else", [])) is None
    assert len(index) == 1
    assert index.find(_bp("x", "something else", [])) is None  # the second claim added nothing


def test_add_replaces_what_the_id_held():
    index = DedupIndex()
    index.add("bp-1", _bp("bp-1", LONG, _cancel()))
    index.add("bp-1", _bp("bp-1", "Exchange the shoes in order #W9 for size 10.", []))
    assert len(index) == 1
    assert index.find(_bp("q", LONG, _cancel())) is None
    assert index.find(_bp("q", "exchange the shoes in order W9 for size 10")).of == "bp-1"


def test_concurrent_claims_of_one_blueprint_have_exactly_one_winner():
    index = DedupIndex()
    barrier = threading.Barrier(16)
    results: dict[str, DuplicateMatch | None] = {}

    def worker(number: int) -> None:
        bp_id = f"bp-{number}"
        barrier.wait()
        for _ in range(20):  # repeated claims by the same worker are idempotent
            outcome = index.claim(bp_id, _bp(bp_id, LONG, _cancel()))
            results.setdefault(bp_id, outcome)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [bp_id for bp_id, outcome in results.items() if outcome is None]
    assert len(winners) == 1 and len(index) == 1 and winners[0] in index
    assert all(outcome.of == winners[0] for outcome in results.values() if outcome is not None)


def test_threshold_is_configurable():
    a, b = LONG, _change_word(_change_word(LONG, 8), 20)
    similarity = instruction_similarity(a, b)
    assert 0.85 <= similarity < 0.95
    strict = DedupIndex.from_blueprints([_bp("a", a)], threshold=0.95)
    loose = DedupIndex.from_blueprints([_bp("a", a)], threshold=0.85)
    assert strict.find(_bp("b", b)) is None
    assert loose.find(_bp("b", b)).similarity == pytest.approx(similarity)
    very_loose = DedupIndex(threshold=0.3)  # below 0.5 the index compares with every entry
    very_loose.add("a", _bp("a", "cancel order #W123 because I no longer need it"))
    text = "exchange the shoes in order #W123 for size 10 because I no longer need them"
    assert very_loose.find(_bp("b", text)).similarity == pytest.approx(
        instruction_similarity("cancel order #W123 because I no longer need it", text)
    )
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            DedupIndex(threshold=bad)


def test_index_agrees_with_brute_force():
    """The inverted-index shortcut finds exactly the matches a full comparison finds."""
    rng = random.Random(7)
    vocab = [f"w{number}" for number in range(40)]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 14))) for _ in range(150)]
    texts += [_change_word(text, 0) for text in texts[:40] if len(text.split()) > 6]
    for threshold in (0.6, 0.85):
        index = DedupIndex(threshold=threshold)
        kept: list[tuple[str, str]] = []
        for number, text in enumerate(texts):
            match = index.claim(f"t{number}", _bp(f"t{number}", text))
            expected = [(instruction_similarity(text, old), old_id) for old_id, old in kept]
            expected = [pair for pair in expected if pair[0] >= threshold]
            if not expected:
                assert match is None, (text, match)
                kept.append((f"t{number}", text))
            else:
                assert match is not None and match.similarity == pytest.approx(max(expected)[0])


def test_reasons_are_readable():
    same = DuplicateMatch("same_actions", "bp-12", 1.0)
    assert same.reason() == "duplicate of bp-12: same action sequence on the same entities"
    near = DuplicateMatch("near_instruction", "bp-7", 0.9312, threshold=0.85)
    assert near.reason() == "near-duplicate of bp-7: instruction 93% similar (threshold 85%)"
    index = DedupIndex()
    index.add("bp-3", _bp("bp-3", LONG))
    assert index.find(_bp("q", _change_word(LONG, 4))).reason().startswith("near-duplicate of bp-3: instruction ")


def test_who_acts_and_where_it_starts_are_part_of_the_action_signature():
    fix = [{"name": "toggle_airplane_mode", "arguments": {}, "requestor": "user"}]
    plain = {"actions": [{"name": "toggle_airplane_mode", "arguments": {}}]}
    assert action_signature({"actions": fix}) != action_signature(plain)  # the user's call, not the assistant's
    broken_apn = {"actions": fix, "initial_state": {"initialization_actions": [{"func_name": "break_apn_settings"}]}}
    airplane_on = {"actions": fix, "initial_state": {"initialization_actions": [{"func_name": "turn_airplane_mode_on"}]}}
    assert action_signature(broken_apn) != action_signature(airplane_on)  # one fix, two faults: two tasks
    assert action_signature({**plain, "initial_state": None}) == action_signature(plain)
