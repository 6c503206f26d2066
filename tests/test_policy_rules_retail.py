"""The retail policy rules: a compliant and a breaching trace per rule, and tau2's gold tasks.

Traces are built from real records of the pristine database and run with the execution
check's own executor. Where tau2's tool itself refuses the breach (a cancel on a delivered
order), the breaching call is *forged*: recorded as successful on the state the setup actions
reached, as a tool that did not enforce the rule would leave it. The rule must catch it anyway.
"""

from __future__ import annotations

import pytest

from apigen_mt.domains.retail import rules as retail_rules
from apigen_mt.domains.retail.rules import RULES, STRICT_AUTHENTICATION
from rule_harness import act, documented_exceptions, forged, gold_policy_failures, rule_tests, run

RULE = {rule.name: rule for rule in RULES}


# -- building traces ---------------------------------------------------------------------------
class Data:
    """Real records picked from the pristine retail database."""

    def __init__(self, domain):
        db = domain.pristine
        self.db = db
        orders = sorted(db.orders.values(), key=lambda o: o.order_id)
        self.pending = [o for o in orders if o.status == "pending" and len(o.payment_history) == 1]
        self.delivered = [o for o in orders if o.status == "delivered"]

    def user(self, order):
        return self.db.users[order.user_id]

    def auth(self, order):
        return act("find_user_id_by_email", email=self.user(order).email)

    def methods(self, order, source=None):
        return [m for m, v in self.user(order).payment_methods.items() if source is None or v.source == source]

    def original(self, order):
        return order.payment_history[0].payment_method_id

    def alternative(self, order, index=0, available=True):
        """(old item id, another variant of the same product, no dearer) for one item of the order."""
        for item in order.items:
            for variant in self.db.products[item.product_id].variants.values():
                if variant.item_id != item.item_id and variant.available == available and variant.price <= item.price:
                    return item.item_id, variant.item_id
        return None

    def other_product_item(self, order):
        item = order.items[0]
        product = next(p for p in self.db.products.values() if p.product_id != item.product_id)
        return item.item_id, next(iter(product.variants))

    def pending_with(self, predicate):
        return next(o for o in self.pending if predicate(o))

    def delivered_with(self, predicate):
        return next(o for o in self.delivered if predicate(o))


@pytest.fixture(scope="module")
def data(retail):
    return Data(retail)


def address(order):
    return order.address.model_dump()


# -- one compliant and one breaching trace per rule ----------------------------------------------
def auth_pass(d, dom):
    o = d.pending[0]
    return run(dom, [d.auth(o), act("get_order_details", order_id=o.order_id),
                     act("cancel_pending_order", order_id=o.order_id, reason="no longer needed")])


def auth_fail(d, dom):
    o = d.pending[0]  # looks the order up and cancels it without locating the user first
    return run(dom, [act("get_user_details", user_id=o.user_id), act("get_order_details", order_id=o.order_id),
                     act("cancel_pending_order", order_id=o.order_id, reason="no longer needed")])


def one_user_pass(d, dom):
    o = d.pending_with(lambda o: sum(x.user_id == o.user_id for x in d.pending) > 1)
    other = next(x for x in d.pending if x.user_id == o.user_id and x.order_id != o.order_id)
    return run(dom, [d.auth(o), act("get_order_details", order_id=o.order_id),
                     act("modify_pending_order_address", order_id=other.order_id, **address(o)),
                     act("modify_user_address", user_id=o.user_id, **address(o))])


def one_user_fail(d, dom):
    first, second = d.pending[0], next(o for o in d.pending if o.user_id != d.pending[0].user_id)
    return run(dom, [d.auth(first), d.auth(second),
                     act("cancel_pending_order", order_id=second.order_id, reason="ordered by mistake")])


def cancel_pass(d, dom):
    o = d.pending[1]
    return run(dom, [d.auth(o), act("cancel_pending_order", order_id=o.order_id, reason="ordered by mistake")])


def cancel_fail(d, dom):
    o = d.delivered[0]  # tau2 refuses both breaches; forge them
    trace = forged(dom, [d.auth(o)], "cancel_pending_order", {"order_id": o.order_id, "reason": "no longer needed"})
    p = d.pending[1]
    bad_reason = forged(dom, [d.auth(p)], "cancel_pending_order", {"order_id": p.order_id, "reason": "too expensive"})
    return trace, bad_reason


def modify_pending_pass(d, dom):
    o = d.pending_with(lambda o: d.alternative(o))
    old, new = d.alternative(o)
    return run(dom, [d.auth(o), act("modify_pending_order_address", order_id=o.order_id, **address(o)),
                     act("modify_pending_order_items", order_id=o.order_id, item_ids=[old], new_item_ids=[new],
                         payment_method_id=d.original(o))])


def modify_pending_fail(d, dom):
    o = d.pending_with(lambda o: d.alternative(o))
    old, new = d.alternative(o)  # the address tool accepts 'pending (item modified)'; the policy does not
    return run(dom, [d.auth(o), act("modify_pending_order_items", order_id=o.order_id, item_ids=[old],
                                    new_item_ids=[new], payment_method_id=d.original(o)),
                     act("modify_pending_order_address", order_id=o.order_id, **address(o))])


