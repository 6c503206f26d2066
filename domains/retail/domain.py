"""The retail domain: tau2's tools and data, our policy rules and sampling hooks."""

from __future__ import annotations

from typing import Any

from apigen_mt.domains.tau2bench.domain import Tau2Domain


class RetailDomain(Tau2Domain):
    name = "retail"
    description = "tau2-bench retail: customer service for an online store"
    tau2_name = "retail"
    persona_set = "retail"

    def user_context(self, user_id: str) -> dict[str, Any]:
        """The user and their orders (the products in them are looked up by the agent)."""
        user = self.pristine.users[user_id]
        orders = [self.pristine.orders[o].model_dump(mode="json") for o in user.orders if o in self.pristine.orders]
        return {"user": user.model_dump(mode="json"), "orders": orders}
