"""The airline policy rules: a compliant and a breaching trace per rule, and tau2's gold tasks.

Traces are built from real records of the pristine database and run with the execution
check's own executor. Where tau2's tool itself refuses the breach (a certificate paying for
bags), the breaching call is *forged*: recorded as successful on the state the setup actions
reached, as a tool that did not enforce the rule would leave it. The rule must catch it anyway.
"""

from __future__ import annotations

import pytest

from apigen_mt.domains.airline import rules as airline_rules
from apigen_mt.domains.airline.rules import FREE_BAGS, RULES
from apigen_mt.domains.retail import rules as retail_rules
from rule_harness import act, documented_exceptions, forged, gold_policy_failures, rule_tests, run

RULE = {rule.name: rule for rule in RULES}
FLOWN = ("landed", "flying")


# -- building traces ---------------------------------------------------------------------------
class Data:
    """Real records picked from the pristine airline database."""

    def __init__(self, domain):
        self.db = db = domain.pristine
        self.reservations = sorted(db.reservations.values(), key=lambda r: r.reservation_id)

    def status(self, number, date):
        day = self.db.flights[number].dates.get(date)
        return day.status if day else None

    def flown(self, r):
        return any(self.status(f.flight_number, f.date) in FLOWN for f in r.flights)

    def user(self, r):
        return self.db.users[r.user_id]

    def card(self, user):
        return next(m for m, v in user.payment_methods.items() if v.source == "credit_card")

    def has_card(self, r):
        return any(v.source == "credit_card" for v in self.user(r).payment_methods.values())

    def reservation(self, predicate):
        return next(r for r in self.reservations if r.status is None and self.has_card(r) and predicate(r))

    def lookup(self, r):
        return [act("get_user_details", user_id=r.user_id),
                act("get_reservation_details", reservation_id=r.reservation_id)]

    def flights(self, r):
        return [{"flight_number": f.flight_number, "date": f.date} for f in r.flights]

    def direct(self, origin, destination, cabin, seats, avoid=()):
        """An available direct flight (number, date) with ``seats`` free in ``cabin``."""
        for flight in sorted(self.db.flights.values(), key=lambda f: f.flight_number):
            if flight.origin != origin or (destination is not None and flight.destination != destination):
                continue
            for date, day in sorted(flight.dates.items()):
                if day.status == "available" and day.available_seats[cabin] >= seats and (
                        flight.flight_number, date) not in avoid:
                    return flight, date
        return None

    def alternative(self, r, destination=None):
        """Another direct flight for a one-way, one-segment reservation (to ``destination`` if given)."""
        current = r.flights[0]
        flight = self.db.flights[current.flight_number]
        target = destination(flight) if destination else flight.destination
        found = self.direct(flight.origin, target, r.cabin, len(r.passengers),
                            avoid={(current.flight_number, current.date)})
        return found and {"flight_number": found[0].flight_number, "date": found[1]}

    def upcoming(self, r):
        return all(self.status(f.flight_number, f.date) == "available" for f in r.flights)

    def single_leg(self, r):
        return r.flight_type == "one_way" and len(r.flights) == 1 and self.upcoming(r)


@pytest.fixture(scope="module")
def data(airline):
    return Data(airline)


def booking(d, user, flight, date, cabin, passengers=1, bags=0, nonfree=None, payments=None):
    """book_reservation arguments for a one-way direct flight, priced the way tau2 prices it."""
    free = FREE_BAGS[user.membership][cabin] * passengers
    nonfree = max(0, bags - free) if nonfree is None else nonfree
    price = flight.dates[date].prices[cabin] * passengers + 50 * nonfree
    people = [{"first_name": f"P{i}", "last_name": "Test", "dob": "1990-01-01"} for i in range(passengers)]
    return act("book_reservation", user_id=user.user_id, origin=flight.origin, destination=flight.destination,
               flight_type="one_way", cabin=cabin, flights=[{"flight_number": flight.flight_number, "date": date}],
               passengers=people, payment_methods=payments or [{"payment_id": d.card(user), "amount": price}],
               total_baggages=bags, nonfree_baggages=nonfree, insurance="no"), price


# -- one compliant and one breaching trace per rule ----------------------------------------------
def cancellable(d, r):
    return not d.flown(r) and r.cabin == "business"