def delivered_pass(d, dom):
    o = d.delivered[0]
    return run(dom, [d.auth(o), act("return_delivered_order_items", order_id=o.order_id,
                                    item_ids=[o.items[0].item_id], payment_method_id=d.original(o))])


def delivered_fail(d, dom):
    o = d.pending[0]
    return forged(dom, [d.auth(o)], "return_delivered_order_items",
                  {"order_id": o.order_id, "item_ids": [o.items[0].item_id], "payment_method_id": d.original(o)})


def once_pass(d, dom):
    o = d.delivered_with(lambda o: d.alternative(o))
    old, new = d.alternative(o)
    return run(dom, [d.auth(o), act("exchange_delivered_order_items", order_id=o.order_id, item_ids=[old],
                                    new_item_ids=[new], payment_method_id=d.original(o))])


def once_fail(d, dom):
    o = d.delivered_with(lambda o: d.alternative(o) and len(o.items) > 1)
    old, new = d.alternative(o)
    first = act("exchange_delivered_order_items", order_id=o.order_id, item_ids=[old], new_item_ids=[new],
                payment_method_id=d.original(o))
    return forged(dom, [d.auth(o), first], "return_delivered_order_items",
                  {"order_id": o.order_id, "item_ids": [o.items[-1].item_id], "payment_method_id": d.original(o)})


def lists_pass(d, dom):
    return delivered_pass(d, dom)


def lists_fail(d, dom):
    o = d.delivered[0]  # tau2 accepts an empty return and marks the order 'return requested'
    return run(dom, [d.auth(o), act("return_delivered_order_items", order_id=o.order_id, item_ids=[],
                                    payment_method_id=d.original(o))])


def same_product_pass(d, dom):
    o = d.delivered_with(lambda o: d.alternative(o))
    old, new = d.alternative(o)
    replacement = d.delivered_with(  # a like-for-like replacement of a delivered item is accepted
        lambda x: x.user_id != o.user_id and d.db.products[x.items[0].product_id].variants[x.items[0].item_id].available
    )
    item = replacement.items[0]
    traces = [run(dom, [d.auth(o), act("exchange_delivered_order_items", order_id=o.order_id, item_ids=[old],
                                       new_item_ids=[new], payment_method_id=d.original(o))])]
    traces.append(run(dom, [d.auth(replacement), act(
            "exchange_delivered_order_items", order_id=replacement.order_id, item_ids=[item.item_id],
            new_item_ids=[item.item_id], payment_method_id=d.original(replacement))]))
    return tuple(traces)


def same_product_fail(d, dom):
    o = d.delivered_with(lambda o: d.alternative(o))
    old, shoe = d.other_product_item(o)
    other_type = forged(dom, [d.auth(o)], "exchange_delivered_order_items",
                        {"order_id": o.order_id, "item_ids": [old], "new_item_ids": [shoe],
                         "payment_method_id": d.original(o)})
    p = d.pending_with(lambda o: d.alternative(o, available=False))
    old, unavailable = d.alternative(p, available=False)
    not_available = forged(dom, [d.auth(p)], "modify_pending_order_items",
                           {"order_id": p.order_id, "item_ids": [old], "new_item_ids": [unavailable],
                            "payment_method_id": d.original(p)})
    item = p.items[0].item_id
    same = forged(dom, [d.auth(p)], "modify_pending_order_items",
                  {"order_id": p.order_id, "item_ids": [item], "new_item_ids": [item],
                   "payment_method_id": d.original(p)})
    return other_type, not_available, same


def owner_method_pass(d, dom):
    return delivered_pass(d, dom)


def owner_method_fail(d, dom):
    o = d.delivered[0]
    stranger = next(u for u in d.db.users.values() if u.user_id != o.user_id)
    return forged(dom, [d.auth(o)], "return_delivered_order_items",
                  {"order_id": o.order_id, "item_ids": [o.items[0].item_id],
                   "payment_method_id": next(iter(stranger.payment_methods))})


def _gift_card(d, o, enough: bool):
    for m in d.methods(o, "gift_card"):
        if m != d.original(o) and (d.user(o).payment_methods[m].balance >= o.payment_history[0].amount) == enough:
            return m
    return None


def gift_card_pass(d, dom):
    o = d.pending_with(lambda o: _gift_card(d, o, True))
    return run(dom, [d.auth(o), act("modify_pending_order_payment", order_id=o.order_id,
                                    payment_method_id=_gift_card(d, o, True))])


def gift_card_fail(d, dom):
    o = d.pending_with(lambda o: _gift_card(d, o, False))
    return forged(dom, [d.auth(o)], "modify_pending_order_payment",
                  {"order_id": o.order_id, "payment_method_id": _gift_card(d, o, False)})


