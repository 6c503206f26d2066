"""``apigen-mt check-domain``: proof that a domain is fit to verify data against.

Every verification stands on the domain: the execution check, the policy rules and the
verifier replay calls on fresh environments and compare states. A domain that leaks state
between environments, answers the same call differently twice, or marks a tool ``read``
while it writes makes all of them wrong without an error.

The runs (sequences of calls, each from a fresh environment): the examples' actions, the
domain's own :meth:`~apigen_mt.domains.base.Domain.check_runs` (BFCL: its ground truth), and
grounded walks sampled over the data. The checks:

* ``contract``: every tool has an object schema, a description and a kind; the policy text
  is there; the rules load and name real tools.
* ``examples``: every example is a valid blueprint of this domain (format, execution, policy).
* ``isolation``: no call writes to the frozen pristine state, and a fresh environment's whole
  state (:meth:`~apigen_mt.domains.base.Environment.dump`) stays the pristine one after every
  call of every run, whatever its kind or outcome (after every run where a dump is slow).
* ``determinism``: two fresh environments start equal, and every run replayed on a second fresh
  environment, other runs having gone in between, gives the same observations and state.
* ``kinds``: a ``read`` tool never changes the state; a ``write`` tool changes it at least once.
* ``data``: references between tables resolve (a record field named after another table, its
  key field or ``<singular table>_id`` names records that exist).

``contract`` and ``examples`` are the cheap part (:func:`check_domain` with ``cheap=True``):
``generate`` runs them for a user domain before any model is called.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.blueprint import blueprint_json
from apigen_mt.domains.base import Domain, PolicyRule, ToolKind
from apigen_mt.tools.api_graph.values import singular
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.executor import ExecutedCall, run_call
from apigen_mt.tools.state_diff import StateDiff, canonical_json, field_changes, state_hash

__all__ = ["CHECKS", "DomainReport", "Finding", "cheap_problems", "check_domain"]

CHECKS = ("contract", "examples", "runs", "isolation", "determinism", "kinds", "data")
"""The report's sections, in order (``runs`` says what the last four ran on)."""
PER_CALL_DUMP_SECONDS = 0.005
"""A fresh environment dumped at most this fast is compared after every call; else after every run."""
MAX_SHOWN = 5  # problems listed per check; the rest are counted


@dataclass(frozen=True)
class Finding:
    """One check's verdict: ``ok`` with a summary, or a problem naming its cause."""

    check: str
    ok: bool
    detail: str
    warning: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "warning": self.warning, "detail": self.detail}


@dataclass
class DomainReport:
    """Everything :func:`check_domain` found, in check order."""

    domain: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "ok": self.ok, "findings": [f.to_json() for f in self.findings]}

    def render(self) -> str:
        width = max(len(c) for c in CHECKS)
        lines = [f"check-domain {self.domain}"]
        for finding in self.findings:
            status = "ok" if finding.ok and not finding.warning else ("note" if finding.ok else "FAIL")
            lines.append(f"  {finding.check:<{width}}  {status:<4}  {finding.detail}")
        failed = len(self.problems)
        lines.append(f"{failed} problem{'s' if failed != 1 else ''} found." if failed else "All checks passed.")
        return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _capped(check: str, problems: list[str]) -> list[Finding]:
    shown = [Finding(check, False, problem) for problem in problems[:MAX_SHOWN]]
    if len(problems) > MAX_SHOWN:
        shown.append(Finding(check, False, f"... and {len(problems) - MAX_SHOWN} more"))
    return shown


# -- the cheap part -------------------------------------------------------------------------


def _contract(domain: Domain) -> list[Finding]:
    problems: list[str] = []
    try:
        tools = list(domain.tools)
    except Exception as error:  # noqa: BLE001 - a broken domain is a finding, not a crash
        return [Finding("contract", False, f"the tools cannot be listed: {type(error).__name__}: {error}")]
    if not tools:
        problems.append("the domain has no tools")
    names = [spec.name for spec in tools]
    problems += [f"two tools are named {name!r}" for name in sorted({n for n in names if names.count(n) > 1})]
    for spec in tools:
        if not isinstance(spec.parameters, Mapping) or spec.parameters.get("type") != "object":
            problems.append(f"tool {spec.name!r}: its parameters are not a JSON schema of type object")
        if not str(spec.description or "").strip():
            problems.append(f"tool {spec.name!r} has no description (the LLMs choose tools by it)")
        if not isinstance(spec.kind, ToolKind):
            problems.append(f"tool {spec.name!r} has no kind (read, write or other), got {spec.kind!r}")
    try:
        policy = domain.policy
        if not isinstance(policy, str) or not policy.strip():
            problems.append("the policy text is empty (it is the assistant's system prompt)")
    except Exception as error:  # noqa: BLE001
        problems.append(f"the policy cannot be read: {type(error).__name__}: {error}")
    rules: list[Any] = []
    for attribute in ("policy_rules", "generation_policy_rules"):
        try:
            rules += list(getattr(domain, attribute))
        except Exception as error:  # noqa: BLE001
            problems.append(f"{attribute} cannot be loaded: {type(error).__name__}: {error}")
    for rule in {id(r): r for r in rules}.values():
        if not isinstance(rule, PolicyRule):
            problems.append(f"a rule is not a PolicyRule: {type(rule).__name__}")
        elif unknown := [t for t in rule.tools if t not in names]:
            problems.append(f"rule {rule.name!r} names tools the domain lacks: {unknown}")
    if problems:
        return _capped("contract", problems)
    counts = ", ".join(f"{n} {kind}" for kind, n in domain.tool_counts().items() if n)
    return [Finding("contract", True, f"{_plural(len(tools), 'tool')} ({counts}), a policy of "
                                      f"{_plural(len(domain.policy), 'character')}, {_plural(len({id(r) for r in rules}), 'rule')}")]


