"""The report's numbers, read from a run store and nothing else.

Kept apart from plotting and rendering so that the numbers can be tested exactly and
written as ``report.json`` for other tools; every value is plain JSON (no NaN: a rate
with nothing to divide is ``None``). Definitions follow :meth:`RunStore.counts`, so the
report and the CLI's summary never disagree (a verified conversation is reward 1 and not
a duplicate; contaminated blueprints are counted and listed, not hidden).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from typing import Any

from apigen_mt.domains.registry import pool_root

from .reasons import reason_key

__all__ = ["PAPER", "STAGES", "compute_stats"]

STAGES = ("generation", "format", "execution", "policy", "grounding", "dedup", "committee", "accepted")
"""Phase-1 stages in the order a round goes through them; a round's stage is where it stopped."""

FUNNEL_STEPS = (
    ("rounds", None),
    ("proposed", "generation"),
    ("passed format", "format"),
    ("passed execution", "execution"),
    ("passed policy", "policy"),
    ("passed grounding", "grounding"),
    ("passed dedup", "dedup"),
    ("passed committee (accepted)", "committee"),
)
"""Funnel rows: a round counts for a row when it got past the named stage."""

PAPER = {"without_feedback": 0.28, "with_feedback": 0.70, "simulation_success": 0.67}
"""APIGen-MT's reported rates (arXiv 2504.03601), for comparison."""

METRICS = ("correctness", "completeness", "satisfaction", "creativity")
ERROR_CHARS = 500


def _loads(text: Any, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def _rows(store: Any, sql: str) -> list[dict[str, Any]]:
    cursor = store.db.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# -- phase 1 ------------------------------------------------------------------------------------


def _stage_index(stage: str | None) -> int:
    return STAGES.index(stage) if stage in STAGES else -1


def _phase1(blueprints: list[dict], attempts: list[dict], errors: list[dict]) -> dict[str, Any]:
    finished = {b["id"] for b in blueprints}
    unfinished = sorted({e["item"] for e in errors if e["phase"] == "phase1"} - finished)
    requests = finished | set(unfinished) | {a["blueprint_id"] for a in attempts}
    funnel = []
    for label, stage in FUNNEL_STEPS:
        if stage is None:
            count = len(attempts)
        else:
            count = sum(1 for a in attempts if _stage_index(a["stage"]) > STAGES.index(stage))
        funnel.append({"step": label, "count": count})
    accepted = [b for b in blueprints if b["status"] == "accepted"]
    rejected = [b for b in blueprints if b["status"] == "rejected"]
    return {
        "requests": len(requests),
        "rounds": len(attempts),
        "funnel": funnel,
        "accepted": len(accepted),
        "rejected": len(rejected),
        "unfinished": len(unfinished),
        "flagged_as_test_contamination": sum(1 for b in blueprints if b.get("contamination")),
        "rejected_by_stage": dict(Counter(b["stage"] or "unknown" for b in rejected).most_common()),
        "failed_rounds_by_stage": dict(Counter(a["stage"] or "unknown" for a in attempts if a["stage"] != "accepted").most_common()),
        "proposers": dict(Counter(a["proposer"] or "unknown" for a in attempts).most_common()),
        "domains": dict(Counter(pool_root(b["domain"] or "unknown") for b in blueprints).most_common()),
        "initial_states": len({b["domain"] for b in blueprints if b["domain"]}),  # the states of a pool apart
    }


def _rejections(attempts: list[dict], top: int = 15) -> dict[str, Any]:
    """Failed rounds by (stage, rule): a round counts once per rule it broke."""
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    failed = [a for a in attempts if a["stage"] != "accepted"]
    for attempt in failed:
        stage = attempt["stage"] or "unknown"
        reasons = _loads(attempt["reasons"], []) or [""]
        keys = {}
        for reason in reasons:
            keys.setdefault(reason_key(stage, reason), str(reason))
        for key, reason in keys.items():
            counts[(stage, key)] += 1
            examples.setdefault((stage, key), reason[:300])
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "failed_rounds": len(failed),
        "by_rule": [{"stage": s, "rule": r, "count": n, "example": examples[(s, r)]} for (s, r), n in ranked],
        "top": top,
    }


