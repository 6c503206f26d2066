"""The verification half of the blueprint graphs, shared by Phase 1 and recombination.

    proposal -> format_check -> execution_check -> policy_check -> grounding_check -> dedup_check
             -> review x K (parallel, one ``Send`` per judge) -> aggregate -> accept
    any failure -> feedback (LLM, then the proposer again) | give_up when rounds are spent

Stage-1 checks are the foundation's deterministic ones (``apigen_mt.tools.checks``); a
failing check skips the committee. Judges that return no valid review abstain. Duplicate
detection uses a :class:`~apigen_mt.tools.dedup.DedupIndex` the runner shares between
threads through the run's context (``RunContext.dedup_index``; without one, a run has no
memory of other blueprints and only the runner's final pass removes duplicates).

The proposer node writes the round's limits into the state (:func:`round_limits`), so the
routers read the state only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from apigen_mt.agents.feedback import awrite_feedback, summarize_votes
from apigen_mt.agents.reviewer import areview_blueprint
from apigen_mt.configuration import DEFAULT_REVIEWERS
from apigen_mt.domains.registry import get_domain
from apigen_mt.llm.tracing import run_config
from apigen_mt.tools.checks.execution import execute_blueprint, execution_errors
from apigen_mt.tools.checks.format import format_errors
from apigen_mt.tools.checks.grounding import grounding_errors
from apigen_mt.tools.checks.policy import policy_violations
from apigen_mt.tools.state_diff import StateDiff

from .context import RunContext, run_context
from .settings import DEFAULT_ROUNDS, Phase1Settings
from .state import BlueprintState, ReviewTask

__all__ = [
    "accept",
    "add_verification",
    "aggregate",
    "dedup_check",
    "execution_check",
    "feedback",
    "format_check",
    "give_up",
    "grounding_check",
    "policy_check",
    "review",
    "route_after_aggregate",
    "route_after_check",
    "round_limits",
    "route_to_committee",
    "trace_config",
]

MAX_REASONS = 20


def _check(stage: str, reasons: list[str], diff: str | None = None) -> dict[str, Any]:
    return {"stage": stage, "passed": not reasons, "reasons": reasons[:MAX_REASONS], "diff": diff}


def trace_config(config: RunnableConfig, state: BlueprintState | Mapping[str, Any], phase: str, role: str) -> RunnableConfig:
    get = state.get if isinstance(state, Mapping) else lambda k: getattr(state, k, None)
    return run_config(base=config, blueprint_id=get("blueprint_id"), phase=phase, role=role, attempt=get("round"))


def phase_of(state: BlueprintState) -> str:
    return "recombine" if hasattr(state, "sources") else "phase1"


async def round_limits(settings: Phase1Settings, context: RunContext, config: RunnableConfig, domain: str) -> dict[str, int]:
    """What the routers of a round need, decided by its proposer: rounds allowed, judges."""
    return {
        "max_rounds": settings.rounds_for(domain),
        "committee_size": settings.committee_for(await context.areviewer_count(config)),
    }


# -- stage 1: deterministic checks ------------------------------------------------------------


def format_check(state: BlueprintState) -> dict[str, Any]:
    """Required fields, known tools, argument names and types (no execution)."""
    if state.proposal is None:  # the proposer failed; its reasons are already in ``check``
        return {}
    return {"check": _check("format", format_errors(state.proposal, state.domain))}


def execution_check(state: BlueprintState) -> dict[str, Any]:
    """Every action runs on a fresh fork; the diff of the database is what reviewers see."""
    domain = get_domain(state.domain)
    trace = _execute(domain, state.proposal)
    diff = StateDiff.of(trace.env).render()
    return {"check": _check("execution", execution_errors(trace, state.proposal.get("assertions")), diff)}


def _execute(domain: Any, proposal: dict[str, Any]) -> Any:
    """The proposal's actions run in its initial state (re-run per check: a trace is not state)."""
    return execute_blueprint(domain, proposal["actions"], proposal.get("initial_state"))


def policy_check(state: BlueprintState) -> dict[str, Any]:
    """The domain's rules for generated data, run over the execution trace (re-executed:
    a trace is not state; it takes milliseconds)."""
    domain = get_domain(state.domain)
    trace = _execute(domain, state.proposal)
    reasons = policy_violations(domain, trace, generated=True)
    return {"check": _check("policy", reasons, (state.check or {}).get("diff"))}


