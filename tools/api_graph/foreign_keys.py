"""Foreign-key discovery: which validated arguments accept values taken from other outputs.

Naming conventions miss links such as BFCL's ``ls -> cd`` or ``get_watchlist ->
get_stock_info``. A tool that rejects a junk value but accepts a value from another tool's
output says, by itself, that the one can feed the other.
"""

from __future__ import annotations

from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.api_graph.observe import Observations, Output
from apigen_mt.tools.api_graph.specs import chain_tools, element_type, matches_type, properties, schema_choices
from apigen_mt.tools.api_graph.values import is_int_id, is_key_like, singular
from apigen_mt.tools.executor import run_call

_JUNK = {"string": "zz-no-such-value-404", "integer": 987654321}


def accept_probe(domain: Domain, obs: Observations, max_calls: int) -> int:
    """Which output values each tool's validated arguments accept (foreign-key discovery).

    For each argument of a tool ``B`` that rejects a junk value (so the tool validates it),
    values sampled from every other tool's outputs are tried in its place, the rest of
    ``B``'s arguments coming from one successful call of ``B``. Each call runs on a fork of a
    pristine environment, so writes are safe to try. An accepted value from ``A``'s output
    is evidence that ``A`` can feed ``B`` (``obs.accepted``). Returns the number of calls made.
    """
    tools = chain_tools(domain)
    pristine = domain.new_env()
    calls = 0
    for target in tools.values():
        props = properties(target)
        required = list(target.parameters.get("required") or [])
        base = obs.call_examples.get(target.name)
        for argument in required:
            schema = props.get(argument, {})
            kind, array = element_type(schema)
            if kind not in _JUNK or schema_choices(schema):
                continue  # a choice the schema offers is not a reference to other data
            others = {k: v for k, v in (base or {}).items() if k != argument}
            if any(arg not in others for arg in required if arg != argument):
                continue  # no known-good values for the other arguments
            junk = [_JUNK[kind]] if array else _JUNK[kind]
            if calls >= max_calls:
                return calls
            calls += 1
            if run_call(pristine.fork(), calls, target.name, {**others, argument: junk}).ok:
                continue  # accepts anything: not a reference to other data
            for source in tools.values():
                if source.name == target.name or (source.name, target.name, argument) in obs.accepted:
                    continue
                out = obs.outputs.get(source.name)
                if out is None:
                    continue
                for value in _candidate_values(out, argument, kind)[:8]:
                    if calls >= max_calls:
                        return calls
                    calls += 1
                    if run_call(
                        pristine.fork(), calls, target.name, {**others, argument: [value] if array else value}
                    ).ok:
                        obs.accepted[(source.name, target.name, argument)] = value
                        break
    return calls


def _candidate_values(out: Output, argument: str, kind: str | None) -> list[Any]:
    """Sampled output values to try as ``argument``: same-named fields first, then id-like ones."""
    ranked = sorted(
        out.samples.items(),
        key=lambda item: (
            item[0] not in (argument, singular(argument)),
            not is_key_like(item[0]),
            item[0],
        ),
    )
    return [
        v
        for key, vs in ranked
        for v in vs
        if matches_type(v, kind) and (isinstance(v, str) and len(v) <= 60 or is_int_id(v, key or argument))
    ]