def _acceptance(blueprints: list[dict], attempts: list[dict]) -> dict[str, Any]:
    """First-round acceptance (what a run without feedback keeps) vs acceptance in any round."""
    rounds_of: dict[str, set[int]] = defaultdict(set)
    accepted_at: dict[str, int] = {}
    for attempt in attempts:
        rounds_of[attempt["blueprint_id"]].add(attempt["round"])
        if attempt["stage"] == "accepted":
            accepted_at[attempt["blueprint_id"]] = min(attempt["round"], accepted_at.get(attempt["blueprint_id"], attempt["round"]))
    finished = len(blueprints)
    accepted_round = {}
    for b in blueprints:
        if b["status"] == "accepted":
            accepted_round[b["id"]] = accepted_at.get(b["id"]) or max(b["rounds"] or 1, 1)
    first = sum(1 for r in accepted_round.values() if r == 1)
    last_round = max([r for rounds in rounds_of.values() for r in rounds] + list(accepted_round.values()) + [0])
    per_round, cumulative = [], 0
    for number in range(1, last_round + 1):
        reached = sum(1 for b in blueprints if number in rounds_of.get(b["id"], ()) or accepted_round.get(b["id"]) == number)
        took = sum(1 for r in accepted_round.values() if r == number)
        cumulative += took
        per_round.append({"round": number, "reached": reached, "accepted": took, "rate": _rate(took, reached),
                          "cumulative_rate": _rate(cumulative, finished)})
    return {
        "finished_requests": finished,
        "first_round": {"accepted": first, "rate": _rate(first, finished)},
        "with_feedback": {"accepted": len(accepted_round), "rate": _rate(len(accepted_round), finished)},
        "accepted_after_feedback": len(accepted_round) - first,
        "per_round": per_round,
        "paper": {"without_feedback": PAPER["without_feedback"], "with_feedback": PAPER["with_feedback"]},
    }


# -- the committee ------------------------------------------------------------------------------


def _default_pass_rule() -> tuple[float, tuple[str, ...]]:
    try:
        from apigen_mt.graphs.settings import Phase1Settings

        defaults = Phase1Settings()
        return defaults.pass_threshold, tuple(defaults.required_metrics)
    except Exception:  # noqa: BLE001 - the report must not depend on the graph settings loading
        return 0.75, ("correctness",)


def _judge_passes(review: dict[str, Any], threshold: float, required: tuple[str, ...]) -> bool:
    yes = [m for m in METRICS if review.get(m) in (1, True)]
    return all(m in yes for m in required) and len(yes) / len(METRICS) >= threshold