def grounding_check(state: BlueprintState, config: RunnableConfig) -> dict[str, Any]:
    """Every value the actions and outputs need is obtainable from the instruction (said,
    returned, looked up, fixed by the schema or derived); a failure names the value and goes
    back to the proposer like any other."""
    settings = Phase1Settings.from_config(config)
    diff = (state.check or {}).get("diff")
    if not settings.grounding:
        return {"check": _check("grounding", [], diff)}
    domain = get_domain(state.domain)
    trace = _execute(domain, state.proposal)
    return {"check": _check("grounding", grounding_errors(domain, state.proposal, trace), diff)}


def dedup_check(state: BlueprintState, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Same actions on the same entities, or a near-identical instruction, as a kept blueprint."""
    settings = Phase1Settings.from_config(config)
    index = run_context(runtime).dedup_index
    diff = (state.check or {}).get("diff")
    if not settings.dedup or index is None:
        return {"check": _check("dedup", [], diff)}
    match = index.find({**state.proposal, "id": state.blueprint_id})
    return {"check": _check("dedup", [match.reason()] if match is not None else [], diff)}


def route_after_check(next_node: str):
    """A router: on to ``next_node`` if the check passed, else feedback or give up."""

    def route(state: BlueprintState) -> str:
        if state.check is not None and state.check.get("passed"):
            return next_node
        return _failure_route(state)

    route.__name__ = f"route_to_{next_node}"
    return route


def _failure_route(state: BlueprintState) -> str:
    rounds = state.max_rounds if state.max_rounds is not None else DEFAULT_ROUNDS.get(state.domain, 3)
    return "feedback" if state.round < rounds else "give_up"


# -- stage 2: the committee --------------------------------------------------------------------


def route_to_committee(state: BlueprintState) -> list[Send] | str:
    """One ``Send`` per judge after a passed dedup check (else feedback / give up)."""
    if not (state.check or {}).get("passed"):
        return _failure_route(state)
    diff = (state.check or {}).get("diff") or ""
    return [
        Send(
            "review",
            ReviewTask(
                judge=judge, round=state.round, domain=state.domain, proposal=state.proposal,
                diff=diff, blueprint_id=state.blueprint_id, phase=phase_of(state),
            ),
        )
        for judge in range(state.committee_size or DEFAULT_REVIEWERS)
    ]


async def review(task: ReviewTask, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """One judge's scores; an invalid review is kept as an abstention with its error."""
    settings = Phase1Settings.from_config(config)
    model = await run_context(runtime).amodel(config, "reviewers", task["judge"])
    result = await areview_blueprint(
        model,
        get_domain(task["domain"]),
        task["proposal"],
        task["diff"],
        prompts_dir=settings.prompts_dir,
        config=trace_config(config, task, task["phase"], f"reviewer.{task['judge']}"),
    )
    entry: dict[str, Any] = {"round": task["round"], "judge": task["judge"]}
    if result.ok:
        entry["review"] = result.value.model_dump()
    else:
        entry["error"] = result.error
    return {"reviews": [entry]}


def committee_verdict(entries: list[dict[str, Any]], settings: Phase1Settings) -> dict[str, Any]:
    """Majority vote per metric over the valid reviews, then the pass rule."""
    valid = [e["review"] for e in entries if e.get("review")]
    votes = summarize_votes(valid)
    votes["abstained"] = len(entries) - len(valid)
    if not valid:
        return {"passed": False, "votes": votes, "reasons": ["no judge returned a valid review"]}
    passed_share = len(votes["passed"]) / len(votes["metrics"])
    missing = [m for m in settings.required_metrics if m not in votes["passed"]]
    reasons = [f"the committee voted {m} down ({votes['metrics'][m]['no']} of {votes['judges']})" for m in votes["failed"]]
    passed = not missing and passed_share >= settings.pass_threshold
    if not passed and not reasons:
        reasons = [f"only {passed_share:.0%} of the metrics passed (threshold {settings.pass_threshold:.0%})"]
    return {"passed": passed, "votes": votes, "reasons": [] if passed else reasons}


def aggregate(state: BlueprintState, config: RunnableConfig) -> dict[str, Any]:
    """This round's reviews -> the committee's verdict (as the ``committee`` check)."""
    settings = Phase1Settings.from_config(config)
    verdict = committee_verdict([e for e in state.reviews if e.get("round") == state.round], settings)
    check = _check("committee", verdict["reasons"], (state.check or {}).get("diff"))
    check["passed"] = verdict["passed"]
    check["votes"] = verdict["votes"]
    return {"check": check}


def route_after_aggregate(state: BlueprintState) -> str:
    if (state.check or {}).get("passed"):
        return "accept"
    return _failure_route(state)


# -- endings and the feedback loop -------------------------------------------------------------


def _attempt(state: BlueprintState, **extra: Any) -> dict[str, Any]:
    check = state.check or {}
    record = {
        "round": state.round,
        "proposer": getattr(state, "proposer", None) or phase_of(state),
        "proposal": state.proposal,
        "stage": "accepted" if check.get("passed") and check.get("stage") == "committee" else check.get("stage"),
        "reasons": list(check.get("reasons") or []),
        "diff": check.get("diff"),
        "votes": check.get("votes"),
        "reviews": [e for e in state.reviews if e.get("round") == state.round],
    }
    record.update(extra)
    return record


def accept(state: BlueprintState, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Keep the blueprint. With a shared dedup index the blueprint is claimed there first:
    another thread may have kept a duplicate since this one's dedup check."""
    settings = Phase1Settings.from_config(config)
    index = run_context(runtime).dedup_index
    blueprint = {**state.proposal, "id": state.blueprint_id}
    if settings.dedup and index is not None:
        match = index.claim(state.blueprint_id, blueprint)
        if match is not None:
            check = _check("dedup", [match.reason()], (state.check or {}).get("diff"))
            failed = {**_attempt(state), "stage": "dedup", "reasons": check["reasons"]}
            return {"check": check, "attempts": [failed], "status": "rejected", "rejection": {"stage": "dedup", "reasons": check["reasons"]}}
    return {"attempts": [_attempt(state)], "status": "accepted", "blueprint": blueprint}


def give_up(state: BlueprintState) -> dict[str, Any]:
    check = state.check or {}
    rejection = {"stage": check.get("stage"), "reasons": list(check.get("reasons") or []), "rounds": state.round}
    return {"attempts": [_attempt(state)], "status": "rejected", "rejection": rejection}


def _fallback_feedback(state: BlueprintState) -> str:
    """Feedback without the LLM (when it fails): the failing stage's reasons, verbatim."""
    check = state.check or {}
    lines = [f"The {check.get('stage')} check failed:"] + [f"- {r}" for r in check.get("reasons") or []]
    return "\n".join(lines)


async def feedback(state: BlueprintState, config: RunnableConfig, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The feedback LLM turns the failing check or the judges' votes into a plan; it goes
    into the proposer's next prompt (Reflexion style). If it fails, the reasons go as is."""
    settings = Phase1Settings.from_config(config)
    check = state.check or {}
    this_round = [e["review"] for e in state.reviews if e.get("round") == state.round and e.get("review")]
    result = await awrite_feedback(
        await run_context(runtime).amodel(config, "feedback"),
        state.proposal,
        checks=None if check.get("stage") == "committee" else check,
        reviews=this_round if check.get("stage") == "committee" else (),
        prompts_dir=settings.prompts_dir,
        config=trace_config(config, state, phase_of(state), "feedback"),
    )
    text = result.value.render() if result.ok else _fallback_feedback(state)
    if result.ok and check.get("reasons"):  # the exact reasons stay visible whatever the plan says
        text = _fallback_feedback(state) + "\n\n" + text
    extra = {"feedback": text, "feedback_error": None if result.ok else result.error}
    return {"feedback": [text], "attempts": [_attempt(state, **extra)]}


# -- wiring ------------------------------------------------------------------------------------


def add_verification(builder: StateGraph, *, proposer: str) -> StateGraph:
    """Add the checks, committee, feedback loop and endings after the ``proposer`` node."""
    # The nodes are typed with the shared base state; they must get the graph's own state
    # (LangGraph would otherwise build the base class and drop e.g. ``proposer``).
    schema = builder.state_schema
    for name, node in (
        ("format_check", format_check),
        ("execution_check", execution_check),
        ("policy_check", policy_check),
        ("grounding_check", grounding_check),
        ("dedup_check", dedup_check),
        ("aggregate", aggregate),
        ("feedback", feedback),
        ("accept", accept),
        ("give_up", give_up),
    ):
        builder.add_node(name, node, input_schema=schema)
    builder.add_node("review", review)
    on_failure = ["feedback", "give_up"]
    builder.add_edge(proposer, "format_check")
    for check, following in (
        ("format_check", "execution_check"),
        ("execution_check", "policy_check"),
        ("policy_check", "grounding_check"),
        ("grounding_check", "dedup_check"),
    ):
        builder.add_conditional_edges(check, route_after_check(following), [following, *on_failure])
    builder.add_conditional_edges("dedup_check", route_to_committee, ["review", *on_failure])
    builder.add_edge("review", "aggregate")
    builder.add_conditional_edges("aggregate", route_after_aggregate, ["accept", *on_failure])
    builder.add_edge("feedback", proposer)
    builder.add_edge("accept", END)
    builder.add_edge("give_up", END)
    return builder