def _examples(domain: Domain, examples: Sequence[Mapping[str, Any]]) -> list[Finding]:
    if not examples:
        return [Finding("examples", True, "none given: the generator gets no few-shot examples, and the runs below "
                                          "use sampled calls only", warning=True)]
    own: list[str] = []
    benchmark: list[str] = []
    for number, example in enumerate(examples):
        result = validate_blueprint(domain, example)
        if not result.passed:
            problem = (f"example {example.get('id') or number!r} fails the {result.stage} check: "
                       f"{'; '.join(result.reasons[:2])}")
            source = example.get("source")
            (benchmark if isinstance(source, Mapping) and source.get("benchmark") else own).append(problem)
    findings = _capped("examples", own)
    valid = len(examples) - len(own) - len(benchmark)
    if benchmark:  # the benchmark's own gold tasks: the example sampler never shows these
        findings.append(Finding("examples", True, f"{len(benchmark)} of {len(examples)} come from the benchmark and fail "
                                                  f"its checks there too (never shown to the generator), e.g. {benchmark[0]}",
                                warning=True))
    if not own:
        findings.insert(0, Finding("examples", True, f"{valid} of {len(examples)} are valid blueprints of {domain.name}"))
    return findings


# -- runs: the examples' actions, the domain's check runs, sampled grounded walks ---------------


@dataclass
class _Run:
    """A sequence of calls run in order on one fresh environment."""

    name: str
    actions: list[Mapping[str, Any]]
    calls: list[ExecutedCall] = field(default_factory=list)
    final_hash: str = ""


def _runs(domain: Domain, examples: Sequence[Mapping[str, Any]], samples: int, seed: int) -> tuple[list[_Run], Finding]:
    """The runs, and the ``runs`` line saying what they are."""
    from apigen_mt.tools.grounded_walk import grounded_walk

    runs = [
        _Run(f"example {example.get('id', index)!r}", list(example["actions"]))
        for index, example in enumerate(examples)
        if isinstance(example.get("actions"), list) and example["actions"]
    ]
    own = [_Run(name, list(actions)) for name, actions in domain.check_runs()]
    walks: list[_Run] = []
    trouble = ""
    rng = random.Random(seed)
    for index in range(samples):
        try:
            walk = grounded_walk(domain, rng)
        except Exception as error:  # noqa: BLE001 - the other runs still go
            trouble = f"; sampling stopped: {type(error).__name__}: {error}"
            break
        if walk is None:
            trouble = f"; no more grounded walks could be sampled on the data (of {samples} asked)"
            break
        walks.append(_Run(f"sampled walk {index} ({' -> '.join(walk.chain)})", walk.actions))
    runs += own + walks
    parts = [_plural(len(runs) - len(own) - len(walks), "example"), _plural(len(own), "domain check run"),
             _plural(len(walks), "sampled walk")]
    calls = sum(len(run.actions) for run in runs)
    return runs, Finding("runs", True, f"{', '.join(parts)}: {_plural(calls, 'call')}{trouble}",
                         warning=bool(trouble) or not runs)


def _changes(env: Any, limit: int = 3) -> str:
    changes = StateDiff.of(env).changes
    shown = ", ".join(f"{c.table}[{c.key!r}]" for c in changes[:limit])
    return shown + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def _dump_difference(pristine: Mapping[str, Any], now: Mapping[str, Any], limit: int = 3) -> str:
    differing = [
        f"{table}[{key!r}]"
        for table in sorted(set(pristine) | set(now))
        for key in sorted(set(pristine.get(table) or {}) | set(now.get(table) or {}), key=str)
        if canonical_json((pristine.get(table) or {}).get(key)) != canonical_json((now.get(table) or {}).get(key))
    ]
    return ", ".join(differing[:limit]) + (f" and {len(differing) - limit} more" if len(differing) > limit else "")


