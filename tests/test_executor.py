"""The executor turns every kind of bad call into a typed error with a clear message."""

from __future__ import annotations

from apigen_mt.tools.executor import execute_actions


def _one(domain, name, arguments):
    return execute_actions(domain.new_env(), [{"name": name, "arguments": arguments}]).calls[0]


def test_unknown_tool(retail):
    call = _one(retail, "delete_everything", {})
    assert call.error_type == "UnknownToolError" and "delete_everything" in call.error


def test_wrong_argument_type_and_names(retail):
    call = _one(retail, "get_order_details", {"order_id": 12345})
    assert call.error_type == "ArgumentError" and "order_id must be string, got integer" in call.error
    call = _one(retail, "get_order_details", {"orderid": "#W1"})
    assert "missing required argument order_id" in call.error and "unexpected argument orderid" in call.error
    call = _one(retail, "get_order_details", ["#W1"])
    assert call.error_type == "ArgumentError" and "must be an object" in call.error


def test_business_error_reads_like_the_api(retail):
    call = _one(retail, "get_order_details", {"order_id": "#W0000000"})
    assert call.error_type == "ToolExecutionError" and call.error == "Order not found"
    assert call.render() == "Error: Order not found"


def test_calculate_never_evals(retail):
    assert _one(retail, "calculate", {"expression": "(2 + 3) * 4 / 3"}).observation == "6.67"
    call = _one(retail, "calculate", {"expression": "__import__('os').system('true')"})
    assert call.error == "Invalid characters in expression"
    assert _one(retail, "calculate", {"expression": "1/0"}).error == "division by zero"


def test_domain_bug_becomes_a_tool_error(retail, monkeypatch):
    env = retail.new_env()

    def broken(**_):
        raise KeyError("boom")

    monkeypatch.setattr(env._toolkit, "get_user_details", broken)
    call = execute_actions(env, [{"name": "get_user_details", "arguments": {"user_id": "x"}}]).calls[0]
    assert call.error_type == "ToolExecutionError" and "boom" in call.error


def test_snapshots_capture_state_before_each_call(retail):
    order = next(o for o in retail.pristine.orders.values() if o.status == "pending")
    trace = execute_actions(
        retail.new_env(),
        [{"name": "cancel_pending_order", "arguments": {"order_id": order.order_id, "reason": "no longer needed"}}],
        snapshots=True,
    )
    assert trace.calls[0].before.record("orders", order.order_id)["status"] == "pending"
    assert trace.env.record("orders", order.order_id)["status"] == "cancelled"


def test_no_argument_tool_rejects_extras(airline):
    call = _one(airline, "list_all_airports", {"x": 1})
    assert call.error_type == "ArgumentError" and "it takes no arguments" in call.error


def test_non_string_tool_name_is_an_unknown_tool(retail):
    env = retail.new_env()
    for name in (["x"], None, 5):
        call = execute_actions(env, [{"name": name, "arguments": {}}]).calls[0]
        assert call.error_type == "UnknownToolError"


def test_integral_floats_are_stored_as_integers(airline):
    """A model that writes 6.0 for an integer reaches the same state as one that writes 6."""
    from apigen_mt.tools.verifier import verify

    reservation = next(r for r in airline.pristine.reservations.values() if r.status is None)
    payment = next(iter(airline.pristine.users[reservation.user_id].payment_methods))
    gold = {"actions": [{"name": "update_reservation_baggages", "arguments": {
        "reservation_id": reservation.reservation_id, "total_baggages": 6, "nonfree_baggages": 0,
        "payment_id": payment}}], "outputs": []}
    floats = [{"name": "update_reservation_baggages", "arguments": {
        "reservation_id": reservation.reservation_id, "total_baggages": 6.0, "nonfree_baggages": 0.0,
        "payment_id": payment}}]
    assert verify(airline, gold, floats, []).reward == 1.0


def test_a_failed_write_leaves_the_state_unchanged(retail, monkeypatch):
    order = next(o for o in retail.pristine.orders.values() if o.status == "pending")
    env = retail.new_env()

    def half_done(order_id, reason):
        env._toolkit.db.orders[order_id].status = "cancelled"
        raise ValueError("payment gateway unavailable")

    monkeypatch.setattr(env._toolkit, "cancel_pending_order", half_done)
    call = execute_actions(env, [{"name": "cancel_pending_order",
                                  "arguments": {"order_id": order.order_id, "reason": "no longer needed"}}]).calls[0]
    assert call.error == "payment gateway unavailable"
    assert env.record("orders", order.order_id)["status"] == "pending"
    assert list(env.changed_records()) == []


def test_tool_schemas_handed_out_are_copies(retail):
    schema = retail.tool("get_order_details").openai_schema()
    schema["function"]["parameters"]["properties"]["order_id"]["description"] = "changed"
    assert retail.tool("get_order_details").parameters["properties"]["order_id"]["description"] != "changed"