def _committee(attempts: list[dict]) -> dict[str, Any]:
    """Agreement among the judges, over the rounds that reached the committee."""
    threshold, required = _default_pass_rule()
    rounds = judged = agreed = unanimous = passed = abstentions = 0
    sizes: Counter[int] = Counter()
    metric_rounds: Counter[str] = Counter()
    metric_agree: Counter[str] = Counter()
    metric_yes: Counter[str] = Counter()
    metric_votes: Counter[str] = Counter()
    for attempt in attempts:
        data = _loads(attempt["data"], {})
        reviews = data.get("reviews") or []
        votes = data.get("votes") or {}
        if not reviews and not votes:
            continue
        rounds += 1
        passed += attempt["stage"] == "accepted"
        valid = [e["review"] for e in reviews if isinstance(e, dict) and isinstance(e.get("review"), dict)]
        if reviews:
            sizes[len(reviews)] += 1
            abstentions += len(reviews) - len(valid)
            tallies = {m: (sum(1 for r in valid if r.get(m) in (1, True)), len(valid)) for m in METRICS}
        else:  # only the summary survived: counts per metric, no per-judge verdicts
            sizes[int(votes.get("judges") or 0) + int(votes.get("abstained") or 0)] += 1
            abstentions += int(votes.get("abstained") or 0)
            tallies = {m: (int(row.get("yes") or 0), int(row.get("yes") or 0) + int(row.get("no") or 0))
                       for m, row in (votes.get("metrics") or {}).items()}
        all_metrics = bool(tallies) and all(total > 0 for _, total in tallies.values())
        for metric, (yes, total) in tallies.items():
            if total == 0:
                continue
            metric_rounds[metric] += 1
            metric_agree[metric] += yes in (0, total)
            metric_yes[metric] += yes
            metric_votes[metric] += total
        unanimous += all_metrics and all(yes in (0, total) for yes, total in tallies.values())
        if valid:
            judged += 1
            agreed += len({_judge_passes(r, threshold, required) for r in valid}) == 1
    metrics = {
        m: {"agreement": _rate(metric_agree[m], metric_rounds[m]), "pass_vote_share": _rate(metric_yes[m], metric_votes[m]),
            "rounds": metric_rounds[m]}
        for m in sorted(metric_rounds, key=lambda m: METRICS.index(m) if m in METRICS else len(METRICS))
    }
    return {
        "rounds": rounds,
        "passed_rounds": passed,
        "judges": {str(k): v for k, v in sorted(sizes.items())},
        "abstentions": abstentions,
        "rounds_with_judge_verdicts": judged,
        "verdict_agreement": {"agreed": agreed, "rate": _rate(agreed, judged)},
        "unanimous_on_every_metric": {"rounds": unanimous, "rate": _rate(unanimous, rounds)},
        "metrics": metrics,
        "pass_vote_share": _rate(sum(metric_yes.values()), sum(metric_votes.values())),
        "pass_rule": {"threshold": threshold, "required": list(required)},
    }


# -- phase 2 ------------------------------------------------------------------------------------


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "median": None, "min": None, "max": None, "values": []}
    return {"mean": round(statistics.fmean(values), 3), "median": statistics.median(values), "min": min(values),
            "max": max(values), "values": sorted(values)}


def _phase2(trajectories: list[dict], errors: list[dict]) -> dict[str, Any]:
    verified = [t for t in trajectories if t["reward"] == 1.0]
    unique = [t for t in verified if not t["duplicate"]]
    failed = [t for t in trajectories if t["reward"] is None or t["reward"] < 1.0]
    done = {t["blueprint_id"] for t in trajectories}
    return {
        "blueprints_simulated": len(done),
        "blueprints_with_a_verified_conversation": len({t["blueprint_id"] for t in unique}),
        "conversations": len(trajectories),
        "verified": len(verified),
        "unique_verified": len(unique),
        "failed": len(failed),
        "failed_by_stop": dict(Counter(t["stop"] or "unknown" for t in failed).most_common()),
        "unfinished": len({e["item"] for e in errors if e["phase"] == "phase2"} - done),
        "success_rate": _rate(len(verified), len(trajectories)),
        "paper_success_rate": PAPER["simulation_success"],
    }


def _distributions(trajectories: list[dict]) -> dict[str, Any]:
    kept = [t for t in trajectories if t["reward"] == 1.0 and not t["duplicate"]]
    return {"count": len(kept), **{name: _summary([int(t[name] or 0) for t in kept]) for name in ("turns", "tool_calls", "user_turns")}}


# -- cost ---------------------------------------------------------------------------------------


def _bucket() -> dict[str, Any]:
    return {"calls": 0, "cache_hits": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
            "cached_tokens": 0, "latency_s": 0.0, "estimated_calls": 0}


def _add(bucket: dict[str, Any], call: dict[str, Any]) -> None:
    prompt, completion = int(call["prompt_tokens"] or 0), int(call["completion_tokens"] or 0)
    bucket["calls"] += 1
    bucket["errors"] += bool(call["error"])
    bucket["estimated_calls"] += bool(call["tokens_estimated"])
    if call["cache_hit"]:  # answered from the cache: not paid
        bucket["cache_hits"] += 1
        bucket["cached_tokens"] += prompt + completion
        return
    bucket["prompt_tokens"] += prompt
    bucket["completion_tokens"] += completion
    bucket["total_tokens"] += prompt + completion
    bucket["latency_s"] += float(call["latency_s"] or 0.0)


