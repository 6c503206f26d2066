"""What a BFCL user may ask of a tool in values no state or output holds (``Domain.stated_arguments``).

Some BFCL classes cannot be driven by looked-up values alone: the ticket system wants a
username and a password (any pair logs in), a flight wants a route, a date and a class, and
MathAPI has no state at all, only the numbers a user gives it. Grounded walks draw one of
these requests per call for the arguments nothing looked up fills, and the instruction must
then say them (the grounding check traces them to its words).

The values are written from the classes themselves: routes and currencies from the tables in
``TravelAPI.get_flight_cost`` and ``compute_exchange_rate``, units from MathAPI's conversion
tables, passports that ``verify_traveler_information`` accepts. None is taken from BFCL's
test entries (their questions and states stay out of generated data: :mod:`.contamination`).
None names an entity the state must hold (a file to write to, an order): those come from
the state and earlier outputs, which win over a request wherever they have a value. Whom to
follow or mention on the posting API is the user's choice (it keeps no user registry).
"""

from __future__ import annotations

from typing import Any

Request = dict[str, Any]

_TICKET: dict[str, list[Request]] = {
    "ticket_login": [
        {"username": "mzhang", "password": "Sunrise!2048"},
        {"username": "j.okafor", "password": "blue-heron-77"},
        {"username": "priya_r", "password": "Ledger#5521"},
        {"username": "tomas.k", "password": "quietRiver9"},
    ],
    "create_ticket": [
        {"title": "Laptop cannot join the office Wi-Fi", "description": "It drops the connection every few minutes since Monday.", "priority": 3},
        {"title": "Refund not received", "description": "Order returned two weeks ago, no refund yet.", "priority": 4},
        {"title": "Printer on floor 2 jams", "priority": 2},
        {"title": "Password reset link expired", "description": "The link in the email says it is no longer valid.", "priority": 5},
        {"title": "Request a second monitor"},
    ],
    "edit_ticket": [
        {"updates": {"priority": 5}},
        {"updates": {"status": "In Progress"}},
        {"updates": {"description": "Still happening after a restart."}},
        {"updates": {"title": "Urgent: network outage", "priority": 4}},
    ],
    "resolve_ticket": [
        {"resolution": "Replaced the network adapter; the connection is stable now."},
        {"resolution": "Refund issued to the original payment method."},
        {"resolution": "Duplicate of an earlier request."},
    ],
}

_ROUTES = [("SFO", "LAX"), ("SFO", "JFK"), ("SFO", "BOS"), ("LHR", "CDG"), ("OKD", "LAX"), ("CRH", "JFK"), ("WLB", "CRH")]
_DATES = ["2025-03-14", "2025-05-02", "2025-07-19", "2025-09-30", "2025-11-21"]
_CLASSES = ["economy", "business", "first"]
_FLIGHTS = [
    {"travel_from": origin, "travel_to": destination, "travel_date": _DATES[i % len(_DATES)],
     "travel_class": _CLASSES[i % len(_CLASSES)]}
    for i, (origin, destination) in enumerate(_ROUTES)
]

_TRAVEL: dict[str, list[Request]] = {
    "authenticate_travel": [
        {"client_id": "app_7f3k2", "client_secret": "s3cr3t_9QxL", "refresh_token": "rt_51ab9e", "grant_type": "read_write"},
        {"client_id": "mobile_client_88", "client_secret": "Hx42-pq", "refresh_token": "refresh_0c7d", "grant_type": "read"},
    ],
    "book_flight": _FLIGHTS,
    "get_flight_cost": _FLIGHTS,
    "set_budget_limit": [{"budget_limit": 3000.0}, {"budget_limit": 2500.0}, {"budget_limit": 4000.0}],
    "register_credit_card": [
        {"card_number": "4111222233334444", "expiration_date": "2028-09-30", "cardholder_name": "Jordan Avery", "card_verification_number": 482},
        {"card_number": "5500123412341234", "expiration_date": "2027-04-30", "cardholder_name": "Sam Ortiz", "card_verification_number": 117},
    ],
    "purchase_insurance": [
        {"insurance_type": "comprehensive", "insurance_cost": 75.0},
        {"insurance_type": "trip cancellation", "insurance_cost": 40.0},
    ],
    "compute_exchange_rate": [
        {"base_currency": "USD", "target_currency": "EUR", "value": 250.0},
        {"base_currency": "GBP", "target_currency": "USD", "value": 120.0},
        {"base_currency": "USD", "target_currency": "JPY", "value": 80.0},
        {"base_currency": "CAD", "target_currency": "USD", "value": 500.0},
    ],
    "contact_customer_support": [
        {"message": "My flight was moved; can I change the date without a fee?"},
        {"message": "Please confirm that my seat is by the window."},
    ],
    "verify_traveler_information": [
        {"date_of_birth": "1986-04-12", "passport_number": "US4821937"},
        {"date_of_birth": "1992-11-03", "passport_number": "US7719044"},
    ],
}

_NUMBER_LISTS = [[12, 15, 9, 20], [3.5, 7.25, 1.75], [102, 98, 110, 95, 101], [4, 8, 15, 16, 23, 42]]
_PAIRS = [(18, 4), (7.5, 2.5), (144, 12), (2026, 365)]

