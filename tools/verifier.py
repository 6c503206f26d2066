"""Phase 2's acceptance test for one conversation (reward 1 or 0, with reasons).

Reward is 1 iff (a) replaying the conversation's tool calls on a fresh environment ends in
the same state as replaying the blueprint's actions on another fresh environment (both in
the blueprint's initial state, the user's calls on their device included), (b) the
blueprint's assertions hold after the conversation's calls, and (c) every expected output
appears in some assistant message; a blueprint's ``reward_basis`` (tau2's ``DB``,
``ENV_ASSERTION``, ``COMMUNICATE``) names the ones its reward rests on. (c) uses tau2's own
rule (case-insensitive substring, commas removed from the message) so verdicts agree with tau2's
evaluator on its tasks. Calls that errored change nothing, in both replays, as in tau2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.blueprint import blueprint_json
from apigen_mt.domains.base import Domain
from apigen_mt.tools.checks.execution import assertion_errors, start_env
from apigen_mt.tools.executor import execute_actions
from apigen_mt.tools.state_diff import compare_states


REWARD_BASIS = ("DB", "ENV_ASSERTION", "COMMUNICATE")
"""What a reward rests on unless a blueprint names its own ``reward_basis`` (tau2's names): the
final state (DB), the assertions and the outputs. A tau2 telecom task rests on its assertions
alone (a conversation that fixes the phone another way passes there); generated ones on all."""


@dataclass
class Verdict:
    """The verifier's answer: the reward and, when it is 0, why."""

    reward: float
    state_match: bool
    missing_outputs: list[str] = field(default_factory=list)
    state_differences: list[str] = field(default_factory=list)
    failed_assertions: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return ([f"state: {r}" for r in self.state_differences] + [f"assertion: {a}" for a in self.failed_assertions]
                + [f"output not said: {o!r}" for o in self.missing_outputs])

    def to_json(self) -> dict[str, Any]:
        return {"reward": self.reward, "state_match": self.state_match, "reasons": self.reasons}


def output_said(output: str, assistant_messages: Iterable[str]) -> bool:
    """tau2's communicate rule: ``output`` occurs in a message, ignoring case and commas."""
    needle = output.lower()
    return any(needle in (message or "").lower().replace(",", "") for message in assistant_messages)


def verify(
    domain: Domain,
    blueprint: Mapping[str, Any] | Any,
    tool_calls: Iterable[Mapping[str, Any] | Any],
    assistant_messages: Sequence[str],
) -> Verdict:
    """Compare a conversation's effect and words with the blueprint's."""
    data = blueprint_json(blueprint)
    start, problem = start_env(domain, data.get("initial_state"))
    if problem is not None:  # no world to compare in: nothing is verified
        return Verdict(reward=0.0, state_match=False, state_differences=[f"initial_state could not be built: {problem}"])
    expected = execute_actions(start.fork(), data.get("actions") or []).env
    actual = execute_actions(start, tool_calls).env
    differences = compare_states(expected, actual)
    failed = assertion_errors(actual, data.get("assertions"))
    missing = [output for output in data.get("outputs") or [] if not output_said(output, assistant_messages)]
    state_match = not differences
    basis = set(data.get("reward_basis") or REWARD_BASIS)
    passed = (("DB" not in basis or state_match) and ("ENV_ASSERTION" not in basis or not failed)
              and ("COMMUNICATE" not in basis or not missing))
    return Verdict(
        reward=1.0 if passed else 0.0,
        state_match=state_match,
        missing_outputs=missing,
        state_differences=differences,
        failed_assertions=failed,
    )
