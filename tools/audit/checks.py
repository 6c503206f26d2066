"""The audit of one conversation: what its assistant did, checked by rules, not judges.

A conversation can end in the right state by luck: an id nobody gave the assistant that
happened to be right, a write the user never agreed to. Such data teaches guessing. The
audit replays the assistant's calls on a fresh environment and checks, per call:

* ``calls``: the tool exists and its arguments are a JSON object (else the call is named and
  skipped; the audit never crashes on data);
* ``grounding``: every argument value was said by the user before the call, or returned by
  an earlier call (as the replay returns it: a tool result in the data could be made up), or
  is fixed by the schema, a declared free text
  or a documented derivation (the rules of :mod:`apigen_mt.tools.checks.grounding`, without
  its lookups: a conversation shows the lookups it made);
* ``policy``: the domain's rules over the calls the conversation executed;
* ``confirmation``: each write the policy guards (``Domain.confirmed_writes``) came after the
  user's explicit yes (:func:`is_confirmation`) answering the assistant's last message, a
  question, one yes per write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_mt.domains.base import Domain, ToolKind
from apigen_mt.tools.audit.conversation import Conversation, read_conversations
from apigen_mt.tools.checks.grounding import call_amounts, shown_path, unobtainable_arguments
from apigen_mt.tools.checks.policy import policy_violations
from apigen_mt.tools.executor import ExecutionTrace, run_call
from apigen_mt.tools.provenance.knowledge import Knowledge
from apigen_mt.tools.provenance.said import Said

__all__ = ["AUDIT_CHECKS", "AuditResult", "audit_conversation", "audit_rows", "is_confirmation"]

AUDIT_CHECKS = ("calls", "grounding", "policy", "confirmation")

_YES = re.compile(r"\b(yes|yeah|yep|yup|confirm(?:ed)?|go ahead|proceed|please do|do it|sure|correct|ok(?:ay)?)\b", re.I)
_NO = re.compile(r"\b(no|nope|not|don'?t|never|wait|stop|cancel|hold on|unsure)\b", re.I)
_SENTENCE = re.compile(r"[^.!?\n]*[.!?\n]?")


def is_confirmation(text: str) -> bool:
    """The user's explicit yes: the first sentence says it, asks nothing and negates nothing
    (``"Yes, go ahead."``; not ``"Sure?"``, ``"No, wait."``, ``"That is not correct."``)."""
    first = next((m.group().strip() for m in _SENTENCE.finditer(text.strip()) if m.group().strip()), "")
    return bool(_YES.search(first)) and not _NO.search(first) and not first.endswith("?")


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
    said = Said("")  # what the user has said so far
    asked = False  # the assistant's last message asked the user something, not yet answered
    yes_at: int | None = None  # the user's yes to the assistant's last question, if it was one
    for number, turn in enumerate(conversation.turns):
        if turn.role == "user":
            user_words.append(turn.text)
            said = Said("\n".join(user_words))
            if asked:  # the user's answer to the assistant's question
                yes_at = number if is_confirmation(turn.text) else None
                asked = False
        elif turn.role == "tool":  # what the replay returned is learnt at the call: a result in the data
            continue                # could be made up, and would vouch for the values after it
        elif turn.role == "assistant":
            if turn.text.strip():  # it speaks again: a yes before this answers something else
                asked, yes_at = "?" in turn.text, None
            for call in turn.calls:
                where = f"turn {number} {call.name or '(no name)'}"
                spec = domain.tool(call.name) if call.name else None
                if call.problem is not None or spec is None:
                    result.fail("calls", f"{where}: {call.problem or f'unknown tool {call.name!r}'}")
                    continue
                amounts = call_amounts(domain, call.name, call.arguments, env)
                for path, value in unobtainable_arguments(domain, call.name, call.arguments, said, knowledge,
                                                          amounts=amounts):
                    result.fail("grounding", f"{where}{shown_path(path)} = {value!r} was not said by the user, not "
                                "returned by an earlier tool result, not fixed by the schema and not derived")
                if call.name in domain.confirmed_writes:
                    if yes_at is None:
                        result.fail("confirmation", f"{where}: the user did not confirm this write explicitly "
                                    "(a yes answering the assistant's last question)")
                    yes_at = None
                executed = run_call(env, len(trace.calls), call.name, call.arguments, snapshot=True)
                trace.calls.append(executed)
                if executed.ok:
                    knowledge.add(executed.observation, f"{where}'s result", call.name)
                    if spec.kind is ToolKind.WRITE:
                        knowledge.add_amounts(amounts, f"what {where} costs")
                knowledge.add_own(call.arguments, f"{where}'s own arguments")
    for reason in policy_violations(domain, trace):
        result.fail("policy", reason)
    return result


def audit_rows(domain: Domain, path: str | Path) -> Iterator[dict[str, Any]]:
    """The audit's JSON row per conversation of a file (:func:`~.conversation.read_conversations`),
    with its line number for JSON lines; an unreadable entry is a row failing ``format``."""
    for number, conversation, error in read_conversations(path):
        if conversation is None:
            row = {"id": None, "passed": False, "failed_checks": ["format"], "reasons": [f"format: {error}"]}
        else:
            try:
                row = audit_conversation(domain, conversation).to_json()
            except (RecursionError, ValueError, OverflowError, TypeError) as failure:  # data no rule expects
                row = {"id": conversation.id, "passed": False, "failed_checks": ["format"],
                       "reasons": [f"format: the conversation could not be audited ({type(failure).__name__}: {failure})"]}
        if number is not None:
            row["line"] = number
        yield row