@dataclass
class _Outcome:
    """What running every run once found."""

    isolation: list[str] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    start: list[str] = field(default_factory=list)  # fresh environments that differ from each other
    reads: dict[str, str] = field(default_factory=dict)  # read tool -> its first change of state
    write_ok: dict[str, int] = field(default_factory=dict)
    write_changed: dict[str, int] = field(default_factory=dict)


class _Pristine:
    """Compares fresh environments with the pristine state: after every call when a dump is
    quick, else after every run (then a leak names the run, not the call)."""

    def __init__(self, domain: Domain, outcome: _Outcome) -> None:
        self.domain = domain
        started = time.perf_counter()
        try:
            self.dump: dict[str, Any] | None = domain.new_env().dump()
        except NotImplementedError as error:
            self.dump = None
            outcome.notes.append(Finding("isolation", True, f"whole states not comparable: {error}", warning=True))
            return
        self.per_call = time.perf_counter() - started <= PER_CALL_DUMP_SECONDS
        self.text = canonical_json(self.dump)
        second = domain.new_env().dump()
        if canonical_json(second) != self.text:
            outcome.start.append(f"two fresh environments differ ({_dump_difference(self.dump, second)}): new_env() "
                                 "must build the same state every time (no clock, no randomness)")
            self.dump = None  # nothing to compare against

    def leaked(self, where: str) -> str | None:
        """A problem when a fresh environment is no longer the pristine state."""
        if self.dump is None:
            return None
        now = self.domain.new_env().dump()
        if canonical_json(now) == self.text:
            return None
        problem = (f"after {where} a fresh environment is no longer pristine: {_dump_difference(self.dump, now)} "
                   "changed in the state every environment starts from")
        self.dump, self.text = now, canonical_json(now)  # each leak reported once
        return problem


def _run_all(domain: Domain, runs: list[_Run]) -> _Outcome:
    outcome = _Outcome()
    pristine = _Pristine(domain, outcome)
    for run in runs:
        env = domain.new_env()
        for index, action in enumerate(run.actions):
            before = state_hash(env)
            call = run_call(env, index, action.get("name"), action.get("arguments", {}))
            run.calls.append(call)
            where = f"{run.name}, call {index} {call.name}"
            if call.error and call.error.startswith("PristineStateError:"):
                outcome.isolation.append(f"{where}: {call.error.removeprefix('PristineStateError: ')}")
            if pristine.per_call and (problem := pristine.leaked(f"{where} ({'ok' if call.ok else 'failed'})")):
                outcome.isolation.append(problem)
            spec = domain.tool(call.name)
            if spec is None or not call.ok:
                continue
            changed = state_hash(env) != before
            if spec.kind is ToolKind.READ and changed:
                outcome.reads.setdefault(spec.name, f"{run.name}, call {index}: {_changes(env)}")
            if spec.kind is ToolKind.WRITE:
                outcome.write_ok[spec.name] = outcome.write_ok.get(spec.name, 0) + 1
                outcome.write_changed[spec.name] = outcome.write_changed.get(spec.name, 0) + int(changed)
        if not pristine.per_call and (problem := pristine.leaked(f"{run.name} (calls: {', '.join(c.name for c in run.calls)})")):
            outcome.isolation.append(problem)
        run.final_hash = state_hash(env)
    return outcome


def _determinism(domain: Domain, runs: list[_Run]) -> list[str]:
    """Each run again on a fresh environment (the other runs went in between); one problem
    per tool (or run), with how often it showed."""
    found: dict[str, list[str]] = {}
    for run in runs:
        env = domain.new_env()
        for index, (action, first) in enumerate(zip(run.actions, run.calls, strict=False)):
            again = run_call(env, index, action.get("name"), action.get("arguments", {}))
            if (again.ok, again.error) != (first.ok, first.error):
                difference = f"{first.error or 'success'} then {again.error or 'success'}"
            elif canonical_json(again.observation) != canonical_json(first.observation):
                changes = field_changes(first.observation, again.observation)
                difference = changes[0].render() if changes else "the observations differ"
            else:
                continue
            found.setdefault(f"tool {first.name!r}", []).append(
                f"answered differently on a second fresh environment ({run.name}, call {index}: {difference})")
            break
        else:
            if state_hash(env) != run.final_hash:
                found.setdefault(run.name, []).append(f"ends in a different state on a second fresh environment: {_changes(env)}")
    return [
        f"{who} {where[0]}" + (f", and in {_plural(len(where) - 1, 'more run')}" if len(where) > 1 else "")
        + (". A tool must not read the clock, randomness or anything outside its environment" if who.startswith("tool") else "")
        for who, where in found.items()
    ]


