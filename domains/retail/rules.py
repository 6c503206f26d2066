"""The tau2 retail policy as executable rules over an execution trace.

Each rule reads the successful calls of a trace (failed calls changed nothing; the execution
check reports them) and the snapshot taken just before each call, and returns one message per
breach: which action, what happened, what the policy requires. Many conditions are also
enforced by tau2's tools (a cancel on a non-pending order raises), so such a breach already
fails the execution check; the rules restate them so that a trace built by other means (or a
tool that changes) is still judged, and the feedback names the policy. The rules that matter
most are the ones the tools do NOT enforce: authentication, one user per conversation, no
address or payment change to an order whose items were modified, non-empty item lists,
nothing after a transfer.

What cannot be decided from a trace and is therefore not encoded: the explicit "yes" before
each write, that the agent checked the order status with a read before acting (the rules use
the snapshot instead), that the reason or items were confirmed by the user, "no made-up
information", and whether a transfer to a human was needed.

Authentication and write-only ground truths: the policy requires locating the user id via
email or name + zip at the start of the conversation. tau2's gold action lists often record
only the writes (44 of the 96 cleanly executing gold tasks have no read call at all, and no
lookup), because tau2 grades on the final database. A write-only list therefore cannot show
whether the conversation authenticated, and ``authenticate_before_user_data`` judges only
lists that spell out their lookups; ``STRICT_AUTHENTICATION`` also demands the lookup in
write-only lists, for pipelines that ask the generator to include it. The users a write-only
list touches are still held to one user by ``one_user_per_conversation``.

Known gold exceptions: none. All 96 cleanly executing retail gold tasks (train and test) pass.
Three of them (tau2-retail-18, -91, -107) exchange a damaged delivered item for the very same
item (a like-for-like replacement); the policy's wording "an available new item of the same
product but of different product option" would forbid that, but tau2 tests it on purpose and
its exchange tool allows it, so ``new_item_same_product_available_other_option`` requires a
different option only for pending-order modifications (where the tool requires it too) and
accepts a replacement by the same item in an exchange.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apigen_mt.domains.base import PolicyRule
from apigen_mt.domains.tau2bench.trace_helpers import (
    policy_rule,
    spells_out_lookups,
    transfer_ends_conversation_rule,
)
from apigen_mt.tools.checks.trace_queries import ok_calls, record_before, where

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace

LOOKUPS = ("find_user_id_by_email", "find_user_id_by_name_zip")
ORDER_WRITES = (
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_payment",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
)
USER_WRITES = ("modify_user_address",)
WRITES = ORDER_WRITES + USER_WRITES
USER_READS = ("get_user_details", "get_order_details")
MODIFY = ("modify_pending_order_address", "modify_pending_order_payment", "modify_pending_order_items")
ITEM_CHANGES = ("modify_pending_order_items", "exchange_delivered_order_items")
PAID_CHANGES = ("modify_pending_order_payment",) + ITEM_CHANGES + ("return_delivered_order_items",)
CANCEL_REASONS = ("no longer needed", "ordered by mistake")


# -- reading retail calls ----------------------------------------------------------------------
def order_before(call: "ExecutedCall") -> dict[str, Any] | None:
    return record_before(call, "orders", call.arguments.get("order_id"))


def user_of(call: "ExecutedCall") -> str | None:
    """The user a successful call is about: located, looked up, or owning the order."""
    if call.name in LOOKUPS:
        return call.observation if isinstance(call.observation, str) else None
    if "order_id" in call.arguments:
        order = order_before(call)
        return order.get("user_id") if order else None
    user_id = call.arguments.get("user_id")
    return user_id if isinstance(user_id, str) else None


def payment_method(call: "ExecutedCall", user_id: str | None, method_id: Any) -> dict[str, Any] | None:
    user = record_before(call, "users", user_id)
    if not user or not isinstance(method_id, str):
        return None
    return (user.get("payment_methods") or {}).get(method_id)


def item_pairs(call: "ExecutedCall") -> list[tuple[Any, Any]]:
    old, new = call.arguments.get("item_ids") or [], call.arguments.get("new_item_ids") or []
    return list(zip(old, new))


def variant(call: "ExecutedCall", product_id: Any, item_id: Any) -> dict[str, Any] | None:
    product = record_before(call, "products", product_id)
    return (product or {}).get("variants", {}).get(item_id) if isinstance(item_id, str) else None


def price_difference(call: "ExecutedCall", order: dict[str, Any]) -> float | None:
    """New minus old price of an item change, the way the tools compute it (None if unknown)."""
    total = 0.0
    for old_id, new_id in item_pairs(call):
        item = next((i for i in order.get("items", []) if i.get("item_id") == old_id), None)
        new = variant(call, item.get("product_id"), new_id) if item else None
        if item is None or new is None:
            return None
        total += new["price"] - item["price"]
    return round(total, 2)


def original_payment_method(order: dict[str, Any]) -> str | None:
    history = order.get("payment_history") or []
    return history[0].get("payment_method_id") if history else None


# -- rules -------------------------------------------------------------------------------------
def _authentication_rule(strict: bool) -> PolicyRule:
    name = "authenticate_before_user_data" + ("_strict" if strict else "")
    scope = (
        "Strict variant: every action list, write-only ones included, must show the lookup."
        if strict
        else "An action list with no read call at all (only the writes) cannot show the authentication "
        "the conversation did, so it is not judged here (one_user_per_conversation still holds it to "
        "one user). A list with any read call must show the lookup."
    )
    # Write-only lists are common in tau2's gold tasks, which grade on the final database (see the
    # module docstring); the strict variant is for pipelines that ask the generator for the lookup.

    @policy_rule(
        name,
        LOOKUPS + USER_READS + WRITES,
        """Policy: "At the beginning of the conversation, you have to authenticate the user identity by
        locating their user id via email, or via name + zip code. This has to be done even when the
        user already provides the user id. Once the user has been authenticated, you can provide the
        user with information about order, product, profile information." So before a call reads a
        user's profile or order (get_user_details, get_order_details) or changes anything, that
        user's id must have been located by find_user_id_by_email or find_user_id_by_name_zip
        earlier in the trace; get_user_details with a user id given by the user does not
        authenticate. """
        + scope,
    )
    def check(trace: "ExecutionTrace") -> list[str]:
        if not strict and not spells_out_lookups(trace):
            return []
        located: set[str] = set()
        problems = []
        for call in ok_calls(trace, *(LOOKUPS + USER_READS + WRITES)):
            user = user_of(call)
            if call.name in LOOKUPS:
                if user:
                    located.add(user)
                continue
            if user is not None and user not in located:
                what = "reads the data of" if call.name in USER_READS else "changes the data of"
                problems.append(
                    f"{where(call)} {what} user {user!r}, who was not authenticated before it: the policy "
                    "requires locating the user id with find_user_id_by_email or find_user_id_by_name_zip "
                    "first, even when the user gives their user id"
                )
        return problems

    return check


authenticate_before_user_data = _authentication_rule(strict=False)
STRICT_AUTHENTICATION = _authentication_rule(strict=True)


@policy_rule(
    "one_user_per_conversation",
    LOOKUPS + USER_READS + WRITES,
    """Policy: "You can only help one user per conversation (but you can handle multiple requests from
    the same user), and must deny any requests for tasks related to any other user." Every located
    user, every profile or order read, and every write (the order's owner, or the user whose address
    changes) must concern the same single user.""",
)
def one_user_per_conversation(trace: "ExecutionTrace") -> list[str]:
    first: tuple[str, "ExecutedCall"] | None = None
    problems = []
    for call in ok_calls(trace, *(LOOKUPS + USER_READS + WRITES)):
        user = user_of(call)
        if user is None:
            continue
        if first is None:
            first = (user, call)
        elif user != first[0]:
            problems.append(
                f"{where(call)} concerns user {user!r}, but the conversation is with user {first[0]!r} "
                f"(since actions[{first[1].index}] {first[1].name}): one user per conversation, and requests "
                "about any other user must be denied"
            )
    return problems


@policy_rule(
    "cancel_pending_order_with_valid_reason",
    ("cancel_pending_order",),
    """Policy: "An order can only be cancelled if its status is 'pending'" and "The user needs to confirm
    the order id and the reason (either 'no longer needed' or 'ordered by mistake') for cancellation.
    Other reasons are not acceptable." An order whose items were modified ('pending (item modified)')
    cannot be cancelled either: "The agent will not be able to modify or cancel the order anymore".""",
)
def cancel_pending_order_with_valid_reason(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "cancel_pending_order"):
        order = order_before(call)
        if order and order.get("status") != "pending":
            problems.append(
                f"{where(call)} cancels order {call.arguments.get('order_id')!r} whose status is "
                f"{order.get('status')!r}: only orders with status 'pending' can be cancelled"
            )
        reason = call.arguments.get("reason")
        if reason not in CANCEL_REASONS:
            problems.append(
                f"{where(call)} gives the reason {reason!r}: the only acceptable reasons are "
                "'no longer needed' and 'ordered by mistake'"
            )
    return problems


@policy_rule(
    "modify_only_pending_orders",
    MODIFY,
    """Policy: "An order can only be modified if its status is 'pending'"; modifying items "will change
    the order status to 'pending (items modifed)'. The agent will not be able to modify or cancel the
    order anymore." So address, payment and item modifications need status exactly 'pending' (the
    address and payment tools themselves accept 'pending (item modified)').""",
)
def modify_only_pending_orders(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, *MODIFY):
        order = order_before(call)
        if order and order.get("status") != "pending":
            problems.append(
                f"{where(call)} modifies order {call.arguments.get('order_id')!r} whose status is "
                f"{order.get('status')!r}: only 'pending' orders can be modified, and once the items of a "
                "pending order were modified the order cannot be modified or cancelled any more"
            )
    return problems


@policy_rule(
    "return_or_exchange_only_delivered_orders",
    ("return_delivered_order_items", "exchange_delivered_order_items"),
    """Policy: "An order can only be returned if its status is 'delivered'" and "An order can only be
    exchanged if its status is 'delivered'".""",
)
def return_or_exchange_only_delivered_orders(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "return_delivered_order_items", "exchange_delivered_order_items"):
        order = order_before(call)
        if order and order.get("status") != "delivered":
            action = "returns" if call.name.startswith("return") else "exchanges"
            problems.append(
                f"{where(call)} {action} items of order {call.arguments.get('order_id')!r} whose status is "
                f"{order.get('status')!r}: only 'delivered' orders can be returned or exchanged"
            )
    return problems