def identity_pass(d, dom):
    r = d.reservation(lambda r: cancellable(d, r))
    return run(dom, d.lookup(r) + [act("cancel_reservation", reservation_id=r.reservation_id)])


def identity_fail(d, dom):
    r = d.reservation(lambda r: cancellable(d, r))
    other = d.reservation(lambda x: x.user_id != r.user_id)
    someone_else = run(dom, [act("get_user_details", user_id=other.user_id),
                             act("cancel_reservation", reservation_id=r.reservation_id)])
    lookup_after = run(dom, [act("cancel_reservation", reservation_id=r.reservation_id),
                             act("get_user_details", user_id=r.user_id)])
    return someone_else, lookup_after


def basic_economy_pass(d, dom):
    r = d.reservation(lambda r: r.cabin == "basic_economy" and not d.flown(r))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="economy", flights=d.flights(r), payment_id=d.card(d.user(r)))])


def basic_economy_fail(d, dom):
    r = d.reservation(lambda r: r.cabin == "basic_economy" and d.single_leg(r) and d.alternative(r))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="basic_economy", flights=[d.alternative(r)],
                                       payment_id=d.card(d.user(r)))])


def route_pass(d, dom):
    r = d.reservation(lambda r: r.cabin == "economy" and d.single_leg(r) and d.alternative(r))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="economy", flights=[d.alternative(r)], payment_id=d.card(d.user(r)))])


def route_fail(d, dom):
    def elsewhere(flight):  # any destination but the reservation's
        return next(f.destination for f in d.db.flights.values()
                    if f.origin == flight.origin and f.destination != flight.destination)

    r = d.reservation(lambda r: r.cabin == "economy" and d.single_leg(r) and d.alternative(r, elsewhere))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="economy", flights=[d.alternative(r, elsewhere)],
                                       payment_id=d.card(d.user(r)))])


def _booker(d):
    return d.user(d.reservation(lambda r: d.user(r).membership == "regular"))


def booking_route_pass(d, dom):
    user = _booker(d)
    flight, date = d.direct("JFK", None, "economy", 1)
    return run(dom, [act("get_user_details", user_id=user.user_id), booking(d, user, flight, date, "economy")[0]])


def booking_route_fail(d, dom):
    user = _booker(d)
    flight, date = d.direct("JFK", None, "economy", 1)
    action, _ = booking(d, user, flight, date, "economy")
    action["arguments"]["destination"] = "SEA" if flight.destination != "SEA" else "BOS"
    return run(dom, [act("get_user_details", user_id=user.user_id), action])


def flown_pass(d, dom):
    return identity_pass(d, dom)


def flown_fail(d, dom):
    r = d.reservation(lambda r: d.flown(r) and r.cabin == "business")
    return run(dom, d.lookup(r) + [act("cancel_reservation", reservation_id=r.reservation_id)])


def _multi_leg(d, r, cabin):
    return len(r.flights) > 1 and not d.flown(r) and all(
        d.db.flights[f.flight_number].dates[f.date].available_seats[cabin] >= len(r.passengers) for f in r.flights)


def cabin_pass(d, dom):
    r = d.reservation(lambda r: r.cabin == "economy" and _multi_leg(d, r, "business"))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="business", flights=d.flights(r), payment_id=d.card(d.user(r)))])


def cabin_fail(d, dom):
    r = d.reservation(lambda r: r.cabin == "economy" and _multi_leg(d, r, "business"))
    return run(dom, d.lookup(r) + [act("update_reservation_flights", reservation_id=r.reservation_id,
                                       cabin="business", flights=d.flights(r)[:1], payment_id=d.card(d.user(r)))])


def cancellation_pass(d, dom):
    insured = d.reservation(lambda r: r.insurance == "yes" and r.cabin != "business" and not d.flown(r))
    return identity_pass(d, dom), run(dom, d.lookup(insured) + [
        act("cancel_reservation", reservation_id=insured.reservation_id)])


def cancellation_fail(d, dom):
    r = d.reservation(lambda r: r.cabin == "basic_economy" and r.insurance == "no" and not d.flown(r)
                      and r.created_at < "2024-05-14T15:00:00"
                      and all(d.status(f.flight_number, f.date) != "cancelled" for f in r.flights))
    return run(dom, d.lookup(r) + [act("cancel_reservation", reservation_id=r.reservation_id)])


def cancelled_pass(d, dom):
    return identity_pass(d, dom)


