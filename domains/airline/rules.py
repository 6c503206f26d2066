"""The tau2 airline policy as executable rules over an execution trace.

Each rule reads the successful calls of a trace (failed calls changed nothing; the execution
check reports them) and the snapshot taken just before each call, and returns one message per
breach: which action, what happened, what the policy requires. The airline tools enforce
little (the policy says so: "The API does not check these for the agent"), so most rules here
catch what the execution check cannot: basic-economy flight changes, itineraries that change
origin, destination or trip type, cancellations without a reason the policy accepts, flown
flights, cancelled reservations, baggage charged against the allowance, payment limits,
compensation. A few restate what the tools enforce (passenger count, payment methods in the
profile, no certificate for changes) so the feedback names the policy.

"Now" is tau2's fixed clock, 2024-05-15 15:00 EST (the policy's "current time" and the tools'
``_get_datetime``). A flight segment counts as flown when its status on its date is 'landed'
or 'flying'.

Not encoded, because a trace cannot show it: the explicit "yes" before each write; that the
user (rather than a tool) provided the user id and reservation id; the cancellation reason
(so a reservation with travel insurance is always taken as cancellable: the insurance covers
"health or weather reasons", which only the conversation tells); whether the user asked for
compensation, complained first, or the facts were confirmed; whether the bags or insurance
were wanted; whether a transfer to a human was needed. Structural rules the data model already
guarantees are not restated: one cabin for all flights and passengers of a reservation, no
tool to add insurance after booking. The compensation rule also does not require the
reservation to be changed or cancelled before a delay certificate ("after confirming the facts
and changing or cancelling the reservation"): tau2's gold tasks tau2-airline-2, -27 and -38 give
the delay certificate without any change, so the benchmark does not read it as a condition.

Identity: the policy requires the agent to *obtain* the user id from the user, which is
conversation, not a tool call (tau2's gold often changes a reservation with no lookup at all).
``changes_only_for_the_identified_user`` therefore checks what a trace can show: all changes
concern one user, the one whose profile was looked up when there was a lookup, and the lookup
comes before the changes for that user.

Known gold exceptions: tau2 gold tasks that execute cleanly but break the written policy. Each
was checked by hand against the policy text and the data; the rule is kept, since these are
exactly the checks the policy says the API leaves to the agent. 45 of the 50 airline gold tasks
pass (90%; retail and airline together: 141 of 146, 96.6%).

- ``tau2-airline-7``: cancels XEHM4B (daiki_muller_1116) after upgrading it from basic economy to
  economy. The reservation was booked 2024-05-01 (not within 24 hours), has no travel insurance,
  no flight cancelled by the airline and is not business, so no cancellation condition holds
  (``cancellation_allowed``); an upgrade to economy does not make a reservation cancellable.
- ``tau2-airline-9``: cancels NQNU5R (aarav_ahmed_6699, business), whose two flights HAT214
  (2024-05-13) and HAT045 (2024-05-14) have both landed: "If any portion of the flight has
  already been flown, the agent cannot help and transfer is needed" (``no_changes_to_flown_flights``).
- ``tau2-airline-29``: changes round trip VA5SGQ, DTW -> LGA and back, to DTW -> JFK and back: the
  destination changes (``flight_change_keeps_origin_destination_trip_type``; tau2's own airport
  list gives LGA the city "LaGuardia", not New York). tau2-airline-13, by contrast, transfers
  to a human because "Origin and destination of a reservation cannot be modified".
- ``tau2-airline-33``: ``update_reservation_baggages`` on HXDUBJ sets 2 checked bags, both
  non-free. The user (yara_garcia_1905) is a gold member and the reservation is economy with one
  passenger, so the allowance is 3 free bags: the 2 bags should be free, and the gold charges
  $100 for them (``checked_bag_allowance``).
- ``tau2-airline-37``: cancels NQNU5R like tau2-airline-9, with both flights already flown
  (``no_changes_to_flown_flights``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apigen_mt.domains.base import Environment, PolicyRule
from apigen_mt.domains.tau2bench.trace_helpers import policy_rule, transfer_ends_conversation_rule
from apigen_mt.tools.checks.trace_queries import before, initial_state, ok_calls, record_before, where

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace

NOW = datetime(2024, 5, 15, 15, 0, 0)
FLOWN = ("landed", "flying")
RESERVATION_WRITES = (
    "cancel_reservation",
    "update_reservation_flights",
    "update_reservation_baggages",
    "update_reservation_passengers",
)
USER_WRITES = ("book_reservation", "send_certificate")
WRITES = RESERVATION_WRITES + USER_WRITES
FREE_BAGS = {  # per passenger, by the booking user's membership and the cabin
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 4},
}
MAX_PASSENGERS = 5
PAYMENT_LIMITS = {"certificate": 1, "credit_card": 1, "gift_card": 3}


# -- reading airline calls -----------------------------------------------------------------------
def reservation_before(call: "ExecutedCall") -> dict[str, Any] | None:
    return record_before(call, "reservations", call.arguments.get("reservation_id"))


def user_of(call: "ExecutedCall") -> str | None:
    """The user a successful write (or lookup) is about: named, or owning the reservation."""
    if "reservation_id" in call.arguments:
        reservation = reservation_before(call)
        return reservation.get("user_id") if reservation else None
    user_id = call.arguments.get("user_id")
    return user_id if isinstance(user_id, str) else None


def segments(flights: Any) -> list[tuple[str, str]]:
    """(flight number, date) of each flight of a call's ``flights`` argument or a reservation."""
    return [
        (str(flight.get("flight_number")), str(flight.get("date")))
        for flight in flights or []
        if isinstance(flight, dict)
    ]