@policy_rule(
    "items_changed_once_per_order",
    ITEM_CHANGES + ("return_delivered_order_items",),
    """Policy: "Exchange or modify order tools can only be called once per order. Be sure that all items
    to be changed are collected into a list before making the tool call!!!"; modify items "can only be
    called once"; and (tool description) "For a delivered order, return or exchange can be only done
    once by the agent." So per order at most one modify_pending_order_items, and at most one return
    or exchange.""",
)
def items_changed_once_per_order(trace: "ExecutionTrace") -> list[str]:
    problems = []
    seen: dict[tuple[str, Any], "ExecutedCall"] = {}
    for call in ok_calls(trace, *ITEM_CHANGES, "return_delivered_order_items"):
        group = "modify" if call.name == "modify_pending_order_items" else "return/exchange"
        key = (group, call.arguments.get("order_id"))
        if key in seen:
            problems.append(
                f"{where(call)} changes the items of order {key[1]!r} again after actions[{seen[key].index}] "
                f"{seen[key].name}: items of an order can be modified, or returned/exchanged, only once; all "
                "items must be collected into one call"
            )
        else:
            seen[key] = call
    return problems


@policy_rule(
    "item_lists_non_empty",
    ITEM_CHANGES + ("return_delivered_order_items",),
    """Policy: the user confirms "the list of items to be returned", and for exchanges and modifications
    "each item can be exchanged/modified to" a new one. A return, exchange or item modification must
    name at least one item (the tools accept an empty list and still change the order's status), and
    an exchange or modification names as many new items as old ones.""",
)
def item_lists_non_empty(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, *ITEM_CHANGES, "return_delivered_order_items"):
        items = call.arguments.get("item_ids") or []
        if not items:
            problems.append(f"{where(call)} lists no item: name the items to be changed or returned")
        elif call.name in ITEM_CHANGES and len(call.arguments.get("new_item_ids") or []) != len(items):
            problems.append(f"{where(call)} names {len(items)} item(s) but a different number of new items")
    return problems


