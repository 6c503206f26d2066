"""Why an edge ``A -> B`` exists, and how strongly: evidence per argument of ``B``, edge weights.

Each piece of evidence is a dict (``type``, ``argument``, ``score`` and a detail) kept on the
edge, so a weight can always be traced back to what was seen. Scores are probability-like
and combine per argument with a noisy-OR; the tuning constants live here together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from apigen_mt.domains.base import ToolKind, ToolSpec
from apigen_mt.tools.api_graph.observe import Observations, Output
from apigen_mt.tools.api_graph.specs import (
    arg_type,
    description_examples,
    is_key_argument,
    mentions,
    nested_properties,
    properties,
    required_arguments,
)
from apigen_mt.tools.api_graph.values import is_key_like, shape, singular

SCORE_FIELD_KEY = 0.6  # an id-like argument name is a field of the output
SCORE_FIELD_SUFFIX = 0.45  # new_item_ids <- item_id
SCORE_FIELD_NESTED = 0.45  # flights[].flight_number <- a flight_number field
SCORE_FIELD_PLAIN = 0.2  # a non-id argument name (origin, zip) is a field of the output
SCORE_RETURNS = 0.7  # a scalar output of a tool that says it returns this id
SCORE_PROBE_FLOW = 0.35  # a probe call accepted a value taken from the source's output
SCORE_ACCEPTS = 0.45  # the target, which rejects junk, accepted a value from the source's output
SCORE_VALUE_MATCH = 0.4  # an output value was used as this argument somewhere
SCORE_FORMAT = 0.25  # an output value has the shape of this argument's values
SCORE_RESULT = 0.3  # source and target return one number (calculators), the argument takes one
KEY_WEIGHT = 0.7  # share of the edge weight that comes from id-like arguments
MIN_WEIGHT = 0.1  # weaker edges are left out

_LITERAL = re.compile(r"[^A-Za-z0-9]")


def _found(kind: str, argument: str, score: float, **detail: Any) -> dict[str, Any]:
    return {"type": kind, "argument": argument, **detail, "score": score}


def _noisy_or(scores: Iterable[float]) -> float:
    miss = 1.0
    for score in scores:
        miss *= 1.0 - score
    return 1.0 - miss


def edge_evidence(
    source: ToolSpec, target: ToolSpec, obs: Observations
) -> tuple[float, list[dict[str, Any]], list[str]]:
    """``(weight, evidence, arguments fed)`` of ``source -> target``.

    The weight averages the per-argument confidences over the target's required arguments,
    the id-like ones counting most (``KEY_WEIGHT``): an output that feeds the order id, the
    item ids and the payment method outweighs one that feeds the item ids only.
    """
    props = properties(target)
    required = required_arguments(target)
    evidence: list[dict[str, Any]] = []
    confidence: dict[str, float] = {}
    for argument in required:
        found = _argument_evidence(source, target, argument, props.get(argument, {}), obs)
        evidence.extend(found)
        confidence[argument] = _noisy_or(item["score"] for item in found)
    if not required:
        return 0.0, [], []
    fed = [arg for arg, value in confidence.items() if value > 0]
    keys = [arg for arg in required if is_key_argument(arg, props.get(arg, {}))]
    overall = sum(confidence.values()) / len(required)
    if keys:
        weight = KEY_WEIGHT * sum(confidence[a] for a in keys) / len(keys) + (1 - KEY_WEIGHT) * overall
    else:
        weight = overall
    return round(weight, 4), evidence, fed


def _argument_evidence(
    source: ToolSpec, target: ToolSpec, argument: str, schema: Mapping[str, Any], obs: Observations
) -> list[dict[str, Any]]:
    """What says that ``source``'s output can feed ``argument`` of ``target``: names, then values."""
    out = obs.outputs.get(source.name)
    if out is None:
        return []
    return [
        *_name_evidence(argument, schema, out),
        *_value_evidence(source, target, argument, schema, out, obs),
    ]


