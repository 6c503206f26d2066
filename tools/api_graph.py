"""The API dependency graph of a domain, and random walks on it (Phase 1 context preparation).

Nodes are the domain's chain tools (read and write; "other" tools such as ``think``,
``calculate`` or ``transfer_to_human_agents`` are no chain members). An edge ``A -> B`` says
that an output of ``A`` can feed an argument of ``B``. Evidence is gathered in two ways and
combined per argument of ``B``:

* **names and types**: an argument name of ``B`` (``order_id``, ``item_ids``, ``flights``...)
  is a field, at any depth, of ``A``'s observed output (``payment_methods.*.id`` counts as
  ``payment_method_id``, ``orders: ["#W1"]`` as ``order_id``, ``new_item_ids`` is fed by an
  ``item_id`` field); or ``A`` returns a bare scalar and its name/description says it returns
  that id (``find_user_id_by_email``).
* **observed values**: the gold actions of the domain's example blueprints are executed on a
  fresh environment, and the read tools are probed on real entities (``user_ids()`` /
  ``user_context()``, filling arguments from the user's records and from earlier outputs).
  A value of ``A``'s output that a gold trace later passes to ``B`` (``gold_flow``), that a
  probe of ``B`` took from ``A`` and ``B`` accepted (``probe_flow``), that ``B`` was ever
  called with (``value_match``), or that has the shape of ``B``'s argument values
  (``format``, e.g. ``#W\\d{7}``) is evidence too. Last, for each argument of ``B`` that
  rejects a junk value, values from every other tool's outputs are tried in its place on a
  fork of the pristine state (``accepts``): a foreign-key test that needs no naming
  convention (BFCL's ``ls -> cd``, ``get_watchlist -> get_stock_info``).

Each edge stores its evidence and a ``weight`` in [0, 1]: the per-argument confidences
(noisy-OR of the evidence scores) averaged over ``B``'s required arguments, the id-like ones
counting most. So ``get_order_details -> return_delivered_order_items`` (feeds the order id,
the item ids and the payment method) outweighs ``get_product_details -> ...`` (item ids only).

Pruning, data-driven first:

* no self-loops, no edges into or out of "other" tools;
* **dead entities**: executing the gold writes shows which record fields they move and
  whether some write moves a field into a value no write ever starts from (a lifecycle
  field: ``orders.status`` -> ``cancelled``, ``return requested``...). ``W1 -> W2`` is
  dropped when, on such a field, every value ``W1`` leaves a record in is one ``W2`` was
  never seen to start from (``cancel_pending_order -> modify_*``,
  ``modify_pending_order_items -> cancel_pending_order``; but not
  ``modify_pending_order_address -> cancel_pending_order``: the order stays pending);
* **redundant resolvers**: no edge into a tool that only resolves an id the source already
  outputs (``get_user_details -> find_user_id_by_email``);
* an optional per-domain hook: a ``forbidden_edges`` attribute or method on the domain giving
  ``(source, target)`` pairs (``"*"`` is a wildcard), and ``entry_tools`` naming entry points.

Entry points are read tools whose arguments the user can supply: the first read tools of the
gold traces (the ways the benchmark's users start), else the reads whose required arguments
all come from the user's own records; reads with no required argument (and some out-edge)
are entries too, with less weight.
Random walks start at an entry point and end in a write tool (chains centred on writes).
"""

from __future__ import annotations

import json
import random
import re
import weakref
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from apigen_mt.domains.base import Domain, ToolKind, ToolSpec
from apigen_mt.tools.executor import run_call

__all__ = [
    "ApiGraph",
    "api_graph",
    "build_api_graph",
    "clear_cache",
    "describe",
    "random_walk",
    "to_dot",
    "to_graphml",
]

# Evidence scores (probability-like; combined per argument with a noisy-OR).
SCORE_FIELD_KEY = 0.6  # an id-like argument name is a field of the output
SCORE_FIELD_SUFFIX = 0.45  # new_item_ids <- item_id
SCORE_FIELD_NESTED = 0.45  # flights[].flight_number <- a flight_number field
SCORE_FIELD_PLAIN = 0.2  # a non-id argument name (origin, zip) is a field of the output
SCORE_RETURNS = 0.7  # a scalar output of a tool that says it returns this id
SCORE_PROBE_FLOW = 0.35  # a probe call accepted a value taken from the source's output
SCORE_ACCEPTS = 0.45  # the target, which rejects junk, accepted a value from the source's output
SCORE_VALUE_MATCH = 0.4  # an output value was used as this argument somewhere
SCORE_FORMAT = 0.25  # an output value has the shape of this argument's values
KEY_WEIGHT = 0.7  # share of the edge weight that comes from id-like arguments
MIN_WEIGHT = 0.1  # weaker edges are left out

_KEY_SUFFIXES = ("_id", "_ids", "_number", "_numbers", "_code", "_codes")
_LITERAL = re.compile(r"[^A-Za-z0-9]")