# The like-for-like exchange is accepted because tau2's gold tasks do it on purpose and its exchange
# tool allows it (the module docstring, "Known gold exceptions", names the tasks).
@policy_rule(
    "new_item_same_product_available_other_option",
    ITEM_CHANGES,
    """Policy (modify items and exchange): "each item can be modified/exchanged to an available new item
    of the same product but of different product option. There cannot be any change of product types,
    e.g. modify shirt to shoe." Each new item id must be a variant of the old item's product and be
    available. A pending-order modification must also pick a different option; an exchange of a
    delivered item for the very same item (a like-for-like replacement of a damaged item) is
    accepted.""",
)
def new_item_same_product_available_other_option(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, *ITEM_CHANGES):
        order = order_before(call)
        if not order:
            continue
        for old_id, new_id in item_pairs(call):
            item = next((i for i in order.get("items", []) if i.get("item_id") == old_id), None)
            if item is None:
                continue  # the tools refuse items not in the order
            if new_id == old_id and call.name == "modify_pending_order_items":
                problems.append(
                    f"{where(call)} changes item {old_id!r} into the same item: a modification must pick a "
                    "different option of the same product"
                )
                continue
            new = variant(call, item.get("product_id"), new_id)
            if new is None:
                problems.append(
                    f"{where(call)} changes item {old_id!r} ({item.get('name')}, product "
                    f"{item.get('product_id')}) into {new_id!r}, which is not a variant of that product: no "
                    "change of product type is allowed"
                )
            elif not new.get("available"):
                problems.append(f"{where(call)} changes item {old_id!r} into {new_id!r}, which is not available")
    return problems


