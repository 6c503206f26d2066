"""Structural diffs and state hashes."""

from __future__ import annotations

from apigen_mt.tools.executor import execute_actions
from apigen_mt.tools.state_diff import StateDiff, compare_states, field_changes, state_hash


def test_field_changes_paths():
    before = {"status": "pending", "items": [{"price": 1}, {"price": 2}], "x": {"y": 1}}
    after = {"status": "cancelled", "items": [{"price": 1}, {"price": 3}], "x": {}}
    rendered = [c.render() for c in field_changes(before, after)]
    assert rendered == ['items[1].price: 2 -> 3', 'status: "pending" -> "cancelled"', "x.y: 1 -> <absent>"]


def _pending_order(domain):
    return next(o for o in domain.pristine.orders.values() if o.status == "pending")


def test_diff_lists_only_touched_records(retail):
    order = _pending_order(retail)
    env = retail.new_env()
    trace = execute_actions(env, [
        {"name": "get_user_details", "arguments": {"user_id": order.user_id}},
        {"name": "cancel_pending_order", "arguments": {"order_id": order.order_id, "reason": "no longer needed"}},
    ])
    assert not trace.failed
    diff = StateDiff.of(env)
    tables = {(c.table, c.key) for c in diff.changes}
    assert ("orders", order.order_id) in tables
    assert ("users", order.user_id) not in tables  # read, not changed
    assert "status" in diff.render() and "cancelled" in diff.render()
    entry = next(e for e in diff.to_json() if e["key"] == order.order_id)
    assert entry["op"] == "modified"
    assert {"path": "status", "before": "pending", "after": "cancelled"} in entry["fields"]


def test_reads_leave_no_diff_and_hash_equals_pristine(retail):
    order = _pending_order(retail)
    env = retail.new_env()
    execute_actions(env, [{"name": "get_order_details", "arguments": {"order_id": order.order_id}}])
    assert not StateDiff.of(env)
    assert state_hash(env) == state_hash(retail.new_env())


def test_hash_and_compare_distinguish_states(retail):
    order = _pending_order(retail)
    a, b = retail.new_env(), retail.new_env()
    execute_actions(a, [{"name": "cancel_pending_order", "arguments": {"order_id": order.order_id, "reason": "no longer needed"}}])
    execute_actions(b, [{"name": "cancel_pending_order", "arguments": {"order_id": order.order_id, "reason": "ordered by mistake"}}])
    assert state_hash(a) != state_hash(b)
    reasons = compare_states(a, b)
    assert len(reasons) == 1 and "cancel_reason" in reasons[0] and order.order_id in reasons[0]
    assert compare_states(a, a.fork()) == []
    missing = compare_states(a, retail.new_env())
    assert "expected to change but did not" in missing[0]


def test_diffs_are_copies_not_views_of_pristine(retail):
    order = _pending_order(retail)
    env = retail.new_env()
    execute_actions(env, [{"name": "cancel_pending_order", "arguments": {"order_id": order.order_id, "reason": "no longer needed"}}])
    change = next(c for c in env.changed_records() if c.key == order.order_id)
    change.before["status"] = "HACKED"
    env.record("orders", order.order_id)["status"] = "HACKED"
    assert env.record("orders", order.order_id)["status"] == "cancelled"
    fresh = retail.new_env()
    execute_actions(fresh, [{"name": "get_order_details", "arguments": {"order_id": order.order_id}}])
    assert not StateDiff.of(fresh)
