"""The retail domain: tau2's tools and data, our policy rules and sampling hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apigen_mt.domains.base import Environment
from apigen_mt.domains.tau2bench.domain import Tau2Domain


GROUNDING_EXCEPTIONS = {
    # tau2 gold tasks whose expected outputs no documented derivation reaches (checked by hand):
    "tau2-retail-19": "outputs[1] 41.64 is what the second option saves: the price differences of two "
                      "exchanges added up (four amounts; derivations take sums and differences of two)",
    "tau2-retail-33": "outputs[0] 1093.34 is the refund of three items, the sum of three prices",
    "tau2-retail-34": "outputs[0] 1093.34, as tau2-retail-33 (the same task in the train split)",
}
"""Gold tasks that execute cleanly and pass the policy but fail grounding, with why."""


class RetailDomain(Tau2Domain):
    name = "retail"
    description = "tau2-bench retail: customer service for an online store"
    tau2_name = "retail"
    persona_set = "retail"
    # The user's reason is one of two phrases the assistant picks from what the user means.
    free_text_arguments = {"cancel_pending_order": ("reason",), "transfer_to_human_agents": ("summary",)}
    # "Before taking any action that updates the database (cancel, modify, return, exchange), you
    # must list the action details and obtain explicit user confirmation (yes) to proceed."
    identification_tools = ("find_user_id_by_email", "find_user_id_by_name_zip")  # rules.LOOKUPS
    confirmed_writes = frozenset({
        "cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
        "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
        "return_delivered_order_items",
    })

    def derived_amounts(self, name: str, arguments: Mapping[str, Any], env: Environment) -> Mapping[float, str]:
        """What a write refunds or charges, as the policy states it: a return or a cancellation
        refunds the items' prices; an exchange or a modification charges (or refunds) the new
        items' prices less the old ones'."""
        try:
            order = env.record("orders", arguments["order_id"])
            prices = {item["item_id"]: item["price"] for item in order["items"]}
            if name == "cancel_pending_order":  # every item, an item listed twice twice
                old, new = [item["price"] for item in order["items"]], []
            else:
                old = [prices[item] for item in arguments["item_ids"]]
                new = [_variant_price(env, order, item) for item in arguments.get("new_item_ids") or []]
        except (KeyError, TypeError, AttributeError):
            return {}  # not such a write, or an invalid one: execution says so
        if name in ("return_delivered_order_items", "cancel_pending_order"):
            return {round(sum(old), 2): f"the refund: the items' prices ({' + '.join(map(str, old))})"}
        if name in ("exchange_delivered_order_items", "modify_pending_order_items"):
            difference = round(abs(sum(new) - sum(old)), 2)
            return {difference: f"the price difference of the new items ({sum(new):.2f}) and the old ({sum(old):.2f})"}
        return {}

    def user_context(self, user_id: str) -> dict[str, Any]:
        """The user and their orders (the products in them are looked up by the agent)."""
        user = self.pristine.users[user_id]
        orders = [self.pristine.orders[o].model_dump(mode="json") for o in user.orders if o in self.pristine.orders]
        return {"user": user.model_dump(mode="json"), "orders": orders}


def _variant_price(env: Environment, order: Mapping[str, Any], item_id: str) -> float:
    """The price of variant ``item_id`` of a product in ``order`` (an exchange stays in one product)."""
    for item in order["items"]:
        variants = (env.record("products", item["product_id"]) or {}).get("variants") or {}
        if item_id in variants:
            return variants[item_id]["price"]
    raise KeyError(item_id)