def refund_pass(d, dom):
    o = d.delivered_with(lambda o: any(m != d.original(o) for m in d.methods(o, "gift_card")))
    card = next(m for m in d.methods(o, "gift_card") if m != d.original(o))
    return run(dom, [d.auth(o), act("return_delivered_order_items", order_id=o.order_id,
                                    item_ids=[o.items[0].item_id], payment_method_id=card)])


def refund_fail(d, dom):
    def other(o):
        return [m for m in d.methods(o) if m != d.original(o) and d.user(o).payment_methods[m].source != "gift_card"]

    o = d.delivered_with(other)
    return forged(dom, [d.auth(o)], "return_delivered_order_items",
                  {"order_id": o.order_id, "item_ids": [o.items[0].item_id], "payment_method_id": other(o)[0]})


def different_method_pass(d, dom):
    o = d.pending_with(lambda o: len(d.methods(o, "credit_card") + d.methods(o, "paypal")) > 1)
    new = next(m for m in d.methods(o, "credit_card") + d.methods(o, "paypal") if m != d.original(o))
    return run(dom, [d.auth(o), act("modify_pending_order_payment", order_id=o.order_id, payment_method_id=new)])


def different_method_fail(d, dom):
    o = d.pending[0]
    return forged(dom, [d.auth(o)], "modify_pending_order_payment",
                  {"order_id": o.order_id, "payment_method_id": d.original(o)})


def transfer_pass(d, dom):
    o = d.pending[0]
    return run(dom, [d.auth(o), act("get_order_details", order_id=o.order_id),
                     act("transfer_to_human_agents", summary="The user wants a refund to another user's card.")])


def transfer_fail(d, dom):
    o = d.pending[0]
    return run(dom, [d.auth(o), act("transfer_to_human_agents", summary="The user asks for a human."),
                     act("cancel_pending_order", order_id=o.order_id, reason="no longer needed")])


CASES = {
    "authenticate_before_user_data": (auth_pass, auth_fail),
    "one_user_per_conversation": (one_user_pass, one_user_fail),
    "cancel_pending_order_with_valid_reason": (cancel_pass, cancel_fail),
    "modify_only_pending_orders": (modify_pending_pass, modify_pending_fail),
    "return_or_exchange_only_delivered_orders": (delivered_pass, delivered_fail),
    "items_changed_once_per_order": (once_pass, once_fail),
    "item_lists_non_empty": (lists_pass, lists_fail),
    "new_item_same_product_available_other_option": (same_product_pass, same_product_fail),
    "payment_method_of_order_owner": (owner_method_pass, owner_method_fail),
    "gift_card_balance_covers_charge": (gift_card_pass, gift_card_fail),
    "refund_to_original_method_or_gift_card": (refund_pass, refund_fail),
    "payment_change_to_different_method": (different_method_pass, different_method_fail),
    "transfer_ends_conversation": (transfer_pass, transfer_fail),
}


test_every_rule_has_cases, test_rule_passes_compliant_trace, test_rule_flags_breaching_trace = rule_tests(
    CASES, RULES, "retail"
)



def test_write_only_list_is_judged_only_by_the_strict_authentication(data, retail):
    o = data.pending[0]
    trace = run(retail, [act("cancel_pending_order", order_id=o.order_id, reason="no longer needed")])
    assert RULE["authenticate_before_user_data"].check(trace) == []
    assert "was not authenticated" in STRICT_AUTHENTICATION.check(trace)[0]
    assert STRICT_AUTHENTICATION.check(auth_pass(data, retail)) == []


def test_breach_message_explains_policy(data, retail):
    [message] = RULE["modify_only_pending_orders"].check(modify_pending_fail(data, retail))
    assert message.startswith("actions[2] modify_pending_order_address") and "'pending (item modified)'" in message


# -- tau2's gold tasks -----------------------------------------------------------------------------
def test_gold_tasks_pass_policy(retail):
    clean, failures = gold_policy_failures(retail)
    assert clean == 96
    assert (clean - len(failures)) / clean >= 0.95
    assert set(failures) == documented_exceptions(retail_rules) == set(), failures


def test_tau2_rules_read_traces_with_the_shared_queries():
    """One set of generic trace helpers (tools/checks/trace_queries.py); tau2 keeps only its own."""
    from apigen_mt.domains.airline import rules as airline_rules
    from apigen_mt.domains.tau2bench import trace_helpers
    from apigen_mt.tools.checks import trace_queries

    for module in (retail_rules, airline_rules, trace_helpers):
        for name in trace_queries.__all__:
            if hasattr(module, name):
                assert getattr(module, name) is getattr(trace_queries, name), (module.__name__, name)
    defined_here = {
        name for name, value in vars(trace_helpers).items()
        if callable(value) and getattr(value, "__module__", None) == trace_helpers.__name__
    }
    assert defined_here == {"policy_rule", "spells_out_lookups", "transfer_ends_conversation_rule"}


def test_rule_descriptions_name_no_gold_task():
    """Descriptions go to the generator: the gold tasks behind a rule's scope live in comments."""
    for rule in RULES + [STRICT_AUTHENTICATION]:
        assert "tau2" not in rule.description and "gold" not in rule.description, rule.name