def cancelled_fail(d, dom):
    r = d.reservation(lambda r: cancellable(d, r))
    return run(dom, d.lookup(r) + [act("cancel_reservation", reservation_id=r.reservation_id),
                                   act("cancel_reservation", reservation_id=r.reservation_id)])


def passengers_pass(d, dom):
    r = d.reservation(lambda r: len(r.passengers) == 2)
    people = [p.model_dump() for p in r.passengers]
    people[1]["first_name"] = "Renamed"
    return run(dom, d.lookup(r) + [act("update_reservation_passengers", reservation_id=r.reservation_id,
                                       passengers=people)])


def passengers_fail(d, dom):
    user = _booker(d)
    flight, date = d.direct("JFK", None, "economy", 6)
    six = run(dom, [act("get_user_details", user_id=user.user_id),
                    booking(d, user, flight, date, "economy", passengers=6)[0]])
    r = d.reservation(lambda r: len(r.passengers) == 2)
    fewer = forged(dom, d.lookup(r), "update_reservation_passengers",
                   {"reservation_id": r.reservation_id, "passengers": [r.passengers[0].model_dump()]})
    return six, fewer


def bags_pass(d, dom):
    r = d.reservation(lambda r: d.user(r).membership == "regular" and r.cabin == "economy" and not d.flown(r))
    free = FREE_BAGS["regular"]["economy"] * len(r.passengers)
    total = max(free, r.total_baggages) + 1
    user = _booker(d)
    flight, date = d.direct("JFK", None, "economy", 1)
    return (
        run(dom, d.lookup(r) + [act("update_reservation_baggages", reservation_id=r.reservation_id,
                                    total_baggages=total, nonfree_baggages=max(0, total - free),
                                    payment_id=d.card(d.user(r)))]),
        run(dom, [act("get_user_details", user_id=user.user_id),
                  booking(d, user, flight, date, "economy", bags=3)[0]]),
    )


def bags_fail(d, dom):
    r = d.db.reservations["HXDUBJ"]  # tau2-airline-33: gold member, economy, 1 passenger: 3 free bags
    overcharged = run(dom, d.lookup(r) + [act("update_reservation_baggages", reservation_id="HXDUBJ",
                                              total_baggages=2, nonfree_baggages=2,
                                              payment_id="gift_card_6941833")])
    user = _booker(d)  # a regular member gets one free bag in economy; three bags, none paid
    flight, date = d.direct("JFK", None, "economy", 1)
    undercharged = run(dom, [act("get_user_details", user_id=user.user_id),
                             booking(d, user, flight, date, "economy", bags=3, nonfree=0)[0]])
    return overcharged, undercharged


def add_bags_pass(d, dom):
    return bags_pass(d, dom)[0]


def add_bags_fail(d, dom):
    r = d.reservation(lambda r: r.total_baggages >= 2 and r.nonfree_baggages == 0 and not d.flown(r))
    return run(dom, d.lookup(r) + [act("update_reservation_baggages", reservation_id=r.reservation_id,
                                       total_baggages=r.total_baggages - 1, nonfree_baggages=0,
                                       payment_id=d.card(d.user(r)))])


def payments_pass(d, dom):
    return booking_route_pass(d, dom)


def payments_fail(d, dom):
    user = d.db.users["mia_li_3668"]  # holds two travel certificates (100 and 250)
    flight, date = next((f, date) for f in d.db.flights.values() for date, day in sorted(f.dates.items())
                        if day.status == "available" and day.available_seats["business"]
                        and day.prices["business"] > 350)
    price = flight.dates[date].prices["business"]
    payments = [{"payment_id": "certificate_4856383", "amount": 100},
                {"payment_id": "certificate_7504069", "amount": 250},
                {"payment_id": d.card(user), "amount": price - 350}]
    action, _ = booking(d, user, flight, date, "business", payments=payments)
    return run(dom, [act("get_user_details", user_id=user.user_id), action])


def change_payment_pass(d, dom):
    return add_bags_pass(d, dom)


def change_payment_fail(d, dom):
    r = d.reservation(lambda r: any(v.source == "certificate" for v in d.user(r).payment_methods.values())
                      and not d.flown(r))
    certificate = next(m for m, v in d.user(r).payment_methods.items() if v.source == "certificate")
    return forged(dom, d.lookup(r), "update_reservation_baggages",
                  {"reservation_id": r.reservation_id, "total_baggages": r.total_baggages + 5,
                   "nonfree_baggages": r.nonfree_baggages + 5, "payment_id": certificate})