@policy_rule(
    "payment_method_of_order_owner",
    PAID_CHANGES,
    """Policy: payments and refunds use the user's own payment methods ("the user must provide a payment
    method"; profiles list the user's gift cards, PayPal accounts and credit cards). The payment method
    of a payment change, item modification, exchange or return must be in the order owner's profile.""",
)
def payment_method_of_order_owner(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, *PAID_CHANGES):
        order = order_before(call)
        if not order:
            continue
        method_id = call.arguments.get("payment_method_id")
        if payment_method(call, order.get("user_id"), method_id) is None:
            problems.append(
                f"{where(call)} uses payment method {method_id!r}, which is not in the profile of the order's "
                f"owner {order.get('user_id')!r}"
            )
    return problems


@policy_rule(
    "gift_card_balance_covers_charge",
    ("modify_pending_order_payment",) + ITEM_CHANGES,
    """Policy: "If the user wants the modify the payment method to gift card, it must have enough balance
    to cover the total amount", and for item modifications and exchanges "If the user provides a gift
    card, it must have enough balance to cover the price difference".""",
)
def gift_card_balance_covers_charge(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "modify_pending_order_payment", *ITEM_CHANGES):
        order = order_before(call)
        method = payment_method(call, (order or {}).get("user_id"), call.arguments.get("payment_method_id"))
        if not order or not method or method.get("source") != "gift_card":
            continue
        if call.name == "modify_pending_order_payment":
            history = order.get("payment_history") or []
            charge, what = (history[0].get("amount") if history else None), "the order total"
        else:
            charge, what = price_difference(call, order), "the price difference"
        balance = method.get("balance", 0)
        if charge is not None and balance < charge:
            problems.append(
                f"{where(call)} charges {what} {charge} to gift card {call.arguments.get('payment_method_id')!r}, "
                f"whose balance is only {balance}: a gift card must cover the full amount"
            )
    return problems


@policy_rule(
    "refund_to_original_method_or_gift_card",
    ("return_delivered_order_items",),
    """Policy (return): "The refund must either go to the original payment method, or an existing gift
    card." The refund method of a return must be the method that paid the order or a gift card in the
    user's profile.""",
)
def refund_to_original_method_or_gift_card(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "return_delivered_order_items"):
        order = order_before(call)
        if not order:
            continue
        method_id = call.arguments.get("payment_method_id")
        method = payment_method(call, order.get("user_id"), method_id)
        if method_id != original_payment_method(order) and (method or {}).get("source") != "gift_card":
            problems.append(
                f"{where(call)} refunds to {method_id!r}: the refund must go to the original payment method "
                f"{original_payment_method(order)!r} or to an existing gift card of the user"
            )
    return problems


@policy_rule(
    "payment_change_to_different_method",
    ("modify_pending_order_payment",),
    """Policy (modify payment): "The user can only choose a single payment method different from the
    original payment method." The new method must differ from the one that paid the order, and the
    order must have been paid by a single payment.""",
)
def payment_change_to_different_method(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "modify_pending_order_payment"):
        order = order_before(call)
        if not order:
            continue
        payments = [p for p in order.get("payment_history") or [] if p.get("transaction_type") == "payment"]
        if len(payments) != 1 or len(order.get("payment_history") or []) != 1:
            problems.append(
                f"{where(call)} changes the payment of order {call.arguments.get('order_id')!r}, whose payment "
                "history is not a single payment: only the single original payment method can be replaced"
            )
        elif call.arguments.get("payment_method_id") == payments[0].get("payment_method_id"):
            problems.append(
                f"{where(call)} sets the payment method to {payments[0].get('payment_method_id')!r}, which already "
                "paid the order: the new payment method must be different from the original one"
            )
    return problems


transfer_ends_conversation = transfer_ends_conversation_rule()

RULES: list[PolicyRule] = [
    authenticate_before_user_data,
    one_user_per_conversation,
    cancel_pending_order_with_valid_reason,
    modify_only_pending_orders,
    return_or_exchange_only_delivered_orders,
    items_changed_once_per_order,
    item_lists_non_empty,
    new_item_same_product_available_other_option,
    payment_method_of_order_owner,
    gift_card_balance_covers_charge,
    refund_to_original_method_or_gift_card,
    payment_change_to_different_method,
    transfer_ends_conversation,
]

GENERATION_RULES: list[PolicyRule] = [
    STRICT_AUTHENTICATION if rule is authenticate_before_user_data else rule for rule in RULES
]
"""The rules for generated blueprints: the identity lookup must be among the actions."""
