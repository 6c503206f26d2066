"""Acceptance of stage 1 on tau2-bench's own tasks, and corrupted blueprints."""

from __future__ import annotations

import copy

import pytest

from apigen_mt.domains.tau2bench.runtime import import_tau2
from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
from apigen_mt.tools.checks.format import format_errors
from apigen_mt.tools.checks.validate import validate_blueprint

pytestmark = pytest.mark.integration

ALL = [(name, split) for name in ("retail", "airline") for split in ("train", "test")]


def _all_blueprints(name):
    return [bp.to_json() for split in ("train", "test") for bp in tau2_blueprints(name, split)]


@pytest.mark.parametrize("name,empty", [("retail", 2), ("airline", 7)])
def test_every_task_passes_format(name, empty):
    blueprints = _all_blueprints(name)
    assert blueprints and all(format_errors(bp, name) == [] for bp in blueprints)
    assert sum(1 for bp in blueprints if not bp["actions"]) == empty


@pytest.mark.parametrize("name,errors,total", [("retail", 23, 553), ("airline", 0, 148)])
def test_execution_stage_agrees_with_tau2(name, errors, total, request):
    """A blueprint fails execution exactly when one of its actions errors in tau2 itself."""
    domain = request.getfixturevalue(name)
    message = import_tau2("data_model.message")
    environment = import_tau2(f"domains.{name}.environment")
    tau2_errors = our_errors = actions = 0
    for bp in _all_blueprints(name):
        result = validate_blueprint(domain, bp)
        env = environment.get_environment()
        tau2_failed = False
        for index, action in enumerate(bp["actions"]):
            response = env.get_response(message.ToolCall(id=str(index), name=action["name"], arguments=action["arguments"]))
            tau2_failed |= response.error
            tau2_errors += response.error
        actions += len(bp["actions"])
        our_errors += len(result.trace.failed)
        assert (result.stage == "execution") == tau2_failed, (bp["id"], result.reasons)
    assert (our_errors, tau2_errors, actions) == (errors, errors, total)


# -- corrupted blueprints -------------------------------------------------------------------
def _gold(name, task_id):
    return next(bp for bp in _all_blueprints(name) if bp["source"]["task_id"] == task_id)


def _first(bp, tool):
    return next(a for a in bp["actions"] if a["name"] == tool)


def _corrupt(bp, edit):
    bad = copy.deepcopy(bp)
    edit(bad)
    return bad


def test_gold_example_is_valid(retail):
    assert validate_blueprint(retail, _gold("retail", "0")).stage == "ok"


@pytest.mark.parametrize(
    "edit,stage,expected",
    [
        (lambda bp: _first(bp, "exchange_delivered_order_items")["arguments"].update(order_id="#W0000000"),
         "execution", "Order not found"),
        (lambda bp: _first(bp, "exchange_delivered_order_items")["arguments"].update(item_ids=["1234567890"]),
         "execution", "1234567890 not found"),
        (lambda bp: bp["actions"].append({"name": "refund_everything", "arguments": {}}),
         "execution", "Tool 'refund_everything' not found"),
        (lambda bp: _first(bp, "get_order_details")["arguments"].update(order_id=2378156),
         "execution", "order_id must be string, got integer"),
        (lambda bp: bp.pop("actions"), "format", "missing field 'actions'"),
        (lambda bp: bp["outputs"].append(42), "format", "outputs[0] must be a non-empty string"),
        (lambda bp: bp["actions"].insert(0, "cancel it"), "format", "actions[0] must be an object"),
    ],
    ids=["wrong-order-id", "wrong-item", "unknown-tool", "bad-argument-type", "no-actions-field",
         "non-string-output", "action-not-object"],
)
def test_corrupted_retail_blueprint_rejected_at_the_right_stage(retail, edit, stage, expected):
    result = validate_blueprint(retail, _corrupt(_gold("retail", "0"), edit))
    assert result.stage == stage and not result.passed
    assert any(expected in reason for reason in result.reasons), result.reasons


def test_write_without_identity_is_a_policy_failure(retail):
    """Dropping the identity lookup leaves an executable but non-compliant blueprint."""
    bad = _corrupt(_gold("retail", "0"), lambda bp: bp["actions"].pop(0))
    assert bad["actions"][0]["name"] != "find_user_id_by_name_zip"
    result = validate_blueprint(retail, bad)
    assert result.stage == "policy", result.reasons
    assert result.diff  # the state change is still reported for the reviewers