def _cost(calls: list[dict], accepted_blueprints: int, accepted_trajectories: int) -> dict[str, Any]:
    """Paid tokens (cache hits apart), by role and phase, and per kept item."""
    total, by_role, by_phase = _bucket(), defaultdict(_bucket), defaultdict(_bucket)
    for call in calls:
        for bucket in (total, by_role[call["role"] or "unknown"], by_phase[call["phase"] or "unknown"]):
            _add(bucket, call)
    for bucket in (total, *by_role.values(), *by_phase.values()):
        bucket["latency_s"] = round(bucket["latency_s"], 3)
    phase2 = by_phase.get("phase2", _bucket())
    blueprint_tokens = total["total_tokens"] - phase2["total_tokens"]

    def per(tokens: int, calls_: int, latency: float, count: int) -> dict[str, Any] | None:
        if not count or not calls:
            return None
        return {"tokens": round(tokens / count, 1), "calls": round(calls_ / count, 2), "latency_s": round(latency / count, 3)}

    return {
        **total,
        "sessions": len({c["session"].split("/")[0] for c in calls}),  # keys: <session>/<phase>
        "by_role": dict(sorted(by_role.items(), key=lambda kv: -kv[1]["total_tokens"])),
        "by_phase": dict(sorted(by_phase.items())),
        "per_accepted_trajectory": per(total["total_tokens"], total["calls"], total["latency_s"], accepted_trajectories),
        "per_accepted_blueprint": per(blueprint_tokens, total["calls"] - phase2["calls"], total["latency_s"] - phase2["latency_s"],
                                      accepted_blueprints),
    }


# -- everything ---------------------------------------------------------------------------------


def _events(events: list[dict]) -> dict[str, Any]:
    return {
        "sessions": len({e["session"] for e in events}),
        "by_kind": dict(Counter(e["kind"] for e in events).most_common()),
        "interrupted": sum(1 for e in events if e["kind"] == "interrupted"),
    }


def _write_tools(domain_name: str, seen: set[str]) -> tuple[list[str], bool]:
    """The domain's write tools (and whether the domain could be loaded); else those ``seen``."""
    from apigen_mt.domains.base import ToolKind
    from apigen_mt.domains.registry import get_domain

    try:
        return [spec.name for spec in get_domain(domain_name).tools if spec.kind is ToolKind.WRITE], True
    except Exception:  # a user domain that is not importable where the report runs
        return sorted(seen), False


def _coverage(accepted: list[dict]) -> dict[str, Any]:
    """Accepted blueprints per write tool (a blueprint counts once per write tool it uses), per
    domain (the states of a pool, ``bfcl.ticket@...``, counted as their domain)."""
    per_domain = {}
    for domain_name in sorted({pool_root(b.get("domain") or "unknown") for b in accepted}):
        blueprints = [b for b in accepted if pool_root(b.get("domain") or "unknown") == domain_name]
        used = Counter(name for b in blueprints for name in {a.get("name") for a in b.get("actions") or []})
        writes, loaded = _write_tools(domain_name, set(used))
        counts = {w: used.get(w, 0) for w in writes}
        per_domain[domain_name] = {"write_tools": counts, "uncovered": [w for w, n in counts.items() if not n],
                                   "domain_loaded": loaded}
    return per_domain


MAX_SIMILARITY_SAMPLE = 400
"""Instructions compared pairwise for the diversity figures (quadratic)."""


