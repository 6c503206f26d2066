"""The state of the blueprint graphs (Phase 1 and recombination).

One graph run (one LangGraph thread) makes one blueprint: propose, check, review, and on
failure write feedback and propose again, for a bounded number of rounds. Every value is
plain JSON (dicts, lists, strings) so checkpoints stay portable and readable, and the
state keeps every attempt, which is what the report needs to show where blueprints fail
and what the feedback loop bought.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["BlueprintState", "Phase1State", "Phase2State", "PipelineState", "RecombineState", "ReviewTask"]


@dataclass(kw_only=True)
class BlueprintState:
    """Fields shared by Phase 1 and recombination."""

    domain: str
    """The domain name (``retail``, ``bfcl.file_system``, a module path...)."""

    blueprint_id: str
    """The id the accepted blueprint gets; stable across rounds."""

    round: int = 0
    """The current round (1-based once proposing has started)."""

    proposal: dict[str, Any] | None = None
    """The current round's blueprint (JSON form), None when the proposer failed."""

    check: dict[str, Any] | None = None
    """The current round's last check: ``{"stage", "passed", "reasons", "diff"}``."""

    reviews: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """Every judge's review, each tagged with its ``round`` and ``judge``."""

    feedback: Annotated[list[str], operator.add] = field(default_factory=list)
    """Feedback texts given to the proposer, one per failed round."""

    attempts: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """One record per round: proposal, failing stage and reasons, votes, feedback."""

    status: str = "running"
    """``running``, then ``accepted`` or ``rejected``."""

    blueprint: dict[str, Any] | None = None
    """The accepted blueprint (JSON form)."""

    rejection: dict[str, Any] | None = None
    """Why the blueprint was given up: the last round's stage and reasons."""

    max_rounds: int | None = None
    """Rounds this blueprint may take (written by the proposer each round, from the settings;
    None only in a thread checkpointed by an older version: the domain's default then)."""

    committee_size: int | None = None
    """Judges of this round's review (written by the proposer, from the settings and the models;
    None as above: the default committee then)."""


@dataclass(kw_only=True)
class Phase1State(BlueprintState):
    """One Phase-1 blueprint request and its rounds."""

    seed: int = 0
    """Seeds the context sampler and the API-graph walk: the same seed, the same context."""

    mode: str | None = None
    """``llm``, ``grounded`` or ``mixed`` as requested (None: the settings' mode)."""

    proposer: str | None = None
    """Who proposes the actions: ``llm`` or ``grounded`` (set by ``prepare``)."""

    context: dict[str, Any] | None = None
    """The sampled generator context (tools, policy, rules, user data, persona, examples)."""

    walk: dict[str, Any] | None = None
    """Grounded mode: the executed walk (user_id, chain, actions, observations, and
    ``must_say``: the values its instruction must contain)."""

    max_actions: int | None = None
    """The generator's cap on actions (set by ``prepare``: smaller for the embedded model)."""


@dataclass(kw_only=True)
class RecombineState(BlueprintState):
    """Validated blueprints of one user, to be merged into one longer task."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    """The validated blueprints (JSON form) being combined, in order."""


class ReviewTask(TypedDict):
    """What one judge gets (sent in parallel, one per committee member)."""

    judge: int
    round: int
    domain: str
    proposal: dict[str, Any]
    diff: str
    blueprint_id: str
    phase: str


@dataclass(kw_only=True)
class Phase2State:
    """One blueprint's conversations: the current one in ``messages``, finished ones in
    ``trajectories``. The environment is not state: it is rebuilt by replaying ``calls``
    on a fresh fork (milliseconds, copy-on-write), so a resumed thread continues exactly."""

    blueprint: dict[str, Any]
    """The validated blueprint (JSON form: id, domain, instruction, actions, outputs)."""

    attempt: int = 0
    """The current conversation (1-based once started)."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The current conversation from the assistant's side (user, assistant, tool messages)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls of the current conversation: ``{name, arguments, ok, error}``."""

    user_turns: list[dict[str, Any]] = field(default_factory=list)
    """How each user message was chosen (candidates, critic scores)."""

    tool_steps: int = 0
    """Tool rounds since the assistant last spoke to the user."""

    stop: str | None = None
    """Why the current conversation ended: user_stop, max_turns, loop, user_error, assistant_error, max_tool_steps
    (written by the node whose step ended it)."""

    retry: bool = False
    """Written by ``verify``: whether another conversation follows this one."""

    trajectories: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """Every finished conversation with its reward and reasons (successes and failures)."""

    status: str = "running"
    """``running``, then ``accepted`` (a verified conversation) or ``rejected``."""


@dataclass(kw_only=True)
class PipelineState:
    """One blueprint request through both phases (the keys the two subgraphs share with it)."""

    domain: str
    blueprint_id: str
    seed: int = 0
    mode: str | None = None
    status: str = "running"
    """Phase 1's verdict, then Phase 2's (``accepted`` means a verified conversation)."""
    blueprint: dict[str, Any] | None = None
    rejection: dict[str, Any] | None = None
    attempts: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    trajectories: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
