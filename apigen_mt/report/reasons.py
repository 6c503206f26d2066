"""Stable keys for rejection reasons, so that failed rounds can be counted by rule.

A reason is free text naming ids, argument values and percentages; counting raw strings
would give one bar per blueprint. Each stage writes its reasons in a known shape (see
``apigen_mt.tools.checks`` and ``apigen_mt.graphs.verification``), so the key keeps what
names the rule (the policy rule, the tool and error kind, the metric voted down) and drops
the rest. Anything unrecognised falls back to its first words with ids and numbers removed.
"""

from __future__ import annotations

import re

__all__ = ["reason_key"]

_POLICY = re.compile(r"^\s*\[([^\]]+)\]")
_EXECUTION = re.compile(r"^actions\[\d+\]\s+([^\s(]+)\(.*?\)\s+failed:\s*(.*)$", re.S)
_COMMITTEE_METRIC = re.compile(r"voted (\w+) down")
_POSITION = re.compile(r"\[\d+\]")
_GROUNDING = re.compile(r"^actions\[\d+\] (\w+)((?:\.\w+|\[\d+\])*) = .* is not obtainable")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_ID_LIKE = re.compile(r"\S*\d\S*")
_WORD = re.compile(r"[a-z_]+")

_FORMAT = (
    (re.compile(r"^missing field '(\w+)'"), "missing field {0}"),
    (re.compile(r"^field '(\w+)' must be"), "field {0} has the wrong type"),
    (re.compile(r"^field '(\w+)' is empty"), "field {0} is empty"),
    (re.compile(r"^blueprint is for domain"), "wrong domain"),
    (re.compile(r"^a blueprint must be a JSON object"), "not a JSON object"),
    (re.compile(r"^actions\[\d+\] must be an object"), "action is not an object"),
    (re.compile(r"^actions\[\d+\]\.name"), "action without a name"),
    (re.compile(r"^actions\[\d+\]\.arguments"), "arguments are not an object"),
    (re.compile(r"^outputs\[\d+\]"), "empty or non-string output"),
)
_GENERATION_KINDS = ("malformed_json", "validation", "truncated", "refusal", "empty", "malformed_response")


def _words(text: str, most: int = 5) -> str:
    """The first words of ``text``, lower-cased, without quoted values, ids or numbers."""
    text = _ID_LIKE.sub(" ", _QUOTED.sub(" ", text.lower()))
    words = _WORD.findall(text)
    return " ".join(words[:most]) or "(unreadable reason)"


def _error_kind(error: str) -> str:
    """What kind of API error: the wording without the specific values."""
    lowered = error.lower()
    if re.search(r"tool .* not found|unknown tool|no such tool", lowered):
        return "unknown tool"
    if lowered.startswith("invalid arguments"):
        return "invalid arguments"
    head = error.split(":", 1)[0] if re.match(r"^\w+(Error|Exception):", error) else error
    return _words(head, 4)


def reason_key(stage: str | None, reason: str) -> str:
    """The rule a reason of ``stage`` names, e.g. ``authenticate_before_user_data_strict``
    (policy), ``cancel_pending_order: order not found`` (execution), ``correctness voted
    down`` (committee), ``cancel_pending_order.order_id not obtainable`` (grounding),
    ``near-duplicate instruction`` (dedup)."""
    reason = str(reason or "").strip()
    if not reason:
        return "(no reason given)"
    if stage == "policy" or _POLICY.match(reason):
        found = _POLICY.match(reason)
        if found:
            return found.group(1).strip()
    if stage == "execution" or _EXECUTION.match(reason):
        found = _EXECUTION.match(reason)
        if found:
            kind = _error_kind(found.group(2))
            return kind if kind == "unknown tool" else f"{found.group(1)}: {kind}"
    if stage == "committee":
        found = _COMMITTEE_METRIC.search(reason)
        if found:
            return f"{found.group(1)} voted down"
        if reason.startswith("only ") and "threshold" in reason:
            return "below the pass threshold"
        if "no judge returned a valid review" in reason:
            return "no valid review"
    if stage == "grounding":
        found = _GROUNDING.match(reason)
        if found:  # the argument, without list positions: "book_reservation.flights.flight_number"
            return found.group(1) + _POSITION.sub("", found.group(2)) + " not obtainable"
        if reason.startswith("outputs["):
            return "an output not obtainable"
    if stage == "dedup":
        if reason.startswith("near-duplicate"):
            return "near-duplicate instruction"
        if reason.startswith("duplicate of"):
            return "same actions as a kept blueprint"
    if stage == "format":
        for pattern, key in _FORMAT:
            found = pattern.match(reason)
            if found:
                return key.format(*found.groups())
    if stage == "generation":
        kind = reason.split(":", 1)[0].strip()
        if kind in _GENERATION_KINDS:
            return kind
    return _words(reason)