def flight_status(env: Environment, flight_number: str, date: str) -> str | None:
    flight = env.record("flights", flight_number)
    day = flight.get("dates", {}).get(date) if flight else None
    return day.get("status") if isinstance(day, dict) else None


def flown_segments(env: Environment, reservation: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [s for s in segments(reservation.get("flights")) if flight_status(env, *s) in FLOWN]


def membership(env: Environment, user_id: Any) -> str | None:
    user = env.record("users", user_id) if isinstance(user_id, str) else None
    return user.get("membership") if user else None


def free_bags(level: str | None, cabin: Any, passengers: int) -> int | None:
    per_passenger = FREE_BAGS.get(level or "", {}).get(cabin)
    return None if per_passenger is None else per_passenger * passengers


def itinerary_problem(env: Environment, flights: Any, origin: Any, destination: Any, trip: Any) -> str | None:
    """Why a list of flights does not fly ``origin`` -> ``destination`` (and back for a round trip)."""
    legs = []
    for number, _date in segments(flights):
        flight = env.record("flights", number)
        if flight is None:
            return None  # unknown flight: the tools refuse it
        legs.append((number, flight["origin"], flight["destination"]))
    if not legs:
        return "it has no flight"
    for (n1, _o1, d1), (n2, o2, _d2) in zip(legs, legs[1:]):
        if d1 != o2:
            return f"flight {n1} arrives at {d1} but the next flight {n2} leaves from {o2}"
    dates = [d for _n, d in segments(flights)]
    if any(a > b for a, b in zip(dates, dates[1:])):
        return "its flights are not in date order"
    start, end = legs[0][1], legs[-1][2]
    path = " -> ".join([start] + [leg[2] for leg in legs])
    if start != origin:
        return f"it starts at {start}, not at the origin {origin} ({path})"
    if trip == "one_way" and end != destination:
        return f"it ends at {end}, not at the destination {destination} ({path})"
    if trip == "round_trip":
        if end != origin:
            return f"a round trip must come back to {origin}, but it ends at {end} ({path})"
        if not any(leg[2] == destination for leg in legs):
            return f"a round trip must reach {destination}, but it does not ({path})"
    return None


def payment_source(env: Environment, user_id: Any, payment_id: Any) -> str | None:
    user = env.record("users", user_id) if isinstance(user_id, str) else None
    method = (user or {}).get("payment_methods", {}).get(payment_id) if isinstance(payment_id, str) else None
    return method.get("source") if method else None


# -- rules -----------------------------------------------------------------------------------------
@policy_rule(
    "changes_only_for_the_identified_user",
    ("get_user_details",) + WRITES,
    """Policy: "The agent must first obtain the user id from the user" (booking) and "First, the agent
    must obtain the user id and reservation id. The user must provide their user id" (modify,
    cancel). Obtaining the id is conversation, which a trace cannot show, so the rule checks what it
    can: every change (a booking or certificate for a user id, a change to a reservation, through
    its owner) concerns one user; when the trace looks a user up with get_user_details, changes
    concern that user, and the lookup comes before any change for them.""",
)
def changes_only_for_the_identified_user(trace: "ExecutionTrace") -> list[str]:
    problems = []
    lookup = next(ok_calls(trace, "get_user_details"), None)
    identified = lookup.arguments.get("user_id") if lookup else None
    first: tuple[str, "ExecutedCall"] | None = (identified, lookup) if lookup else None
    for call in ok_calls(trace, *WRITES):
        user = user_of(call)
        if user is None:
            continue
        if first is None:
            first = (user, call)
        if user != first[0]:
            since = f"actions[{first[1].index}] {first[1].name}"
            problems.append(
                f"{where(call)} changes data of user {user!r}, but the conversation is with user {first[0]!r} "
                f"({since}): changes may only be made for the user who provided their user id"
            )
        elif lookup is not None and call.index < lookup.index:
            problems.append(
                f"{where(call)} changes data of user {user!r} before their user id was obtained and looked up "
                f"(actions[{lookup.index}] get_user_details): the agent must first obtain the user id"
            )
    return problems


@policy_rule(
    "basic_economy_flights_not_changed",
    ("update_reservation_flights",),
    """Policy (change flights): "Basic economy flights cannot be modified." A basic-economy reservation
    may change its cabin ("all reservations, including basic economy, can change cabin without
    changing the flights") but update_reservation_flights must then keep exactly the same flights
    (flight numbers and dates).""",
)
def basic_economy_flights_not_changed(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "update_reservation_flights"):
        reservation = reservation_before(call)
        if not reservation or reservation.get("cabin") != "basic_economy":
            continue
        old, new = segments(reservation.get("flights")), segments(call.arguments.get("flights"))
        if sorted(old) != sorted(new):
            problems.append(
                f"{where(call)} changes the flights of basic-economy reservation {reservation['reservation_id']!r} "
                f"from {old} to {new}: basic economy flights cannot be modified (only the cabin can change, "
                "keeping the same flights)"
            )
    return problems


@policy_rule(
    "flight_change_keeps_origin_destination_trip_type",
    ("update_reservation_flights",),
    """Policy (change flights): "Other reservations can be modified without changing the origin,
    destination, and trip type." When update_reservation_flights changes the flights, the new flights
    must connect (each leaves from where the previous one landed, in date order) from the
    reservation's origin to its destination, and back to the origin for a round trip.""",
)
def flight_change_keeps_origin_destination_trip_type(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "update_reservation_flights"):
        reservation = reservation_before(call)
        if not reservation:
            continue
        new = call.arguments.get("flights")
        if sorted(segments(reservation.get("flights"))) == sorted(segments(new)):
            continue  # a pure cabin change
        problem = itinerary_problem(
            before(call), new, reservation.get("origin"), reservation.get("destination"), reservation.get("flight_type")
        )
        if problem:
            problems.append(
                f"{where(call)} gives reservation {reservation['reservation_id']!r} "
                f"({reservation.get('flight_type')} {reservation.get('origin')} -> {reservation.get('destination')}) "
                f"new flights where {problem}: a flight change cannot change the origin, destination or trip type"
            )
    return problems


@policy_rule(
    "booking_flights_match_trip",
    ("book_reservation",),
    """Policy (book flight): the agent asks for "the trip type, origin, destination", and "All passengers
    must fly the same flights". The booked flights must connect, in date order, from the origin to the
    destination (and back to the origin for a round trip); the booking tool does not check it.""",
)
def booking_flights_match_trip(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "book_reservation"):
        args = call.arguments
        problem = itinerary_problem(
            before(call), args.get("flights"), args.get("origin"), args.get("destination"), args.get("flight_type")
        )
        if problem:
            problems.append(
                f"{where(call)} books a {args.get('flight_type')} trip {args.get('origin')} -> "
                f"{args.get('destination')} whose flights do not match it: {problem}"
            )
    return problems


@policy_rule(
    "no_changes_to_flown_flights",
    ("cancel_reservation", "update_reservation_flights"),
    """Policy: "If any portion of the flight has already been flown, the agent cannot help and transfer is
    needed" (cancel), and "Cabin cannot be changed if any flight in the reservation has already been
    flown" (change cabin). A segment is flown when its status is 'landed' or 'flying'. A flight change
    must also keep every flown segment (a flown flight cannot be replaced or dropped).""",
)
def no_changes_to_flown_flights(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "cancel_reservation", "update_reservation_flights"):
        reservation = reservation_before(call)
        if not reservation:
            continue
        flown = flown_segments(before(call), reservation)
        if not flown:
            continue
        rid = reservation["reservation_id"]
        if call.name == "cancel_reservation":
            problems.append(
                f"{where(call)} cancels reservation {rid!r} although {flown} already flew: when any portion has "
                "been flown the agent cannot cancel and must transfer to a human agent"
            )
            continue
        if call.arguments.get("cabin") != reservation.get("cabin"):
            problems.append(
                f"{where(call)} changes the cabin of reservation {rid!r} from {reservation.get('cabin')!r} to "
                f"{call.arguments.get('cabin')!r} although {flown} already flew: cabin cannot be changed then"
            )
        kept = set(segments(call.arguments.get("flights")))
        dropped = [s for s in flown if s not in kept]
        if dropped:
            problems.append(
                f"{where(call)} removes the already flown segment(s) {dropped} from reservation {rid!r}: flown "
                "flights cannot be changed"
            )
    return problems


@policy_rule(
    "cabin_change_covers_whole_reservation",
    ("update_reservation_flights",),
    """Policy (change cabin): "Cabin class must remain the same across all the flights in the same
    reservation; changing cabin for just one flight segment is not possible." A cabin change that
    simply drops some of the reservation's segments (keeping the others, adding none) is an attempt
    to change the cabin of part of the trip.""",
)
def cabin_change_covers_whole_reservation(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "update_reservation_flights"):
        reservation = reservation_before(call)
        if not reservation or call.arguments.get("cabin") == reservation.get("cabin"):
            continue
        old = set(segments(reservation.get("flights")))
        new = set(segments(call.arguments.get("flights")))
        if new < old:
            problems.append(
                f"{where(call)} changes the cabin of reservation {reservation['reservation_id']!r} to "
                f"{call.arguments.get('cabin')!r} for only some of its segments (drops {sorted(old - new)}): the "
                "cabin must change for all flights of the reservation"
            )
    return problems


@policy_rule(
    "cancellation_allowed",
    ("cancel_reservation",),
    """Policy (cancel flight): a reservation can be cancelled if "The booking was made within the last 24
    hrs", "The flight is cancelled by airline", "It is a business flight", or "The user has travel
    insurance and the reason for cancellation is covered by insurance"; "The API does not check that
    cancellation rules are met". Checked on the reservation just before the call, with now =
    2024-05-15 15:00 EST; an airline-cancelled flight is a segment with status 'cancelled'. The
    cancellation reason is not in the trace, so a reservation with insurance is not judged.""",
)
def cancellation_allowed(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "cancel_reservation"):
        reservation = reservation_before(call)
        if not reservation:
            continue
        try:
            created = datetime.fromisoformat(str(reservation.get("created_at")))
        except ValueError:
            created = None
        recent = created is not None and NOW - created <= timedelta(hours=24)
        airline_cancelled = any(
            flight_status(before(call), *s) == "cancelled" for s in segments(reservation.get("flights"))
        )
        business, insured = reservation.get("cabin") == "business", reservation.get("insurance") == "yes"
        if recent or airline_cancelled or business or insured:
            continue
        problems.append(
            f"{where(call)} cancels reservation {reservation['reservation_id']!r} (booked "
            f"{reservation.get('created_at')}, cabin {reservation.get('cabin')!r}, no travel insurance, no flight "
            "cancelled by the airline): a cancellation needs a booking within the last 24 hours, an airline-"
            "cancelled flight, a business reservation, or insurance covering the reason"
        )
    return problems


@policy_rule(
    "no_changes_to_cancelled_reservations",
    RESERVATION_WRITES,
    """A cancelled reservation is over: the agent can only book, modify or cancel live reservations
    (the tools do not check the status, and cancelling twice refunds twice).""",
)
def no_changes_to_cancelled_reservations(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, *RESERVATION_WRITES):
        reservation = reservation_before(call)
        if reservation and reservation.get("status") == "cancelled":
            problems.append(
                f"{where(call)} acts on reservation {reservation['reservation_id']!r}, which is already cancelled"
            )
    return problems


@policy_rule(
    "passenger_count",
    ("book_reservation", "update_reservation_passengers"),
    """Policy: "Each reservation can have at most five passengers" (book), and "The user can modify
    passengers but cannot modify the number of passengers" (change passengers).""",
)
def passenger_count(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "book_reservation", "update_reservation_passengers"):
        passengers = call.arguments.get("passengers") or []
        if call.name == "book_reservation":
            if len(passengers) > MAX_PASSENGERS:
                problems.append(
                    f"{where(call)} books {len(passengers)} passengers: a reservation can have at most "
                    f"{MAX_PASSENGERS}"
                )
            continue
        reservation = reservation_before(call)
        if reservation and len(passengers) != len(reservation.get("passengers") or []):
            problems.append(
                f"{where(call)} changes the number of passengers of {reservation['reservation_id']!r} from "
                f"{len(reservation.get('passengers') or [])} to {len(passengers)}: the number cannot change"
            )
    return problems


@policy_rule(
    "checked_bag_allowance",
    ("book_reservation", "update_reservation_baggages"),
    """Policy (checked bag allowance, by the booking user's membership): regular 0/1/2, silver 1/2/3,
    gold 2/3/4 free checked bags per passenger in basic economy/economy/business; "Each extra baggage
    is 50 dollars." At booking, nonfree_baggages must be total_baggages minus the free allowance (never
    below 0). When bags are added, the new bags are non-free only beyond the allowance: nonfree_baggages
    may not be below that, nor above both that and the bags already paid for.""",
)
def checked_bag_allowance(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "book_reservation", "update_reservation_baggages"):
        args = call.arguments
        if call.name == "book_reservation":
            owner, cabin, paid, target = args.get("user_id"), args.get("cabin"), 0, "booking"
            passengers = len(args.get("passengers") or [])
        else:
            reservation = reservation_before(call)
            if not reservation:
                continue
            owner, cabin = reservation.get("user_id"), reservation.get("cabin")
            passengers, paid = len(reservation.get("passengers") or []), reservation.get("nonfree_baggages") or 0
            target = f"reservation {reservation['reservation_id']!r}"
        level = membership(before(call), owner)
        free = free_bags(level, cabin, passengers)
        total, nonfree = args.get("total_baggages"), args.get("nonfree_baggages")
        if free is None or not isinstance(total, int) or not isinstance(nonfree, int):
            continue
        expected = max(0, total - free)
        basis = f"{level} member, {passengers} passenger(s) in {cabin}: {free} free bag(s)"
        if nonfree > total or nonfree < 0:
            problems.append(f"{where(call)} sets {nonfree} non-free of {total} bags for {target}: impossible counts")
        elif nonfree < expected:
            problems.append(
                f"{where(call)} sets {total} bags with only {nonfree} non-free for {target} ({basis}): {expected} "
                "of them are beyond the free allowance and cost 50 dollars each"
            )
        elif nonfree > max(expected, paid):
            problems.append(
                f"{where(call)} charges {nonfree} of {total} bags as non-free for {target} ({basis}): only "
                f"{expected} are beyond the free allowance"
            )
    return problems


@policy_rule(
    "bags_only_added",
    ("update_reservation_baggages",),
    """Policy (change baggage): "The user can add but not remove checked bags." total_baggages may not go
    below the reservation's current number of bags.""",
)
def bags_only_added(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "update_reservation_baggages"):
        reservation = reservation_before(call)
        total = call.arguments.get("total_baggages")
        if reservation and isinstance(total, int) and total < (reservation.get("total_baggages") or 0):
            problems.append(
                f"{where(call)} lowers the checked bags of {reservation['reservation_id']!r} from "
                f"{reservation.get('total_baggages')} to {total}: bags can be added but not removed"
            )
    return problems


@policy_rule(
    "booking_payment_methods",
    ("book_reservation",),
    """Policy (book, payment): "Each reservation can use at most one travel certificate, at most one credit
    card, and at most three gift cards" and "All payment methods must already be in user profile for
    safety reasons." Each payment method is used once.""",
)
def booking_payment_methods(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "book_reservation"):
        user_id = call.arguments.get("user_id")
        ids = [p.get("payment_id") for p in call.arguments.get("payment_methods") or [] if isinstance(p, dict)]
        sources = Counter()
        for payment_id in ids:
            source = payment_source(before(call), user_id, payment_id)
            if source is None:
                problems.append(f"{where(call)} pays with {payment_id!r}, which is not in the profile of {user_id!r}")
            else:
                sources[source] += 1
        for source, limit in PAYMENT_LIMITS.items():
            if sources[source] > limit:
                problems.append(
                    f"{where(call)} uses {sources[source]} {source.replace('_', ' ')}s: a reservation can use at "
                    "most one travel certificate, one credit card and three gift cards"
                )
        repeated = sorted(p for p, n in Counter(map(str, ids)).items() if n > 1)
        if repeated:
            problems.append(f"{where(call)} lists the payment method(s) {repeated} more than once")
    return problems


@policy_rule(
    "change_paid_by_gift_card_or_credit_card",
    ("update_reservation_flights", "update_reservation_baggages"),
    """Policy (modify, payment): "If the flights are changed, the user needs to provide a single gift card
    or credit card for payment or refund method. The payment method must already be in user profile for
    safety reasons." The same holds for paying added bags (the tools refuse certificates for both).""",
)
def change_paid_by_gift_card_or_credit_card(trace: "ExecutionTrace") -> list[str]:
    problems = []
    for call in ok_calls(trace, "update_reservation_flights", "update_reservation_baggages"):
        reservation = reservation_before(call)
        if not reservation:
            continue
        payment_id = call.arguments.get("payment_id")
        source = payment_source(before(call), reservation.get("user_id"), payment_id)
        if source not in ("gift_card", "credit_card"):
            what = "is not in the user's profile" if source is None else f"is a {source.replace('_', ' ')}"
            problems.append(
                f"{where(call)} pays with {payment_id!r}, which {what}: changes are paid or refunded with a gift "
                "card or credit card from the user's profile"
            )
    return problems


# Whether a delayed reservation was changed or cancelled first is not judged because tau2's gold tasks
# tau2-airline-2, -27 and -38 give the delay certificate without any change (see the module docstring).
@policy_rule(
    "compensation_eligible",
    ("send_certificate",),
    """Policy (compensation): "Only compensate if the user is a silver/gold member or has travel insurance
    or flies business"; for "cancelled flights in a reservation ... a certificate ... $100 times the
    number of passengers"; for "delayed flights in a reservation ... $50 times the number of
    passengers"; "Do not offer compensation for any other reason". A certificate must match one of the
    user's reservations (as at the start of the trace): a flight of it with status 'cancelled' and
    amount 100 x passengers, or 'delayed' and 50 x passengers, with the user silver/gold or the
    reservation insured or in business. Not judged: whether the user asked for it, and whether a
    delayed reservation was changed or cancelled first.""",
)
def compensation_eligible(trace: "ExecutionTrace") -> list[str]:
    problems = []
    start = initial_state(trace)
    for call in ok_calls(trace, "send_certificate"):
        user_id, amount = call.arguments.get("user_id"), call.arguments.get("amount")
        user = start.record("users", user_id) if isinstance(user_id, str) else None
        if not user:
            continue
        elite = user.get("membership") in ("silver", "gold")
        matching, eligible = [], []
        for rid in user.get("reservations") or []:
            reservation = start.record("reservations", rid)
            if not reservation:
                continue
            statuses = {flight_status(start, *s) for s in segments(reservation.get("flights"))}
            n = len(reservation.get("passengers") or [])
            if ("cancelled" in statuses and amount == 100 * n) or ("delayed" in statuses and amount == 50 * n):
                matching.append(rid)
                if elite or reservation.get("insurance") == "yes" or reservation.get("cabin") == "business":
                    eligible.append(rid)
        if eligible:
            continue
        if matching:
            problems.append(
                f"{where(call)} sends a {amount} certificate to {user_id!r}, a {user.get('membership')} member whose "
                f"reservation(s) {matching} with a cancelled/delayed flight have no insurance and are not business: "
                "compensate only silver/gold members, insured or business travellers"
            )
        else:
            problems.append(
                f"{where(call)} sends a {amount} certificate to {user_id!r}, but no reservation of the user has a "
                "cancelled flight with 100 x passengers or a delayed flight with 50 x passengers equal to that "
                "amount: compensation is only for cancelled ($100 per passenger) or delayed ($50 per passenger) "
                "flights"
            )
    return problems


transfer_ends_conversation = transfer_ends_conversation_rule()

RULES: list[PolicyRule] = [
    changes_only_for_the_identified_user,
    basic_economy_flights_not_changed,
    flight_change_keeps_origin_destination_trip_type,
    booking_flights_match_trip,
    no_changes_to_flown_flights,
    cabin_change_covers_whole_reservation,
    cancellation_allowed,
    no_changes_to_cancelled_reservations,
    passenger_count,
    checked_bag_allowance,
    bags_only_added,
    booking_payment_methods,
    change_paid_by_gift_card_or_credit_card,
    compensation_eligible,
    transfer_ends_conversation,
]
