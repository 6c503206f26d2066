"""The verifier's verdict equals tau2's own (EnvironmentEvaluator x CommunicateEvaluator).

For every gold task (both splits, retail and airline) a conversation that replays the gold
actions and says the expected outputs must get reward 1 from both; corrupted conversations
(a write dropped, an argument changed, an output left unsaid, a write repeated) must get the
same reward from both, and ours must say why.
"""

from __future__ import annotations

import copy

import pytest

from apigen_mt.domains.tau2bench.tasks import tau2_tasks, task_to_blueprint
from apigen_mt.tools.verifier import verify

from tau2_harness import tau2_reward

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _variants(bp):
    """(label, calls, messages) for the gold conversation and corrupted ones."""
    calls = [a.model_dump() for a in bp.actions]
    gold_messages = [f"Done. {o}." for o in bp.outputs] or ["All done."]
    yield "gold", calls, gold_messages
    writes = [i for i, a in enumerate(calls) if a["name"] not in _READS]
    if writes:
        dropped = [c for i, c in enumerate(calls) if i != writes[-1]]
        yield "write-dropped", dropped, gold_messages
        changed = copy.deepcopy(calls)
        _change_an_argument(changed[writes[-1]])
        yield "argument-changed", changed, gold_messages
        yield "write-repeated", calls + [copy.deepcopy(calls[writes[0]])], gold_messages
    if bp.outputs:
        yield "output-missing", calls, gold_messages[1:] or ["Sorry, I cannot tell."]


_READS = {
    "find_user_id_by_email", "find_user_id_by_name_zip", "get_order_details", "get_product_details",
    "get_user_details", "list_all_product_types", "calculate", "get_reservation_details",
    "list_all_airports", "search_direct_flight", "search_onestop_flight", "get_flight_status",
    "transfer_to_human_agents",
}


def _change_an_argument(call):
    for key, value in call["arguments"].items():
        if key in {"reason"}:
            call["arguments"][key] = "ordered by mistake" if value == "no longer needed" else "no longer needed"
            return
    for key, value in call["arguments"].items():
        if isinstance(value, str) and key.endswith("payment_method_id"):
            call["arguments"][key] = value + "0"
            return
        if isinstance(value, int) and not isinstance(value, bool):
            call["arguments"][key] = value + 1
            return
        if isinstance(value, list) and value and isinstance(value[-1], str):
            call["arguments"][key] = value[:-1]
            return
        if key == "cabin":
            call["arguments"][key] = "business" if value != "business" else "economy"
            return
    call["arguments"]["__unexpected__"] = 1  # an argument error: the write does not happen


@pytest.mark.parametrize("name", ["retail", "airline"])
def test_verdicts_match_tau2(name, request):
    domain = request.getfixturevalue(name)
    checked = {"gold": 0}
    rejected: dict[str, int] = {}
    for split in ("train", "test"):
        for position, task in enumerate(tau2_tasks(name, split)):
            bp = task_to_blueprint(name, task, split)
            for label, calls, messages in _variants(bp):
                if label != "gold" and position % 8:  # corrupted variants on every 8th task: time
                    continue
                ours = verify(domain, bp, calls, messages)
                theirs = tau2_reward(name, task, calls, messages)
                assert ours.reward == theirs, (bp.id, label, ours.reasons)
                if label == "gold":
                    assert ours.reward == 1.0
                if ours.reward == 0.0:
                    assert ours.reasons, (bp.id, label)
                    rejected[label] = rejected.get(label, 0) + 1
                checked[label] = checked.get(label, 0) + 1
    assert checked["gold"] == len(tau2_tasks(name, "train")) + len(tau2_tasks(name, "test"))
    assert min(checked.values()) > 0 and len(checked) == 5, checked
    # the corruptions really corrupt: almost every variant is rejected (by both evaluators)
    for label in ("write-dropped", "output-missing"):
        assert rejected.get(label, 0) == checked[label], (label, rejected, checked)
    assert rejected.get("argument-changed", 0) >= 0.5 * checked["argument-changed"], (rejected, checked)
    # a repeated write usually errors (the order is no longer pending) and so changes nothing:
    # both evaluators must then still accept, which is what that variant checks
