"""The airline domain: tau2's tools and data, our policy rules and sampling hooks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from apigen_mt.domains.base import Environment
from apigen_mt.domains.tau2bench.domain import Tau2Domain

GROUNDING_EXCEPTIONS = {
    # tau2 gold tasks that execute cleanly and pass the policy but fail grounding (checked by hand):
    "tau2-airline-35": "book_reservation's passenger dob 1985-04-04 appears nowhere: the user does not say "
                       "it and the database has Aarav Ahmed born 1981-05-26 (a flaw of the gold task)",
}
"""Gold tasks that execute cleanly and pass the policy but fail grounding, with why."""


class AirlineDomain(Tau2Domain):
    name = "airline"
    description = "tau2-bench airline: reservations, changes, cancellations and baggage"
    tau2_name = "airline"
    persona_set = "airline"
    today = date(2024, 5, 15)  # tau2's clock: the policy's "current time" (rules.py)
    free_text_arguments = {"transfer_to_human_agents": ("summary",)}
    # "Before taking any actions that update the booking database (booking, modifying flights,
    # editing baggage, changing cabin class, or updating passenger information), you must ...
    # obtain explicit user confirmation (yes)"; a certificate is offered, not asked for.
    confirmed_writes = frozenset({
        "book_reservation", "cancel_reservation", "update_reservation_baggages", "update_reservation_flights",
        "update_reservation_passengers",
    })

    def derived_amounts(self, name: str, arguments: Mapping[str, Any], env: Environment) -> Mapping[float, str]:
        """What a write charges or refunds, as the policy states it: a booking costs each
        flight's fare in the cabin (what the searches show) times the passengers, $30 per
        passenger for insurance and $50 per non-free bag; a change of flights or cabin costs
        (or refunds) the new fares less the old, times the passengers; a cancellation refunds
        what was paid; a certificate of compensation is $100 per passenger for a cancelled
        flight or $50 for a delayed one."""
        try:
            if name == "book_reservation":
                passengers = len(arguments.get("passengers") or [])
                fares = _fares(env, arguments["flights"], arguments["cabin"])
                total = sum(fares) * passengers + 50 * int(arguments.get("nonfree_baggages") or 0)
                total += 30 * passengers if arguments.get("insurance") == "yes" else 0
                return {round(float(total), 2): f"the booking's price ({' + '.join(map(str, fares))}) "
                                               f"x {passengers} passengers and fees"}
            if name == "update_reservation_flights":
                reservation = env.record("reservations", arguments["reservation_id"])
                passengers = len(reservation["passengers"])
                old = sum(flight["price"] for flight in reservation["flights"])
                kept = {(f["flight_number"], f["date"]): f["price"] for f in reservation["flights"]
                        if arguments["cabin"] == reservation["cabin"]}  # an unchanged leg keeps its price (as tau2)
                new = sum(kept.get((f["flight_number"], f["date"])) or _fares(env, [f], arguments["cabin"])[0]
                          for f in arguments["flights"])
                difference = round(float(abs(new - old) * passengers), 2)
                return {difference: f"the fare difference ({new} - {old}) x {passengers} passengers"}
            if name == "cancel_reservation":
                reservation = env.record("reservations", arguments["reservation_id"])
                paid = sum(payment["amount"] for payment in reservation["payment_history"])
                return {round(float(paid), 2): "the refund: what the reservation's payments total"}
            if name == "send_certificate":  # the amount is one of the policy's, or nothing derives it
                amount = float(arguments["amount"])
                for per in (100, 50):
                    if amount % per == 0 and 1 <= amount // per <= 9:
                        return {amount: f"${per} x {int(amount // per)} passengers of compensation"}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            pass  # not a valid call: execution says so
        return {}

    def user_context(self, user_id: str) -> dict[str, Any]:
        """The user and their reservations (flights are searched by the agent)."""
        user = self.pristine.users[user_id]
        reservations = [
            self.pristine.reservations[r].model_dump(mode="json")
            for r in user.reservations
            if r in self.pristine.reservations
        ]
        return {"user": user.model_dump(mode="json"), "reservations": reservations}


def _fares(env: Environment, flights: list[Mapping[str, Any]], cabin: str) -> list[float]:
    """Each flight's fare in ``cabin`` on its date."""
    return [env.record("flights", f["flight_number"])["dates"][f["date"]]["prices"][cabin] for f in flights]
