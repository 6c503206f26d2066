"""The audit of one conversation: what its assistant did, checked by rules, not judges.

A conversation can end in the right state by luck: an id nobody gave the assistant that
happened to be right, a write the user never agreed to. Such data teaches guessing. The
audit replays the assistant's calls on a fresh environment and checks, per call:

* ``calls``: the tool exists and its arguments are a JSON object (else the call is named and
  skipped; the audit never crashes on data);
* ``grounding``: every argument value was said by the user before the call, or returned by
  an earlier tool result the assistant saw, or is fixed by the schema, a declared free text
  or a documented derivation (the rules of :mod:`apigen_mt.tools.checks.grounding`, without
  its lookups: a conversation shows the lookups it made);
* ``policy``: the domain's rules over the calls the conversation executed;
* ``confirmation``: each write the policy guards (``Domain.confirmed_writes``) came after an
  assistant message and the user's explicit yes, one yes per write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind
from apigen_mt.tools.audit.conversation import Conversation, read_conversations
from apigen_mt.tools.checks.grounding import call_amounts, unobtainable_arguments
from apigen_mt.tools.checks.policy import policy_violations
from apigen_mt.tools.executor import ExecutionTrace, run_call
from apigen_mt.tools.provenance.knowledge import Knowledge
from apigen_mt.tools.provenance.said import Said

__all__ = ["AUDIT_CHECKS", "AuditResult", "audit_conversation", "audit_rows", "is_confirmation"]

AUDIT_CHECKS = ("calls", "grounding", "policy", "confirmation")

_YES = re.compile(r"\b(yes|yeah|yep|yup|confirm(?:ed)?|go ahead|proceed|please do|do it|sure|correct|ok(?:ay)?)\b", re.I)
_NO = re.compile(r"^\W*(no|nope|don'?t|do not|wait|stop)\b", re.I)


def is_confirmation(text: str) -> bool:
    """The user's explicit yes (``"Yes, go ahead."``), not a refusal (``"No, wait."``)."""
    return bool(_YES.search(text)) and not _NO.search(text)


@dataclass
class AuditResult:
    id: Any
    failed_checks: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed_checks

    def fail(self, check: str, reason: str) -> None:
        if check not in self.failed_checks:
            self.failed_checks.append(check)
        self.reasons.append(f"{check}: {reason}")

    def to_json(self) -> dict[str, Any]:
        ordered = [check for check in AUDIT_CHECKS if check in self.failed_checks]
        return {"id": self.id, "passed": self.passed, "failed_checks": ordered, "reasons": list(self.reasons)}


def audit_conversation(domain: Domain, conversation: Conversation) -> AuditResult:
    """Run every check on ``conversation`` (see the module docstring)."""
    result = AuditResult(conversation.id)
    env = domain.new_env()
    trace = ExecutionTrace(env=env)
    knowledge = Knowledge()
    user_words: list[str] = []
    names: dict[str, str] = {}  # call id -> tool name, for the results' sources
    spoke_since_write = False  # an assistant message to the user since the last guarded write
    yes_at: int | None = None  # the turn of the user's last yes, if after the last guarded write
    for number, turn in enumerate(conversation.turns):
        if turn.role == "user":
            user_words.append(turn.text)
            yes_at = number if spoke_since_write and is_confirmation(turn.text) else yes_at
        elif turn.role == "tool":
            tool = turn.name or names.get(str(turn.call_id)) or None
            knowledge.add(turn.text, f"turn {number} ({tool or 'a tool'} result)", tool)
        elif turn.role == "assistant":
            if turn.text.strip():
                spoke_since_write = True
            for call in turn.calls:
                if call.id is not None:
                    names[call.id] = call.name
                where = f"turn {number} {call.name or '(no name)'}"
                spec = domain.tool(call.name) if call.name else None
                if call.problem is not None or spec is None:
                    result.fail("calls", f"{where}: {call.problem or f'unknown tool {call.name!r}'}")
                    continue
                said = Said("\n".join(user_words))
                amounts = call_amounts(domain, call.name, call.arguments, env)
                for path, value in unobtainable_arguments(domain, call.name, call.arguments, said, knowledge,
                                                          amounts=amounts):
                    result.fail("grounding", f"{where}{_shown(path)} = {value!r} was not said by the user, not "
                                "returned by an earlier tool result, not fixed by the schema and not derived")
                if call.name in domain.confirmed_writes:
                    if yes_at is None:
                        result.fail("confirmation", f"{where}: the user did not confirm this write explicitly "
                                    "(a yes after the assistant's last message about it)")
                    spoke_since_write, yes_at = False, None
                executed = run_call(env, len(trace.calls), call.name, call.arguments, snapshot=True)
                trace.calls.append(executed)
                if spec.kind is ToolKind.WRITE and executed.ok:
                    knowledge.add_amounts(amounts, f"what {where} costs")
                knowledge.add_own(call.arguments, f"{where}'s own arguments")
    for reason in policy_violations(domain, trace):
        result.fail("policy", reason)
    return result


def _shown(path: str) -> str:
    return "." + path.lstrip(".") if path else ""


def audit_rows(domain: Domain, path: str | Path) -> Iterator[dict[str, Any]]:
    """The audit's JSON row per conversation of a file (:func:`~.conversation.read_conversations`),
    with its line number for JSON lines; an unreadable entry is a row failing ``format``."""
    for number, conversation, error in read_conversations(path):
        if conversation is None:
            row = {"id": None, "passed": False, "failed_checks": ["format"], "reasons": [f"format: {error}"]}
        else:
            row = audit_conversation(domain, conversation).to_json()
        if number is not None:
            row["line"] = number
        yield row