def _diversity(accepted: list[dict]) -> dict[str, Any]:
    """Distinct action signatures, and how alike each instruction is to its nearest other one."""
    from apigen_mt.tools.dedup import action_signature, instruction_similarity

    signatures = {action_signature(b) for b in accepted}
    sequences = {tuple(a.get("name") for a in b.get("actions") or []) for b in accepted}
    texts = [str(b.get("instruction") or "") for b in accepted][:MAX_SIMILARITY_SAMPLE]
    nearest = []
    for i, text in enumerate(texts):
        others = [instruction_similarity(text, other) for j, other in enumerate(texts) if j != i]
        if others:
            nearest.append(round(max(others), 3))
    return {
        "blueprints": len(accepted),
        "distinct_action_signatures": len(signatures),
        "distinct_tool_sequences": len(sequences),
        "nearest_similarity": nearest,
        "nearest_similarity_summary": _float_summary(nearest),
        "compared": len(texts),
    }


def _float_summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    return {"mean": statistics.fmean(ordered), "median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1]}


EXAMPLE_BLUEPRINTS = 3


def _examples(accepted: list[dict], store: Any) -> dict[str, Any]:
    """A few accepted blueprints, one verified conversation and one failed one with its reasons."""
    verified = next(iter(store.trajectories(accepted=True)), None)
    failed = next((t for t in store.trajectories(accepted=False) if t.get("reward") != 1.0), None)
    return {
        "blueprints": [{k: b.get(k) for k in ("id", "instruction", "actions", "outputs")} for b in accepted[:EXAMPLE_BLUEPRINTS]],
        "verified": _conversation(verified),
        "failed": _conversation(failed),
    }


def _conversation(trajectory: dict | None) -> dict[str, Any] | None:
    if trajectory is None:
        return None
    turns = []
    for message in trajectory.get("messages") or []:
        role = message.get("role")
        if role == "system":
            continue
        calls = [f"{(c.get('function') or {}).get('name')}({(c.get('function') or {}).get('arguments')})"
                 for c in message.get("tool_calls") or []]
        text = message.get("content") if isinstance(message.get("content"), str) else json.dumps(message.get("content"))
        turns.append({"role": role, "text": " ".join(filter(None, [text or "", *calls]))})
    return {"blueprint_id": trajectory.get("blueprint_id"), "attempt": trajectory.get("attempt"),
            "reward": trajectory.get("reward"), "stop": trajectory.get("stop"),
            "reasons": list(trajectory.get("reasons") or []), "turns": turns}


def compute_stats(store: Any) -> dict[str, Any]:
    """Every number of the report from a :class:`~apigen_mt.store.RunStore` (read only)."""
    blueprints = _rows(store, "SELECT id, domain, status, stage, rounds, contamination FROM blueprints ORDER BY id")
    attempts = _rows(store, "SELECT blueprint_id, round, stage, proposer, reasons, data FROM attempts ORDER BY blueprint_id, round")
    trajectories = _rows(store, "SELECT blueprint_id, attempt, reward, stop, turns, tool_calls, user_turns, duplicate "
                                "FROM trajectories ORDER BY blueprint_id, attempt")
    errors = _rows(store, "SELECT phase, item, error FROM errors ORDER BY phase, item")
    calls = _rows(store, "SELECT * FROM llm_calls ORDER BY session, seq")
    events = _rows(store, "SELECT session, seq, kind, phase FROM events ORDER BY time, seq")
    phase1 = _phase1(blueprints, attempts, errors)
    phase2 = _phase2(trajectories, errors)
    accepted = store.accepted_blueprints()
    return {
        "run_dir": str(store.run_dir),
        "phase1": phase1,
        "phase2": phase2,
        "rejections": _rejections(attempts),
        "acceptance": _acceptance(blueprints, attempts),
        "distributions": _distributions(trajectories),
        "committee": _committee(attempts),
        "cost": _cost(calls, phase1["accepted"], phase2["unique_verified"]),
        "errors": [{**e, "error": (e["error"] or "")[:ERROR_CHARS]} for e in errors],
        "contamination": [{"id": b["id"], "reason": b["contamination"]} for b in blueprints if b.get("contamination")],
        "events": _events(events),
        "coverage": _coverage(accepted),
        "diversity": _diversity(accepted),
        "examples": _examples(accepted, store),
    }
