"""Policy check: the domain's rules, written as code, run over the execution trace."""

from __future__ import annotations

from apigen_mt.domains.base import Domain
from apigen_mt.tools.executor import ExecutionTrace


def policy_violations(domain: Domain, trace: ExecutionTrace, *, generated: bool = False) -> list[str]:
    """``[rule name] message`` for every breach of every rule; a crashing rule is reported.
    ``generated`` applies the domain's rules for generated data (``generation_policy_rules``)."""
    reasons = []
    for rule in domain.generation_policy_rules if generated else domain.policy_rules:
        try:
            messages = rule.check(trace)
        except Exception as error:  # a rule bug must not hide the other rules' findings
            messages = [f"rule crashed ({type(error).__name__}: {error}); fix the rule"]
        reasons.extend(f"[{rule.name}] {message}" for message in messages)
    return reasons