def compensation_pass(d, dom):
    # tau2-airline-27: silver member, delayed HAT039 in M61CQM with 3 passengers: 3 x $50
    return run(dom, [act("get_user_details", user_id="ethan_martin_2396"),
                     act("send_certificate", user_id="ethan_martin_2396", amount=150)])


def compensation_fail(d, dom):
    wrong_amount = run(dom, [act("get_user_details", user_id="ethan_martin_2396"),
                             act("send_certificate", user_id="ethan_martin_2396", amount=400)])

    def uncovered(r):
        return (d.user(r).membership == "regular" and r.insurance == "no" and r.cabin != "business"
                and any(d.status(f.flight_number, f.date) == "cancelled" for f in r.flights))

    r = d.reservation(uncovered)
    not_eligible = run(dom, d.lookup(r) + [act("send_certificate", user_id=r.user_id, amount=100 * len(r.passengers))])
    return wrong_amount, not_eligible


def transfer_pass(d, dom):
    r = d.reservation(lambda r: d.flown(r))
    return run(dom, d.lookup(r) + [act("transfer_to_human_agents", summary="Cancel a partly flown trip.")])


def transfer_fail(d, dom):
    r = d.reservation(lambda r: cancellable(d, r))
    return run(dom, d.lookup(r) + [act("transfer_to_human_agents", summary="The user asks for a human."),
                                   act("cancel_reservation", reservation_id=r.reservation_id)])


CASES = {
    "changes_only_for_the_identified_user": (identity_pass, identity_fail),
    "basic_economy_flights_not_changed": (basic_economy_pass, basic_economy_fail),
    "flight_change_keeps_origin_destination_trip_type": (route_pass, route_fail),
    "booking_flights_match_trip": (booking_route_pass, booking_route_fail),
    "no_changes_to_flown_flights": (flown_pass, flown_fail),
    "cabin_change_covers_whole_reservation": (cabin_pass, cabin_fail),
    "cancellation_allowed": (cancellation_pass, cancellation_fail),
    "no_changes_to_cancelled_reservations": (cancelled_pass, cancelled_fail),
    "passenger_count": (passengers_pass, passengers_fail),
    "checked_bag_allowance": (bags_pass, bags_fail),
    "bags_only_added": (add_bags_pass, add_bags_fail),
    "booking_payment_methods": (payments_pass, payments_fail),
    "change_paid_by_gift_card_or_credit_card": (change_payment_pass, change_payment_fail),
    "compensation_eligible": (compensation_pass, compensation_fail),
    "transfer_ends_conversation": (transfer_pass, transfer_fail),
}


test_every_rule_has_cases, test_rule_passes_compliant_trace, test_rule_flags_breaching_trace = rule_tests(
    CASES, RULES, "airline"
)



def test_breach_message_explains_policy(data, airline):
    overcharged, _ = bags_fail(data, airline)
    [message] = RULE["checked_bag_allowance"].check(overcharged)
    assert message.startswith("actions[2] update_reservation_baggages") and "gold member" in message
    assert "3 free bag(s)" in message


# -- tau2's gold tasks -----------------------------------------------------------------------------
EXPECTED_RULES = {  # which rule each known exception breaks
    "tau2-airline-7": "cancellation_allowed",
    "tau2-airline-9": "no_changes_to_flown_flights",
    "tau2-airline-29": "flight_change_keeps_origin_destination_trip_type",
    "tau2-airline-33": "checked_bag_allowance",
    "tau2-airline-37": "no_changes_to_flown_flights",
}


def test_gold_tasks_pass_policy(airline, retail):
    clean, failures = gold_policy_failures(airline)
    assert (clean, clean - len(failures)) == (50, 45)
    assert set(failures) == documented_exceptions(airline_rules) == set(EXPECTED_RULES), failures
    for task, reasons in failures.items():
        assert [r.split("]")[0].lstrip("[") for r in reasons] == [EXPECTED_RULES[task]], reasons
    # the acceptance bar, over all cleanly executing retail and airline gold tasks together
    retail_clean, retail_failures = gold_policy_failures(retail)
    assert set(retail_failures) == documented_exceptions(retail_rules)
    passed = clean - len(failures) + retail_clean - len(retail_failures)
    assert passed / (clean + retail_clean) >= 0.95
