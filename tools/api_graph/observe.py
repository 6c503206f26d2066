"""Running the domain's tools to see what their outputs really hold.

Names alone miss edges (an output field called ``id``, an argument no output is named
after), so the graph also rests on observed values: the gold actions of the example
blueprints, and the read tools probed on real users with arguments from their records and
from earlier outputs. Everything runs on fresh environments or forks.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind, ToolSpec
from apigen_mt.tools.api_graph.pool import Pool, fill_arguments, grow_pool, pooled_values, user_pool
from apigen_mt.tools.api_graph.specs import chain_tools
from apigen_mt.tools.api_graph.values import (
    decode,
    field_aliases,
    is_int_id,
    is_keyed_map,
    is_specific,
    leaf_values,
    singular,
    tool_noun,
)
from apigen_mt.tools.executor import execute_actions, run_call
from apigen_mt.tools.state_diff import canonical_json


@dataclass
class Output:
    """What the observed outputs of one tool contain."""

    fields: set[str] = field(default_factory=set)  # field names and their aliases
    values: set[str] = field(default_factory=set)  # specific scalar values at any depth
    scalar: bool = False  # some output was a bare scalar
    count: int = 0
    numbers: int = 0  # outputs that were one number in a record of one field ({"result": 4.5})
    samples: dict[str, list[Any]] = field(default_factory=dict)  # field -> a few scalar values

    @classmethod
    def of(cls, data: Any, noun: str | None = None) -> Output:
        """The fields and values of one (decoded) output; ``noun``: what its top records are
        (:func:`~.values.tool_noun`), whose ``id`` is also a ``<noun>_id``."""
        out = cls(scalar=isinstance(data, (str, int, float)) and not isinstance(data, bool))
        values = list(data.values()) if isinstance(data, Mapping) else []
        out.numbers = int(len(values) == 1 and isinstance(values[0], (int, float)) and not isinstance(values[0], bool))
        _walk_output(data, out, noun)
        return out

    @property
    def is_result(self) -> bool:
        """Every output was a single number (a calculator's ``{"result": 4.5}``): what the next
        calculation takes."""
        return bool(self.count) and self.numbers == self.count

    def add(self, out: Output, data: Any) -> None:
        """Merge one call's output (``out``, read from ``data``) into this tool's total."""
        self.fields |= out.fields
        self.values |= out.values
        self.scalar = self.scalar or out.scalar
        self.count += 1
        self.numbers += out.numbers
        for key, values in user_pool(data).items():
            kept = self.samples.setdefault(key, [])
            for value in values:
                if len(kept) < 2 and value not in kept and not isinstance(value, float):
                    kept.append(value)
        if out.scalar and not isinstance(data, float):
            kept = self.samples.setdefault("", [])
            if len(kept) < 2 and data not in kept:
                kept.append(data)


def _walk_output(value: Any, out: Output, key: str | None = None) -> None:
    if isinstance(value, Mapping):
        if is_keyed_map(value):
            for k, item in value.items():
                if is_specific(str(k)):
                    out.values.add(str(k))
                if key and is_specific(str(k)):
                    out.fields.add(f"{singular(key)}_id")  # payment_methods.<id> -> payment_method_id
                _walk_output(item, out, None)
        else:
            for k, item in value.items():
                out.fields.update(field_aliases(str(k), key))
                _walk_output(item, out, str(k))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if key and isinstance(item, str) and is_specific(item):
                out.fields.add(f"{singular(key)}_id")  # orders: ["#W1"] -> order_id
            _walk_output(item, out, key)
    elif isinstance(value, str):
        if is_specific(value):
            out.values.add(value)
    elif is_int_id(value, key):
        out.values.add(str(value))


@dataclass
class Observations:
    """Everything the runs showed, keyed by tool names (and argument names)."""

    outputs: defaultdict[str, Output] = field(default_factory=lambda: defaultdict(Output))
    # (tool, argument) -> values it was called with
    arg_values: defaultdict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    # (source, target, argument) -> gold traces
    flows: defaultdict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (source, target, argument) -> accepted probe calls
    probe_flows: defaultdict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    call_examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool -> one successful call
    first_reads: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))  # read -> traces
    # write -> (table, before, after)
    write_samples: defaultdict[str, list[tuple[str, Any, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    user_fields: set[str] = field(default_factory=set)  # field names found in users' own records
    accepted: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # (source, target, arg) -> value
    gold_traces: int = 0
    probe_calls: int = 0

    def record(self, name: str, arguments: Mapping[str, Any], observation: Any) -> Output:
        """Note a successful call: its output, and the values each argument was given."""
        data = decode(observation)
        out = Output.of(data, tool_noun(name))
        self.outputs[name].add(out, data)
        self.call_examples.setdefault(name, dict(arguments))
        for arg, value in arguments.items():
            self.arg_values[(name, arg)].update(leaf_values(value, arg))
        return out


def collect_observations(domain: Domain, probe_users: int, probe_rounds: int) -> Observations:
    """Run the gold traces, then probe the read tools (see the module docstring)."""
    tools = chain_tools(domain)
    obs = Observations()
    _run_gold_traces(domain, tools, obs)
    _probe_reads(domain, tools, obs, probe_users, probe_rounds)
    return obs


def _run_gold_traces(domain: Domain, tools: dict[str, ToolSpec], obs: Observations) -> None:
    """Execute the example blueprints' gold actions, noting value flows and what writes change."""
    try:
        examples = list(domain.example_blueprints())
    except Exception:  # a domain without examples still gets a graph
        examples = []
    for example in examples:
        actions = (
            example.get("actions", []) if isinstance(example, Mapping) else getattr(example, "actions", [])
        )
        # snapshots: the state before each call, so a write's effect is the next call's snapshot
        # (or the final state) compared with its own
        trace = execute_actions(domain.new_env(), actions, snapshots=True)
        seen: list[tuple[str, Output]] = []
        trace_flows: set[tuple[str, str, str]] = set()
        opened = False
        for call in trace.calls:
            spec = tools.get(call.name)
            if spec is None or not call.ok:
                continue
            if spec.kind == ToolKind.READ and not opened:
                obs.first_reads[call.name] += 1
            opened = True
            for arg, value in call.arguments.items():
                for leaf in set(leaf_values(value, arg)):
                    for source, out in seen:
                        if source != call.name and leaf in out.values:
                            trace_flows.add((source, call.name, arg))
            seen.append((call.name, obs.record(call.name, call.arguments, call.observation)))
            if spec.kind == ToolKind.WRITE and call.before is not None:
                following = call.index + 1
                after = trace.calls[following].before if following < len(trace.calls) else trace.env
                for change in after.changed_records():
                    previous = call.before.record(change.table, change.key)
                    if previous != change.after:
                        obs.write_samples[call.name].append((change.table, previous, change.after))
        for key in trace_flows:
            obs.flows[key] += 1
        obs.gold_traces += 1


def _probe_reads(
    domain: Domain, tools: dict[str, ToolSpec], obs: Observations, probe_users: int, probe_rounds: int
) -> None:
    """Call each read tool for a few real users, arguments from their records and earlier outputs."""
    try:
        user_ids = list(domain.user_ids())
    except Exception:
        user_ids = []
    chosen = (
        random.Random(0).sample(sorted(user_ids), min(probe_users, len(user_ids))) if user_ids else [None]
    )
    reads = [spec for spec in tools.values() if spec.kind == ToolKind.READ]
    for user_id in chosen:
        pool: Pool = defaultdict(list)
        if user_id is not None:
            try:
                context = domain.user_context(user_id)
            except Exception:  # a user the domain cannot describe: probe with outputs only
                context = {}
            grow_pool(pool, context, "user")
            obs.user_fields.update(pool)
        env = domain.new_env()
        done: set[tuple[str, str]] = set()
        for _ in range(probe_rounds):
            for spec in reads:
                requests = (domain.stated_arguments or {}).get(spec.name, ())
                for arguments, sources in _call_variants(spec, pool, requests)[:6]:
                    signature = (spec.name, canonical_json(arguments))
                    if signature in done:
                        continue
                    done.add(signature)
                    call = run_call(env.fork(), obs.probe_calls, spec.name, arguments)
                    obs.probe_calls += 1
                    if not call.ok:
                        continue
                    obs.record(spec.name, arguments, call.observation)
                    for arg, source in sources.items():
                        if source != "user" and source != spec.name:
                            obs.probe_flows[(source, spec.name, arg)] += 1
                    grow_pool(pool, decode(call.observation), spec.name)


def _call_variants(
    spec: ToolSpec, pool: Pool, requests: Sequence[Mapping[str, Any]] = ()
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """One call of ``spec`` from the pool, then the same call with each argument fed by each
    tool; with ``requests`` (what a user may ask of the tool), the first fills what the pool
    does not, and the next two give calls of their own."""
    first = requests[0] if requests else None
    base = fill_arguments(spec, pool, stated=first)
    if base is None:
        return []
    variants = [base]
    for arg in spec.parameters.get("required") or []:
        for source in sorted({src for _, src in pooled_values(pool, arg)}):
            if source not in ("user", base[1].get(arg)):
                variant = fill_arguments(spec, pool, prefer=(arg, source), stated=first)
                if variant is not None:
                    variants.append(variant)
    for request in requests[1:3]:
        variant = fill_arguments(spec, pool, stated=request)
        if variant is not None:
            variants.append(variant)
    return variants