# -- small helpers ----------------------------------------------------------------------------
def singular(name: str) -> str:
    """``item_ids`` -> ``item_id``, ``flights`` -> ``flight``, ``address`` stays."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 2:
        return name[:-1]
    return name


def is_key_like(name: str) -> bool:
    """Whether an argument or field name names an identifier (``order_id``, ``flight_number``)."""
    return (
        name == "id"
        or name.endswith(_KEY_SUFFIXES)
        or name.endswith("id")
        and "_" not in name
        and len(name) > 2
    )


def _is_identifier(key: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)) and not any(ch.isdigit() for ch in key)


def _specific(value: str) -> bool:
    """A value worth tracing through outputs: an id or a code, not a common word."""
    if len(value) < 3 or len(value) > 80:
        return False
    if any(ch.isdigit() for ch in value) or "#" in value or "_" in value:
        return True
    return value.isupper() and value.isalpha() and len(value) <= 6  # codes such as JFK


def shape(value: str) -> str:
    """A regular expression for values that look like ``value`` (``#W0001`` -> ``\\#[A-Z]\\d{4}``)."""
    parts = []
    for run in re.findall(r"\d+|[A-Z]+|[a-z]+|[^A-Za-z0-9]", value):
        if run.isdigit():
            parts.append(rf"\d{{{len(run)}}}")
        elif run.isupper():
            parts.append(f"[A-Z]{{{len(run)}}}")
        elif run.islower():
            parts.append("[a-z]+")
        else:
            parts.append(re.escape(run))
    return "".join(parts)


def _decode(value: Any) -> Any:
    """Observations that are JSON text (``list_all_product_types``) as data."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_map(value: Mapping[str, Any]) -> bool:
    """A dict keyed by ids or names rather than by field names (``{"credit_card_1": {...}}``)."""
    return bool(value) and any(not _is_identifier(str(k)) for k in value)


@dataclass
class _Output:
    """What the observed outputs of one tool contain."""

    fields: set[str] = field(default_factory=set)  # field names and their aliases
    values: set[str] = field(default_factory=set)  # specific scalar values at any depth
    scalar: bool = False  # some output was a bare scalar
    count: int = 0
    samples: dict[str, list[Any]] = field(default_factory=dict)  # field -> a few scalar values


def _field_aliases(key: str, parent: str | None) -> set[str]:
    names = {key}
    if key == "id" and parent:
        names.add(f"{singular(parent)}_id")
    return names


def _walk_output(value: Any, out: _Output, key: str | None = None, parent: str | None = None) -> None:
    if isinstance(value, Mapping):
        if _is_map(value):
            for k, item in value.items():
                if _specific(str(k)):
                    out.values.add(str(k))
                if key and _specific(str(k)):
                    out.fields.add(f"{singular(key)}_id")  # payment_methods.<id> -> payment_method_id
                _walk_output(item, out, None, key)
        else:
            for k, item in value.items():
                out.fields.update(_field_aliases(str(k), key))
                _walk_output(item, out, str(k), key)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if key and isinstance(item, str) and _specific(item):
                out.fields.add(f"{singular(key)}_id")  # orders: ["#W1"] -> order_id
            _walk_output(item, out, key, parent)
    elif isinstance(value, str):
        if _specific(value):
            out.values.add(value)
    elif _int_id(value, key):
        out.values.add(str(value))


def _int_id(value: Any, key: str | None) -> bool:
    """An integer that is an id (``order_id: 12345``): traced like id strings."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and bool(key)
        and is_key_like(key)
        and abs(value) >= 100
    )


def _leaf_values(value: Any, key: str | None = None) -> Iterator[str]:
    """Specific string values (and integer ids) anywhere inside an argument value."""
    if isinstance(value, Mapping):
        for k, item in value.items():
            yield from _leaf_values(item, str(k))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaf_values(item, key)
    elif isinstance(value, str) and _specific(value):
        yield value
    elif _int_id(value, key):
        yield str(value)


def _properties(spec: ToolSpec) -> dict[str, Mapping[str, Any]]:
    return dict(spec.parameters.get("properties") or {})


def _required(spec: ToolSpec) -> list[str]:
    props = _properties(spec)
    required = [name for name in spec.parameters.get("required") or [] if name in props]
    return required or list(props)