_MATH: dict[str, list[Request]] = {
    **{name: [{"numbers": numbers} for numbers in _NUMBER_LISTS]
       for name in ("max_value", "mean", "min_value", "standard_deviation", "sum_values")},
    **{name: [{"a": a, "b": b} for a, b in _PAIRS] for name in ("add", "divide", "multiply", "subtract")},
    "absolute_value": [{"number": -42.5}, {"number": -7}],
    "round_number": [{"number": 3.14159, "decimal_places": 2}, {"number": 2.71828, "decimal_places": 3}],
    "square_root": [{"number": 50, "precision": 3}, {"number": 2, "precision": 5}],
    "power": [{"base": 2, "exponent": 10}, {"base": 1.5, "exponent": 3}],
    "percentage": [{"part": 45, "whole": 180}, {"part": 7, "whole": 40}],
    "logarithm": [{"value": 1000, "base": 10, "precision": 4}, {"value": 81, "base": 3, "precision": 2}],
    "si_unit_conversion": [{"value": 1.5, "unit_in": "km", "unit_out": "m"}, {"value": 250, "unit_in": "mm", "unit_out": "cm"}],
    "imperial_si_conversion": [
        {"value": 26.2, "unit_in": "miles", "unit_out": "km"},
        {"value": 70, "unit_in": "kg", "unit_out": "lb"},
        {"value": 98.6, "unit_in": "fahrenheit", "unit_out": "celsius"},
    ],
}

_FILE_SYSTEM: dict[str, list[Request]] = {
    "mkdir": [{"dir_name": "archive_2025"}, {"dir_name": "drafts"}, {"dir_name": "q3_review"}],
    "touch": [{"file_name": "notes.txt"}, {"file_name": "todo.md"}, {"file_name": "summary_2025.txt"}],
    "echo": [{"content": "Meeting moved to Thursday 10:00."}, {"content": "Remember to back up the reports."}],
    "cp": [{"destination": "backup_copy.txt"}, {"destination": "shared_copy.pdf"}],
    "mv": [{"destination": "renamed_file.txt"}, {"destination": "old_version.pdf"}],
}

_MESSAGE: dict[str, list[Request]] = {
    "send_message": [
        {"message": "Can we move our call to 3 pm?"},
        {"message": "The budget file is in the shared folder."},
        {"message": "Thanks for the update, see you tomorrow."},
    ],
    "add_contact": [{"user_name": "Elena"}, {"user_name": "Farid"}, {"user_name": "Grace"}],
    "search_messages": [{"keyword": "file"}, {"keyword": "connect"}],
}

_POSTING: dict[str, list[Request]] = {
    "post_tweet": [
        {"content": "Quarterly numbers are in: revenue up 12%.", "tags": ["#earnings"], "mentions": []},
        {"content": "Heading to the data summit next week!", "tags": ["#data", "#summit"]},
        {"content": "New blog post on forecasting with small samples."},
    ],
    "comment": [{"comment_content": "Great insight, thanks for sharing!"}, {"comment_content": "Could you post the source data?"}],
    "mention": [{"mentioned_usernames": ["data_dana"]}, {"mentioned_usernames": ["market_maya", "ops_omar"]}],
    "follow_user": [{"username_to_follow": "data_dana"}, {"username_to_follow": "market_maya"}],
    "search_tweets": [{"keyword": "analysis"}, {"keyword": "budget"}],
}

_TRADING: dict[str, list[Request]] = {
    "place_order": [{"order_type": "Buy", "amount": 10}, {"order_type": "Buy", "amount": 5}, {"order_type": "Sell", "amount": 3}],
    "fund_account": [{"amount": 500.0}, {"amount": 1250.0}],
    "withdraw_funds": [{"amount": 200.0}, {"amount": 750.0}],
    "trading_login": [{"username": "trader_lee", "password": "M4rket!Open"}],
}

_VEHICLE: dict[str, list[Request]] = {
    "adjustClimateControl": [
        {"temperature": 21.0, "unit": "celsius", "fanSpeed": 40},
        {"temperature": 72.0, "unit": "fahrenheit", "fanSpeed": 60},
        {"temperature": 19.5},
    ],
    "fillFuelTank": [{"fuelAmount": 10.0}, {"fuelAmount": 25.0}],
    "pressBrakePedal": [{"pedalPosition": 1.0}, {"pedalPosition": 0.5}],
    "setCruiseControl": [
        {"speed": 65.0, "activate": True, "distanceToNextVehicle": 100.0},
        {"speed": 50.0, "activate": True, "distanceToNextVehicle": 80.0},
    ],
    "set_navigation": [{"destination": "2107 Channing Way, Berkeley, CA"}, {"destination": "450 Market St, San Francisco, CA"}],
}

STATED_ARGUMENTS: dict[str, dict[str, list[Request]]] = {
    "GorillaFileSystem": _FILE_SYSTEM,
    "MessageAPI": _MESSAGE,
    "TwitterAPI": _POSTING,
    "TradingBot": _TRADING,
    "VehicleControlAPI": _VEHICLE,
    "TicketAPI": _TICKET,
    "TravelAPI": _TRAVEL,
    "MathAPI": _MATH,
}
"""BFCL class -> tool -> the requests a user may make of it."""

__all__ = ["STATED_ARGUMENTS"]