def _references(dump: Mapping[str, Mapping[str, Any]]) -> tuple[int, list[str]]:
    """(references checked, dangling ones): a top-level field of a record that names another
    table (``loans``), that table's key field (``member_id``) or ``<singular table>_id``
    (``user_id`` for ``users``), holding a string or a list of strings."""
    tables = {name: rows for name, rows in dump.items() if rows and all(isinstance(r, Mapping) for r in rows.values())}
    key_fields: dict[str, str] = {}
    for name, rows in tables.items():
        first = next(iter(rows.values()))
        for field_name, value in first.items():
            if isinstance(value, str) and all(r.get(field_name) == key for key, r in rows.items()):
                key_fields[name] = field_name
                break
    checked, dangling = 0, []
    for name, rows in tables.items():
        own_key = key_fields.get(name)
        for target, target_rows in tables.items():
            if target == name:
                continue
            names = {target, key_fields.get(target), f"{singular(target)}_id", f"{singular(target)}_ids"} - {None, own_key}
            for key, record in rows.items():
                for field_name in names & set(record):
                    value = record[field_name]
                    values = value if isinstance(value, list) else [value]
                    if not values or not all(isinstance(v, str) for v in values):
                        continue
                    for item in values:
                        checked += 1
                        if item not in target_rows:
                            dangling.append(f"{name}[{key!r}].{field_name} names {item!r}, which is no record of {target}")
    return checked, dangling


def _data(domain: Domain) -> list[Finding]:
    try:
        dump = domain.new_env().dump()
    except NotImplementedError as error:
        return [Finding("data", True, f"not checkable: {error}", warning=True)]
    checked, dangling = _references(dump)
    if dangling:
        return _capped("data", dangling)
    if not checked:
        return [Finding("data", True, "no references between tables found to check", warning=True)]
    return [Finding("data", True, f"{_plural(checked, 'reference')} between tables checked: all resolve")]


# -- the report -------------------------------------------------------------------------------


def check_domain(domain: Domain, *, cheap: bool = False, samples: int = 12, seed: int = 0) -> DomainReport:
    """Every check of the module docstring (only ``contract`` and ``examples`` with ``cheap``).

    ``samples``: grounded walks drawn (with ``seed``) besides the examples and check runs."""
    report = DomainReport(domain.name)
    report.findings += _contract(domain)
    try:
        examples = [dict(blueprint_json(e)) for e in domain.example_blueprints()]
    except Exception as error:  # noqa: BLE001
        report.findings.append(Finding("examples", False, f"the examples cannot be loaded: {type(error).__name__}: {error}"))
        examples = []
    else:
        report.findings += _examples(domain, examples)
    if cheap:
        return report
    if not all(f.ok for f in report.findings if f.check == "contract"):
        report.findings.append(Finding("runs", True, "not run: the contract must hold first", warning=True))
        return report
    runs, summary = _runs(domain, examples, samples, seed)
    report.findings.append(summary)
    outcome = _run_all(domain, runs)
    writes = sum(outcome.write_ok.values())
    report.findings += outcome.notes
    report.findings += _capped("isolation", outcome.isolation) or [Finding(
        "isolation", True, f"{_plural(len(runs), 'run')} ({_plural(writes, 'successful write')}): fresh environments "
                           "stayed pristine")]
    report.findings += _capped("determinism", outcome.start + _determinism(domain, runs)) or [Finding(
        "determinism", True, f"{_plural(len(runs), 'run')} replayed: the same observations and states")]
    kind_problems = [f"tool {name!r} is marked read but changed the state ({where})" for name, where in outcome.reads.items()]
    kind_problems += [
        f"tool {name!r} is marked write but changed nothing in {_plural(count, 'successful call')}"
        for name, count in sorted(outcome.write_ok.items()) if outcome.write_changed.get(name, 0) == 0
    ]
    seen = f"{_plural(len(outcome.write_ok), 'write tool')} called, each changed it" if outcome.write_ok else "no write tool was called"
    report.findings += _capped("kinds", kind_problems) or [Finding("kinds", True, f"no read tool changed the state; {seen}")]
    unexercised = [s.name for s in domain.tools if s.kind is ToolKind.WRITE and s.name not in outcome.write_ok]
    if unexercised:
        report.findings.append(Finding("kinds", True, f"not exercised (no run called them successfully): "
                                                     f"{', '.join(unexercised)}", warning=True))
    report.findings += _data(domain)
    return report


def cheap_problems(domain: Domain) -> list[str]:
    """What ``generate`` checks of a user domain before any model call: contract and examples."""
    return [f"{f.check}: {f.detail}" for f in check_domain(domain, cheap=True).problems]