def _nested_properties(schema: Mapping[str, Any]) -> list[str]:
    """Property names inside an object argument or an array-of-objects argument."""
    if schema.get("type") == "array" or "items" in schema:
        schema = schema.get("items") or {}
    names: list[str] = []
    candidates = [schema, *(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            names.extend(str(name) for name in (candidate.get("properties") or {}))
    return sorted(set(names))


def is_key_argument(name: str, schema: Mapping[str, Any]) -> bool:
    """An id-like argument, or an object/array argument holding ids (``flights[].flight_number``)."""
    return is_key_like(name) or any(is_key_like(p) for p in _nested_properties(schema))


def _arg_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _description_examples(schema: Mapping[str, Any]) -> list[str]:
    """Example values quoted in an argument's description ("such as '#W0000000'")."""
    return re.findall(r"'([^'\s]{3,40})'", str(schema.get("description") or ""))


def _mentions(spec: ToolSpec, argument: str) -> bool:
    base = singular(argument)
    text = f"{spec.name} {spec.description}".lower().replace("_", " ")
    return base.replace("_", " ") in text


def _noisy_or(scores: Iterable[float]) -> float:
    miss = 1.0
    for score in scores:
        miss *= 1.0 - score
    return 1.0 - miss


# -- observation ------------------------------------------------------------------------------
@dataclass
class _Observations:
    outputs: dict[str, _Output]
    arg_values: dict[tuple[str, str], set[str]]  # (tool, argument) -> values it was called with
    flows: dict[tuple[str, str, str], int]  # (source, target, argument) -> gold traces
    probe_flows: dict[tuple[str, str, str], int]  # (source, target, argument) -> accepted probe calls
    call_examples: dict[str, dict[str, Any]]  # tool -> the arguments of one successful call
    first_reads: dict[str, int]  # read tool -> gold traces it opens
    write_samples: dict[str, list[tuple[str, Any, Any]]]  # write -> (table, before, after)
    user_fields: set[str]  # field names found in users' own records
    accepted: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # (source, target, arg) -> value
    gold_traces: int = 0
    probe_calls: int = 0


def _user_pool(context: Any) -> dict[str, list[Any]]:
    """Field name -> values, from a user's records (the values a user can tell the agent)."""
    pool: dict[str, list[Any]] = defaultdict(list)

    def add(name: str, value: Any) -> None:
        if value not in pool[name]:
            pool[name].append(value)

    def walk(value: Any, key: str | None, parent: str | None) -> None:
        if isinstance(value, Mapping):
            if _is_map(value):
                for k, item in value.items():
                    if key:
                        add(f"{singular(key)}_id", str(k))
                    walk(item, None, key)
            else:
                for k, item in value.items():
                    for alias in _field_aliases(str(k), key):
                        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                            add(alias, item)
                    walk(item, str(k), key)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if key and isinstance(item, (str, int)) and not isinstance(item, bool):
                    add(key, item)
                    add(f"{singular(key)}_id", item)
                walk(item, key, parent)

    walk(_decode(context), None, None)
    return pool


Pool = dict[str, list[tuple[Any, str]]]  # field name -> (value, where it came from: "user" or a tool)


def _fill_arguments(
    spec: ToolSpec, pool: Pool, prefer: tuple[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Arguments for ``spec`` from ``pool`` and where each came from; None when one is missing.

    ``prefer=(argument, source)`` takes that argument's value from that source.
    """
    props = _properties(spec)
    arguments: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in spec.parameters.get("required") or []:
        schema = props.get(name, {})
        kind = _arg_type(schema)
        array = kind == "array"
        if array:
            kind = _arg_type(schema.get("items") or {}) or "string"
        candidates = [
            (value, source)
            for value, source in pool.get(name) or pool.get(singular(name)) or []
            if _matches_type(value, kind) and ("enum" not in schema or value in schema["enum"])
        ]
        if prefer is not None and prefer[0] == name:
            candidates = [c for c in candidates if c[1] == prefer[1]]
        if not candidates:
            return None
        value, source = candidates[0]
        arguments[name] = [value] if array else value
        sources[name] = source
    return arguments, sources


def _matches_type(value: Any, kind: str | None) -> bool:
    if kind in (None, "string"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return False


def _chain_tools(domain: Domain) -> dict[str, ToolSpec]:
    return {spec.name: spec for spec in domain.tools if spec.kind in (ToolKind.READ, ToolKind.WRITE)}


def _observe(domain: Domain, probe_users: int, probe_rounds: int) -> _Observations:
    tools = _chain_tools(domain)
    outputs: dict[str, _Output] = defaultdict(_Output)
    arg_values: dict[tuple[str, str], set[str]] = defaultdict(set)
    flows: dict[tuple[str, str, str], int] = defaultdict(int)
    first_reads: dict[str, int] = defaultdict(int)
    write_samples: dict[str, list[tuple[str, Any, Any]]] = defaultdict(list)
    good_calls: dict[str, dict[str, Any]] = {}  # tool -> arguments of one successful call

    def record_call(name: str, arguments: Mapping[str, Any], observation: Any) -> _Output:
        out = _Output()
        data = _decode(observation)
        out.scalar = isinstance(data, (str, int, float)) and not isinstance(data, bool)
        _walk_output(data, out)
        total = outputs[name]
        total.fields |= out.fields
        total.values |= out.values
        total.scalar = total.scalar or out.scalar
        total.count += 1
        for key, values in _user_pool(data).items():
            kept = total.samples.setdefault(key, [])
            for value in values:
                if len(kept) < 2 and value not in kept and not isinstance(value, float):
                    kept.append(value)
        if out.scalar and not isinstance(data, float):
            kept = total.samples.setdefault("", [])
            if len(kept) < 2 and data not in kept:
                kept.append(data)
        good_calls.setdefault(name, dict(arguments))
        for arg, value in arguments.items():
            arg_values[(name, arg)].update(_leaf_values(value, arg))
        return out

    # 1. gold traces of the example blueprints, with the records each write changed
    gold = 0
    try:
        examples = list(domain.example_blueprints())
    except Exception:  # a domain without examples still gets a graph
        examples = []
    for example in examples:
        actions = (
            example.get("actions", []) if isinstance(example, Mapping) else getattr(example, "actions", [])
        )
        env = domain.new_env()
        seen: list[tuple[str, _Output]] = []
        trace_flows: set[tuple[str, str, str]] = set()
        opened = False
        for index, action in enumerate(actions):
            if isinstance(action, Mapping):
                name, arguments = action.get("name"), action.get("arguments") or {}
            else:
                name, arguments = getattr(action, "name", None), getattr(action, "arguments", {}) or {}
            spec = tools.get(name) if isinstance(name, str) else None
            before = env.fork() if spec is not None and spec.kind == ToolKind.WRITE else None
            call = run_call(env, index, name, arguments)
            if spec is None or not call.ok:
                continue
            if spec.kind == ToolKind.READ and not opened:
                first_reads[name] += 1
            opened = True
            for arg, value in call.arguments.items():
                for leaf in set(_leaf_values(value, arg)):
                    for source, out in seen:
                        if source != name and leaf in out.values:
                            trace_flows.add((source, name, arg))
            out = record_call(name, call.arguments, call.observation)
            seen.append((name, out))
            if before is not None:
                for change in env.changed_records():
                    previous = before.record(change.table, change.key)
                    if previous != change.after:
                        write_samples[name].append((change.table, previous, change.after))
        for key in trace_flows:
            flows[key] += 1
        gold += 1

    # 2. probes: each read tool on a few real users, arguments from their records and outputs
    user_fields: set[str] = set()
    probes = 0
    try:
        user_ids = list(domain.user_ids())
    except Exception:
        user_ids = []
    chosen = (
        random.Random(0).sample(sorted(user_ids), min(probe_users, len(user_ids))) if user_ids else [None]
    )
    reads = [spec for spec in tools.values() if spec.kind == ToolKind.READ]
    probe_flows: dict[tuple[str, str, str], int] = defaultdict(int)

    def grow(pool: Pool, data: Any, source: str) -> None:
        for name, values in _user_pool(data).items():
            known = {json.dumps(v, sort_keys=True, default=str) for v, _ in pool[name]}
            for value in values:
                if json.dumps(value, sort_keys=True, default=str) not in known:
                    pool[name].append((value, source))

    for user_id in chosen:
        pool: Pool = defaultdict(list)
        if user_id is not None:
            try:
                context = domain.user_context(user_id)
            except Exception:  # a user the domain cannot describe: probe with outputs only
                context = {}
            grow(pool, context, "user")
            user_fields.update(pool)
        env = domain.new_env()
        done: set[tuple[str, str]] = set()
        for _ in range(probe_rounds):
            for spec in reads:
                base = _fill_arguments(spec, pool)
                if base is None:
                    continue
                variants = [base]
                for arg in spec.parameters.get("required") or []:  # the same call fed by each tool
                    for source in sorted({src for _, src in pool.get(arg) or pool.get(singular(arg)) or []}):
                        if source not in ("user", base[1].get(arg)):
                            variant = _fill_arguments(spec, pool, prefer=(arg, source))
                            if variant is not None:
                                variants.append(variant)
                for arguments, sources in variants[:6]:
                    signature = (spec.name, json.dumps(arguments, sort_keys=True, default=str))
                    if signature in done:
                        continue
                    done.add(signature)
                    call = run_call(env.fork(), probes, spec.name, arguments)
                    probes += 1
                    if not call.ok:
                        continue
                    record_call(spec.name, arguments, call.observation)
                    for arg, source in sources.items():
                        if source != "user" and source != spec.name:
                            probe_flows[(source, spec.name, arg)] += 1
                    grow(pool, _decode(call.observation), spec.name)
    return _Observations(
        outputs=dict(outputs),
        arg_values=dict(arg_values),
        flows=dict(flows),
        probe_flows=dict(probe_flows),
        call_examples=good_calls,
        first_reads=dict(first_reads),
        write_samples=dict(write_samples),
        user_fields=user_fields,
        gold_traces=gold,
        probe_calls=probes,
    )


_JUNK = {"string": "zz-no-such-value-404", "integer": 987654321}


def _accept_probe(domain: Domain, obs: _Observations, max_calls: int) -> int:
    """Which output values each tool's validated arguments accept (foreign-key discovery).

    For each argument of a tool ``B`` that rejects a junk value (so the tool validates it),
    values sampled from every other tool's outputs are tried in its place, the rest of
    ``B``'s arguments coming from one successful call of ``B``. Each call runs on a fork of a
    pristine environment, so writes are safe to try. An accepted value from ``A``'s output
    is evidence that ``A`` can feed ``B``. Returns the number of calls made.
    """
    tools = _chain_tools(domain)
    pristine = domain.new_env()
    calls = 0
    for target in tools.values():
        props = _properties(target)
        required = list(target.parameters.get("required") or [])
        base = obs.call_examples.get(target.name)
        for argument in required:
            schema = props.get(argument, {})
            kind = _arg_type(schema)
            array = kind == "array"
            if array:
                kind = _arg_type(schema.get("items") or {}) or "string"
            if kind not in _JUNK or "enum" in schema:
                continue
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
                ranked = sorted(  # same-named fields first, then id-like ones, then the rest
                    out.samples.items(),
                    key=lambda item: (
                        item[0] not in (argument, singular(argument)),
                        not is_key_like(item[0]),
                        item[0],
                    ),
                )
                values = [
                    v
                    for key, vs in ranked
                    for v in vs
                    if _matches_type(v, kind)
                    and (isinstance(v, str) and len(v) <= 60 or _int_id(v, key or argument))
                ]
                for value in values[:8]:
                    if calls >= max_calls:
                        return calls
                    calls += 1
                    if run_call(
                        pristine.fork(), calls, target.name, {**others, argument: [value] if array else value}
                    ).ok:
                        obs.accepted[(source.name, target.name, argument)] = value
                        break
    return calls


# -- evidence ---------------------------------------------------------------------------------
def _argument_evidence(
    source: ToolSpec, target: ToolSpec, argument: str, schema: Mapping[str, Any], obs: _Observations
) -> list[dict[str, Any]]:
    out = obs.outputs.get(source.name)
    evidence: list[dict[str, Any]] = []
    if out is None:
        return evidence
    name = argument
    one = singular(argument)
    key_like = is_key_like(argument)
    # (a) names and types
    if name in out.fields or one in out.fields:
        evidence.append(
            {
                "type": "field",
                "argument": name,
                "field": name if name in out.fields else one,
                "score": SCORE_FIELD_KEY if key_like else SCORE_FIELD_PLAIN,
            }
        )
    elif key_like:
        suffix = sorted(f for f in out.fields if "_" in f and is_key_like(f) and one.endswith("_" + f))
        if suffix:
            evidence.append(
                {"type": "field_suffix", "argument": name, "field": suffix[-1], "score": SCORE_FIELD_SUFFIX}
            )
    nested = [
        p
        for p in _nested_properties(schema)
        if is_key_like(p) and (p in out.fields or singular(p) in out.fields)
    ]
    if nested:
        evidence.append(
            {"type": "field_nested", "argument": name, "field": nested[0], "score": SCORE_FIELD_NESTED}
        )
    # (b) observed values
    used = obs.arg_values.get((target.name, argument), set())
    common = used & out.values
    kind = _arg_type(schema)
    scalar = out.scalar and kind in (None, "string", "integer")
    if key_like and (scalar or common) and _mentions(source, argument):
        evidence.append({"type": "returns", "argument": name, "score": SCORE_RETURNS})
    flows = obs.flows.get((source.name, target.name, argument), 0)
    if flows:
        evidence.append(
            {"type": "gold_flow", "argument": name, "traces": flows, "score": min(0.95, 0.5 + 0.1 * flows)}
        )
    accepted = obs.probe_flows.get((source.name, target.name, argument), 0)
    if accepted:
        evidence.append(
            {"type": "probe_flow", "argument": name, "calls": accepted, "score": SCORE_PROBE_FLOW}
        )
    example = obs.accepted.get((source.name, target.name, argument))
    if example is not None:
        evidence.append({"type": "accepts", "argument": name, "example": example, "score": SCORE_ACCEPTS})
    if common:
        evidence.append(
            {"type": "value_match", "argument": name, "example": min(common), "score": SCORE_VALUE_MATCH}
        )
    elif key_like:
        # only distinctive shapes: with a literal such as '#' or '_' ("#W\d{7}", not "\d{10}")
        shapes = {shape(v) for v in [*used, *_description_examples(schema)] if _LITERAL.search(v)}
        if shapes:
            pattern = re.compile("|".join(f"(?:{s})" for s in sorted(shapes)))
            hit = next((v for v in sorted(out.values) if pattern.fullmatch(v)), None)
            if hit is not None:
                evidence.append({"type": "format", "argument": name, "example": hit, "score": SCORE_FORMAT})
    return evidence


def _edge(
    source: ToolSpec, target: ToolSpec, obs: _Observations
) -> tuple[float, list[dict[str, Any]], list[str]]:
    props = _properties(target)
    required = _required(target)
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


# -- pruning ----------------------------------------------------------------------------------
def _state_fields(record: Any) -> dict[str, Any]:
    """Top-level fields that can hold a lifecycle state: words or None, not numbers or ids."""
    if not isinstance(record, Mapping):
        return {}
    return {k: v for k, v in record.items() if v is None or isinstance(v, str) and not _specific(v)}


def _dead_entity_pairs(
    obs: _Observations, writes: list[str], min_samples: int = 2
) -> dict[tuple[str, str], str]:
    """``(W1, W2) -> reason`` for writes whose result ``W2`` was never seen to act on."""
    pre: dict[tuple[str, str, str], list[Any]] = defaultdict(list)  # (write, table, field) -> before values
    post: dict[tuple[str, str, str], set[Any]] = defaultdict(set)
    movers: dict[tuple[str, str], set[str]] = defaultdict(set)  # (table, field) -> writes changing it
    for write, samples in obs.write_samples.items():
        for table, before, after in samples:
            b, a = _state_fields(before), _state_fields(after)
            for name in set(b) & set(a) if before is not None and after is not None else set(b) | set(a):
                if before is not None:
                    pre[(write, table, name)].append(b.get(name))
                if after is not None:
                    post[(write, table, name)].add(a.get(name))
                if before is not None and after is not None and b.get(name) != a.get(name):
                    movers[(table, name)].add(write)
    starts: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for (write, table, name), values in pre.items():
        starts[(table, name)].update(values)
    ends: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for (write, table, name), values in post.items():
        ends[(table, name)].update(values)
    # lifecycle fields: some write moves them into a value no write was ever seen starting from
    lifecycle = [key for key in movers if ends[key] - starts[key]]
    lifecycle.sort(key=lambda key: (-len(movers[key]), key))  # the most-moved field (status) first
    pairs: dict[tuple[str, str], str] = {}
    for first in writes:
        for second in writes:
            if first == second:
                continue
            for table, name in lifecycle:
                after = post.get((first, table, name))
                before = pre.get((second, table, name), [])
                if not after or len(before) < min_samples:
                    continue
                if not after & set(before):
                    pairs[(first, second)] = (
                        f"{table}.{name} is {sorted(map(str, after))} after {first}; "
                        f"{second} was only seen acting on {sorted(map(str, set(before)))}"
                    )
                    break
    return pairs


def _hook_pairs(domain: Domain, attribute: str) -> list[tuple[str, str]]:
    value = getattr(domain, attribute, None)
    if callable(value):
        value = value()
    pairs = []
    for item in value or ():
        source, target = item
        pairs.append((str(source), str(target)))
    return pairs


def _hook_names(domain: Domain, attribute: str) -> list[str] | None:
    value = getattr(domain, attribute, None)
    if callable(value):
        value = value()
    return None if value is None else [str(v) for v in value]


# -- the graph --------------------------------------------------------------------------------
class ApiGraph(nx.DiGraph):
    """A networkx DiGraph of tool names with evidence-weighted edges, plus walks and exports.

    Node attributes: ``kind`` ("read"/"write"), ``entry`` (bool), ``entry_weight``,
    ``required`` (comma-separated argument names), ``observed`` (outputs seen).
    Edge attributes: ``weight`` in [0, 1], ``arguments`` (comma-separated arguments of the
    target this source can feed), ``evidence`` (list of dicts). ``graph["pruned"]`` lists the
    dropped candidate edges with their reasons.
    """

    @property
    def entry_points(self) -> list[str]:
        return [n for n, data in self.nodes(data=True) if data.get("entry")]

    @property
    def read_tools(self) -> list[str]:
        return [n for n, data in self.nodes(data=True) if data.get("kind") == ToolKind.READ.value]

    @property
    def write_tools(self) -> list[str]:
        return [n for n, data in self.nodes(data=True) if data.get("kind") == ToolKind.WRITE.value]

    def random_walk(self, rng: random.Random, max_len: int = 6, **options: Any) -> list[str] | None:
        return random_walk(self, rng, max_len, **options)

    def to_graphml(self, path: str | Path) -> Path:
        return to_graphml(self, path)

    def to_dot(self) -> str:
        return to_dot(self)

    def stats(self) -> dict[str, Any]:
        return {
            "domain": self.graph.get("domain"),
            "nodes": self.number_of_nodes(),
            "edges": self.number_of_edges(),
            "reads": len(self.read_tools),
            "writes": len(self.write_tools),
            "entry_points": self.entry_points,
            "pruned": len(self.graph.get("pruned", [])),
        }


def build_api_graph(
    domain: Domain,
    *,
    min_weight: float = MIN_WEIGHT,
    probe_users: int = 8,
    probe_rounds: int = 3,
    max_accept_calls: int = 2000,
) -> ApiGraph:
    """Build the dependency graph of ``domain`` from its schemas, examples and data (uncached)."""
    tools = _chain_tools(domain)
    obs = _observe(domain, probe_users, probe_rounds)
    accept_calls = _accept_probe(domain, obs, max_accept_calls) if max_accept_calls else 0
    graph = ApiGraph(
        domain=domain.name,
        gold_traces=obs.gold_traces,
        probe_calls=obs.probe_calls,
        accept_calls=accept_calls,
    )
    graph.graph["excluded"] = [spec.name for spec in domain.tools if spec.name not in tools]
    for name, spec in tools.items():
        graph.add_node(
            name,
            kind=spec.kind.value,
            required=",".join(spec.parameters.get("required") or []),
            key_args=",".join(a for a in _required(spec) if is_key_argument(a, _properties(spec).get(a, {}))),
            observed=obs.outputs.get(name, _Output()).count,
            entry=False,
            entry_weight=0.0,
        )

    # candidate edges with their evidence
    candidates: dict[tuple[str, str], dict[str, Any]] = {}
    for source in tools.values():
        for target in tools.values():
            if source.name == target.name:
                continue
            weight, evidence, fed = _edge(source, target, obs)
            if weight >= min_weight:
                candidates[(source.name, target.name)] = {
                    "weight": weight,
                    "evidence": evidence,
                    "arguments": fed,
                }

    # pruning
    pruned: list[dict[str, str]] = []
    writes = [n for n, s in tools.items() if s.kind == ToolKind.WRITE]
    dead = _dead_entity_pairs(obs, writes)
    resolvers = {  # tools whose whole output is an id they say they return (find_user_id_by_email)
        name: {
            e["argument"]
            for (s, t), c in candidates.items()
            if s == name
            for e in c["evidence"]
            if e["type"] == "returns"
        }
        for name in tools
        if obs.outputs.get(name) and obs.outputs[name].scalar
    }
    forbidden = _hook_pairs(domain, "forbidden_edges")
    for (source, target), data in sorted(candidates.items()):
        reason = None
        if any(fs in ("*", source) and ft in ("*", target) for fs, ft in forbidden):
            reason = "forbidden by the domain (forbidden_edges)"
        elif (source, target) in dead:
            reason = "dead entity: " + dead[(source, target)]
        elif (
            resolvers.get(target)
            and obs.outputs.get(source)
            and resolvers[target] <= obs.outputs[source].fields
        ):
            reason = f"redundant: {source} already outputs {', '.join(sorted(resolvers[target]))}"
        if reason:
            pruned.append({"source": source, "target": target, "reason": reason})
            continue
        graph.add_edge(
            source,
            target,
            weight=data["weight"],
            arguments=",".join(data["arguments"]),
            evidence=data["evidence"],
        )
    graph.graph["pruned"] = pruned

    # entry points
    explicit = _hook_names(domain, "entry_tools")
    reads = [n for n, s in tools.items() if s.kind == ToolKind.READ]
    if explicit is not None:
        entries = {n: 1.0 for n in explicit if n in tools}
    elif obs.first_reads:
        entries = {n: float(c) for n, c in obs.first_reads.items() if n in reads}
    else:
        entries = {}
        for name in reads:
            required = tools[name].parameters.get("required") or []
            if required and all(
                arg in obs.user_fields or singular(arg) in obs.user_fields for arg in required
            ):
                entries[name] = 1.0
    if explicit is None:
        for name in reads:  # reads that need nothing from anyone
            if not tools[name].parameters.get("required") and graph.out_degree(name):
                entries.setdefault(name, 0.5)
    for name, weight in entries.items():
        graph.nodes[name]["entry"] = True
        graph.nodes[name]["entry_weight"] = round(weight, 3)
    return graph


_CACHE: weakref.WeakKeyDictionary[Domain, ApiGraph] = weakref.WeakKeyDictionary()


def api_graph(domain: Domain) -> ApiGraph:
    """The dependency graph of ``domain``, built once per domain object (cached)."""
    graph = _CACHE.get(domain)
    if graph is None:
        graph = _CACHE[domain] = build_api_graph(domain)
    return graph


def clear_cache() -> None:
    _CACHE.clear()


# -- random walks -----------------------------------------------------------------------------
def _kind(graph: nx.DiGraph, node: str) -> str | None:
    return graph.nodes[node].get("kind")


def _distance_to(graph: nx.DiGraph, targets: Iterable[str]) -> dict[str, int]:
    """Fewest edges from each node to one of ``targets`` (a target itself: 0)."""
    distance = {n: 0 for n in targets if n in graph}
    frontier = list(distance)
    while frontier:
        following = []
        for node in frontier:
            for previous in graph.predecessors(node):
                if previous not in distance:
                    distance[previous] = distance[node] + 1
                    following.append(previous)
        frontier = following
    return distance


def _split(value: Any) -> list[str]:
    return [part for part in str(value or "").split(",") if part]


def _covered(graph: nx.DiGraph, path: list[str], write: str) -> bool:
    """Whether the chain so far can feed every id-like argument of ``write`` that some tool feeds."""
    feedable: set[str] = set()
    fed: set[str] = set()
    for source in graph.predecessors(write):
        arguments = set(_split(graph.edges[source, write].get("arguments")))
        feedable |= arguments
        if source in path:
            fed |= arguments
    needed = set(_split(graph.nodes[write].get("key_args"))) & feedable
    return needed <= fed


def _pick(rng: random.Random, options: list[str], weights: list[float]) -> str:
    total = sum(weights)
    if total <= 0:
        return options[rng.randrange(len(options))]
    point = rng.random() * total
    for option, weight in zip(options, weights):
        point -= weight
        if point < 0:
            return option
    return options[-1]


def random_walk(
    graph: nx.DiGraph,
    rng: random.Random,
    max_len: int = 6,
    *,
    min_len: int = 2,
    max_writes: int = 2,
    stop_prob: float = 0.6,
    start: str | None = None,
    end: str | None = None,
    cover: bool = True,
    tries: int = 30,
) -> list[str] | None:
    """A plausible chain of tool names: starts at an entry point, follows edges, ends in a write.

    ``graph`` is an :class:`ApiGraph` or any DiGraph with the same node/edge attributes (a
    GraphML round trip works). Successors are drawn in proportion to edge weight, only among
    those from which a write (or ``end``) is still reachable within ``max_len``; while the
    chain is shorter than ``min_len`` reads are preferred, so writes come after lookups.
    After each write the walk stops with probability ``stop_prob`` (always after
    ``max_writes`` writes, at ``max_len``, or when no further write can be reached); with
    ``end`` it runs until it reaches that write. Nodes are not revisited. With ``cover`` a
    write is only entered once the chain holds, for each of its id-like arguments that some
    tool can feed, a tool that feeds it (``book_reservation`` needs a flight search, not
    just the user's details). ``start`` forces the first tool (default: an entry point,
    drawn by ``entry_weight``).

    Returns None when no such chain exists (no entry point reaches a write within
    ``max_len``, or ``tries`` attempts hit dead ends). Deterministic given ``rng``'s state.
    """
    write = ToolKind.WRITE.value
    if max_len < 1 or (end is not None and (end not in graph or _kind(graph, end) != write)):
        return None
    targets = [end] if end is not None else [n for n in graph if _kind(graph, n) == write]
    distance = _distance_to(graph, targets)
    if start is not None:
        entries = [start] if start in graph else []
    else:
        entries = sorted(n for n, data in graph.nodes(data=True) if data.get("entry"))
    entries = [n for n in entries if n in distance and distance[n] + 1 <= max_len]
    if not entries:
        return None
    entry_weights = [float(graph.nodes[n].get("entry_weight") or 1.0) for n in entries]
    for _ in range(max(1, tries)):
        path = [_pick(rng, entries, entry_weights)]
        writes = 0
        while True:
            node = path[-1]
            if _kind(graph, node) == write:
                writes += 1
                if end is not None:
                    if node == end:
                        if len(path) >= min_len:
                            return path
                        break
                elif len(path) >= min_len and (
                    writes >= max_writes or len(path) >= max_len or rng.random() < stop_prob
                ):
                    return path
            room = max_len - len(path)
            options = [
                s
                for s in sorted(graph.successors(node))
                if s not in path
                and s in distance
                and distance[s] + 1 <= room
                and not (cover and _kind(graph, s) == write and not _covered(graph, path, s))
                and not (
                    _kind(graph, s) == write and s != end and writes + 1 >= max_writes and end is not None
                )
            ]
            if len(path) + 1 < min_len:  # lookups first
                reads = [s for s in options if _kind(graph, s) != write]
                options = reads or options
            if not options:
                if end is None and _kind(graph, node) == write and len(path) >= min_len:
                    return path
                break  # dead end: try again
            path.append(
                _pick(rng, options, [float(graph.edges[node, s].get("weight", 1.0)) for s in options])
            )
    return None


# -- exports ----------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def to_graphml(graph: nx.DiGraph, path: str | Path) -> Path:
    """Write the graph as GraphML (evidence lists become JSON strings); returns the path."""
    plain = nx.DiGraph()
    plain.graph.update({k: _plain(v) for k, v in graph.graph.items()})
    for node, data in graph.nodes(data=True):
        plain.add_node(node, **{k: _plain(v) for k, v in data.items() if v is not None})
    for source, target, data in graph.edges(data=True):
        plain.add_edge(source, target, **{k: _plain(v) for k, v in data.items() if v is not None})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(plain, path)
    return path


def _quote(text: Any) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: nx.DiGraph) -> str:
    """The graph in Graphviz DOT: entry points as ellipses, writes as boxes, weights as labels."""
    name = graph.graph.get("domain") or "api_graph"
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;"]
    for node, data in graph.nodes(data=True):
        kind = data.get("kind", "")
        shape_name = "box" if kind == ToolKind.WRITE.value else "ellipse"
        style = ', style="bold"' if data.get("entry") else ""
        lines.append(f"  {_quote(node)} [kind={_quote(kind)}, shape={shape_name}{style}];")
    for source, target, data in graph.edges(data=True):
        weight = float(data.get("weight", 1.0))
        label = data.get("arguments", "")
        lines.append(
            f"  {_quote(source)} -> {_quote(target)} [weight={weight:.3f}, label={_quote(label)}, "
            f"penwidth={1 + 2 * weight:.2f}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def describe(graph: nx.DiGraph) -> str:
    """A short text listing of the edges, strongest first (for logs and the CLI)."""
    rows = sorted(graph.edges(data=True), key=lambda e: (-e[2].get("weight", 0), e[0], e[1]))
    return "\n".join(f"{s} -> {t}  {d.get('weight', 0):.2f}  ({d.get('arguments', '')})" for s, t, d in rows)
