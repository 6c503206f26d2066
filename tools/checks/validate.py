"""format -> execution -> policy -> grounding for one blueprint, stopping at the first failing stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.checks.execution import execute_blueprint, execution_errors
from apigen_mt.tools.checks.format import format_errors
from apigen_mt.tools.checks.grounding import grounding_errors
from apigen_mt.tools.checks.policy import policy_violations
from apigen_mt.tools.executor import ExecutionTrace
from apigen_mt.tools.state_diff import StateDiff

STAGES = ("format", "execution", "policy", "grounding")


@dataclass
class ValidationResult:
    """The outcome of stage 1. ``stage`` is the first failing stage, or ``ok``."""

    id: Any
    passed: bool
    stage: str
    reasons: list[str] = field(default_factory=list)
    diff: StateDiff | None = None
    trace: ExecutionTrace | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "passed": self.passed,
            "stage": self.stage,
            "reasons": self.reasons,
            "diff": self.diff.to_json() if self.diff is not None else None,
        }


def validate_blueprint(domain: Domain, raw: Any, *, grounding: bool = True) -> ValidationResult:
    """Run the rule-based checks on a raw (parsed JSON) blueprint (``grounding``: the last one
    too; ``apigen-mt validate --no-grounding`` and the gold-task measurements stop before it)."""
    blueprint_id = raw.get("id") if isinstance(raw, dict) else None
    problems = format_errors(raw, domain.name)
    if problems:
        return ValidationResult(blueprint_id, False, "format", problems)
    trace = execute_blueprint(domain, raw["actions"], raw.get("initial_state"))
    diff = StateDiff.of(trace.env)
    problems = execution_errors(trace, raw.get("assertions"))
    if problems:
        return ValidationResult(blueprint_id, False, "execution", problems, diff, trace)
    problems = policy_violations(domain, trace)
    if problems:
        return ValidationResult(blueprint_id, False, "policy", problems, diff, trace)
    if grounding:
        problems = grounding_errors(domain, raw, trace)
        if problems:
            return ValidationResult(blueprint_id, False, "grounding", problems, diff, trace)
    return ValidationResult(blueprint_id, True, "ok", [], diff, trace)
