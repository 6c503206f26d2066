"""The airline domain: tau2's tools and data, our policy rules and sampling hooks."""

from __future__ import annotations

from datetime import date
from typing import Any

from apigen_mt.domains.tau2bench.domain import Tau2Domain


class AirlineDomain(Tau2Domain):
    name = "airline"
    description = "tau2-bench airline: reservations, changes, cancellations and baggage"
    tau2_name = "airline"
    persona_set = "airline"
    today = date(2024, 5, 15)  # tau2's clock: the policy's "current time" (rules.py)
    free_text_arguments = {"transfer_to_human_agents": ("summary",)}

    def user_context(self, user_id: str) -> dict[str, Any]:
        """The user and their reservations (flights are searched by the agent)."""
        user = self.pristine.users[user_id]
        reservations = [
            self.pristine.reservations[r].model_dump(mode="json")
            for r in user.reservations
            if r in self.pristine.reservations
        ]
        return {"user": user.model_dump(mode="json"), "reservations": reservations}
