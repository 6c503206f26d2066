"""Phase 2's acceptance test for one conversation (reward 1 or 0, with reasons).

Reward is 1 iff (a) replaying the conversation's tool calls on a fresh environment ends in
the same state as replaying the blueprint's actions on another fresh environment, and (b)
every expected output appears in some assistant message. (b) uses tau2's own rule (case-
insensitive substring, commas removed from the message) so verdicts agree with tau2's
evaluator on its tasks. Calls that errored change nothing, in both replays, as in tau2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_mt.domains.base import Domain
from apigen_mt.tools.executor import execute_actions
from apigen_mt.tools.state_diff import compare_states


@dataclass
class Verdict:
    """The verifier's answer: the reward and, when it is 0, why."""

    reward: float
    state_match: bool
    missing_outputs: list[str] = field(default_factory=list)
    state_differences: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [f"state: {r}" for r in self.state_differences] + [
            f"output not said: {o!r}" for o in self.missing_outputs
        ]

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
    actions = blueprint["actions"] if isinstance(blueprint, Mapping) else blueprint.actions
    outputs = blueprint["outputs"] if isinstance(blueprint, Mapping) else blueprint.outputs
    expected = execute_actions(domain.new_env(), actions).env
    actual = execute_actions(domain.new_env(), tool_calls).env
    differences = compare_states(expected, actual)
    missing = [output for output in outputs if not output_said(output, assistant_messages)]
    state_match = not differences
    return Verdict(
        reward=1.0 if state_match and not missing else 0.0,
        state_match=state_match,
        missing_outputs=missing,
        state_differences=differences,
    )