def _name_evidence(argument: str, schema: Mapping[str, Any], out: Output) -> list[dict[str, Any]]:
    """The argument's name is a field of the output, at any depth (``field``, ``field_suffix``,
    ``field_nested``): ``payment_methods.*.id`` counts as ``payment_method_id``, ``orders:
    ["#W1"]`` as ``order_id``, and ``new_item_ids`` is fed by an ``item_id`` field."""
    evidence: list[dict[str, Any]] = []
    one = singular(argument)
    key_like = is_key_like(argument)
    if argument in out.fields or one in out.fields:
        field = argument if argument in out.fields else one
        score = SCORE_FIELD_KEY if key_like else SCORE_FIELD_PLAIN
        evidence.append(_found("field", argument, score, field=field))
    elif key_like:
        suffix = sorted(f for f in out.fields if "_" in f and is_key_like(f) and one.endswith("_" + f))
        if suffix:
            evidence.append(_found("field_suffix", argument, SCORE_FIELD_SUFFIX, field=suffix[-1]))
    nested = [
        p
        for p in nested_properties(schema)
        if is_key_like(p) and (p in out.fields or singular(p) in out.fields)
    ]
    if nested:
        evidence.append(_found("field_nested", argument, SCORE_FIELD_NESTED, field=nested[0]))
    return evidence


def _value_evidence(
    source: ToolSpec,
    target: ToolSpec,
    argument: str,
    schema: Mapping[str, Any],
    out: Output,
    obs: Observations,
) -> list[dict[str, Any]]:
    """Observed values tie the output to the argument.

    ``returns``: the source returns a bare scalar and its name or description says it returns
    this id (``find_user_id_by_email``). A value of the output that a gold trace later passed
    to the target (``gold_flow``), that a probe of the target took from the source and the
    target accepted (``probe_flow``), that the target accepted in place of a validated
    argument (``accepts``), that the target was ever called with (``value_match``), or that has
    the distinctive shape of the argument's values (``format``, e.g. ``#W\\d{7}``). Of two
    calculators (reads whose every output is one number), the first feeds the second's number arguments
    (``result``: a mean, then rounded; not a temperature into a fuel amount).
    """
    evidence: list[dict[str, Any]] = []
    key_like = is_key_like(argument)
    link = (source.name, target.name, argument)
    calculator = obs.outputs.get(target.name)
    reads = source.kind == ToolKind.READ and target.kind == ToolKind.READ
    if reads and out.is_result and calculator is not None and calculator.is_result and arg_type(schema) == "number":
        evidence.append(_found("result", argument, SCORE_RESULT))
    used = obs.arg_values.get((target.name, argument), set())
    common = used & out.values
    scalar = out.scalar and arg_type(schema) in (None, "string", "integer")
    if key_like and (scalar or common) and mentions(source, argument):
        evidence.append(_found("returns", argument, SCORE_RETURNS))
    flows = obs.flows.get(link, 0)
    if flows:
        evidence.append(_found("gold_flow", argument, min(0.95, 0.5 + 0.1 * flows), traces=flows))
    accepted = obs.probe_flows.get(link, 0)
    if accepted:
        evidence.append(_found("probe_flow", argument, SCORE_PROBE_FLOW, calls=accepted))
    example = obs.accepted.get(link)
    if example is not None:
        evidence.append(_found("accepts", argument, SCORE_ACCEPTS, example=example))
    if common:
        evidence.append(_found("value_match", argument, SCORE_VALUE_MATCH, example=min(common)))
    elif key_like:
        # only distinctive shapes: with a literal such as '#' or '_' ("#W\d{7}", not "\d{10}")
        shapes = {shape(v) for v in [*used, *description_examples(schema)] if _LITERAL.search(v)}
        if shapes:
            pattern = re.compile("|".join(f"(?:{s})" for s in sorted(shapes)))
            hit = next((v for v in sorted(out.values) if pattern.fullmatch(v)), None)
            if hit is not None:
                evidence.append(_found("format", argument, SCORE_FORMAT, example=hit))
    return evidence
