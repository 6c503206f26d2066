"""Shared pieces of the per-domain policy-rule tests: building traces, the per-rule tests.

Each rule test module defines ``CASES = {rule name: (compliant, breaching)}`` where each
builder takes ``(data, domain)`` and returns a trace or a tuple of traces, then binds the
three generic tests with ``rule_tests(CASES, RULES, "<domain fixture>")``.
"""

from __future__ import annotations

import re

import pytest

from apigen_mt.domains.tau2bench.tasks import tau2_blueprints
from apigen_mt.tools.checks.execution import execute_blueprint
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.executor import ExecutedCall, ExecutionTrace


def act(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def run(domain, actions) -> ExecutionTrace:
    trace = execute_blueprint(domain, actions)
    assert not trace.failed, [call.error for call in trace.failed]
    return trace


def forged(domain, setup, name: str, arguments: dict) -> ExecutionTrace:
    """``setup`` run for real, then one call recorded as successful as if the tool allowed it."""
    trace = run(domain, setup)
    trace.calls.append(
        ExecutedCall(len(trace.calls), name, arguments, domain.tool(name).kind, observation={}, before=trace.env.fork())
    )
    return trace


def _traces(result):
    return result if isinstance(result, tuple) else (result,)


def rule_tests(cases, rules, domain_fixture: str):
    """The three tests every rule set gets: cases for every rule, pass, and flag with a reason."""
    by_name = {rule.name: rule for rule in rules}

    def test_every_rule_has_cases():
        assert set(cases) == set(by_name)
        for rule in rules:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", rule.name) and rule.description and rule.tools

    @pytest.mark.parametrize("name", sorted(cases))
    def test_rule_passes_compliant_trace(name, data, request):
        domain = request.getfixturevalue(domain_fixture)
        for trace in _traces(cases[name][0](data, domain)):
            assert by_name[name].check(trace) == [], [c.name for c in trace.calls]

    @pytest.mark.parametrize("name", sorted(cases))
    def test_rule_flags_breaching_trace(name, data, request):
        domain = request.getfixturevalue(domain_fixture)
        for trace in _traces(cases[name][1](data, domain)):
            messages = by_name[name].check(trace)
            assert messages, [c.name for c in trace.calls]
            assert all(re.search(r"actions\[\d+\] [a-z_]+", m) for m in messages), messages

    return test_every_rule_has_cases, test_rule_passes_compliant_trace, test_rule_flags_breaching_trace


# -- tau2's gold tasks ---------------------------------------------------------------------------
def documented_exceptions(module) -> set[str]:
    doc = module.__doc__
    section = doc[doc.index("Known gold exceptions"):]
    return set(re.findall(r"^- ``(tau2-[a-z]+-\d+)``", section, flags=re.M))


def gold_policy_failures(domain) -> tuple[int, dict[str, list[str]]]:
    """(cleanly executing gold tasks, {task id: policy reasons} of those failing policy)."""
    clean, failures = 0, {}
    for split in ("train", "test"):
        for blueprint in tau2_blueprints(domain.name, split):
            result = validate_blueprint(domain, blueprint.to_json())
            if result.stage == "execution":
                continue
            clean += 1
            if result.stage == "policy":
                failures[blueprint.id] = result.reasons
    return clean, failures
