"""Markdown and HTML from the stats and the figures, plus the terminal summary.

The report is first laid out as a list of plain blocks (headings, paragraphs, lists,
tables, images) and each format renders the same blocks, so the two files never say
different things. Block text is plain text: instructions, reasons and errors are LLM or
tool output, so both renderers escape all of it (HTML entities in either format; table
cells also lose ``|`` and line breaks). The HTML embeds the PNGs as data URIs, so the one
file can be mailed.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Block", "build_blocks", "render_html", "render_markdown", "summary_text"]

CELL_CHARS = 200


@dataclass
class Block:
    """One piece of the report: ``kind`` is h1, h2, p, list, table or image."""

    kind: str
    text: str = ""
    items: Sequence[str] = ()
    header: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    path: Path | None = None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _n(count: int, noun: str) -> str:
    """``1 round``, ``3 rounds``: the count and its noun, in the right number."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {count}" for key, count in mapping.items()) or "none"


def _figure(blocks: list[Block], plots: Mapping[str, Path | None], name: str, missing: str) -> None:
    path = plots.get(name)
    if path is not None:
        blocks.append(Block("image", text=name, path=Path(path)))
    else:
        blocks.append(Block("p", text=f"(No {name} plot: {missing}.)"))


# -- the sections -------------------------------------------------------------------------------


def _funnel(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    p1, p2 = stats["phase1"], stats["phase2"]
    blocks = [Block("h2", "1. Funnel per stage")]
    if p1["requests"]:
        rounds = p1["rounds"]
        states = p1.get("initial_states", 0)
        drawn = f", in {_n(states, 'initial state')}" if states > len(p1["domains"]) else ""
        blocks.append(Block("p", f"Phase 1: {_n(p1['requests'], 'blueprint request')} (finished, by domain: "
                                 f"{_counts(p1['domains'])}{drawn}), {_n(rounds, 'round')} in all (proposers: {_counts(p1['proposers'])}). Every round of every "
                                 "request counts; a round stops at the first check it fails."))
        blocks.append(Block("table", header=("Step (all rounds)", "Rounds", "Share of rounds"),
                            rows=[(r["step"], r["count"], _pct(r["count"] / rounds if rounds else None)) for r in p1["funnel"]]))
        blocks.append(Block("list", items=[
            f"accepted blueprints: {p1['accepted']}",
            f"rejected blueprints: {p1['rejected']} (final stage: {_counts(p1['rejected_by_stage'])})",
            f"unfinished requests (errors): {p1['unfinished']}",
            f"flagged as test contamination: {p1['flagged_as_test_contamination']}",
        ]))
    else:
        blocks.append(Block("p", "Phase 1: no blueprint requests in this run (no data)."))
    if p2["conversations"] or p2["unfinished"]:
        blocks.append(Block("p", f"Phase 2: {p2['blueprints_simulated']} blueprints simulated, "
                                 f"{p2['blueprints_with_a_verified_conversation']} of them with a verified conversation."))
        blocks.append(Block("table", header=("Phase 2", "Count"), rows=[
            ("conversations", p2["conversations"]),
            ("verified (reward 1)", p2["verified"]),
            ("unique verified (kept)", p2["unique_verified"]),
            ("failed", p2["failed"]),
            *[(f"failed: {stop}" + (" (verification failed)" if stop == "user_stop" else ""), n)
              for stop, n in p2["failed_by_stop"].items()],
            ("unfinished blueprints (errors)", p2["unfinished"]),
        ]))
        blocks.append(Block("p", f"Simulation success: {_pct(p2['success_rate'])} of conversations verified "
                                 f"(the paper reports {_pct(p2['paper_success_rate'])})."))
    else:
        blocks.append(Block("p", "Phase 2: no conversations in this run (no data; a Phase-1-only run has none)."))
    _figure(blocks, plots, "funnel", "no rounds or conversations recorded")
    return blocks


def _rejections(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    rejections = stats["rejections"]
    blocks = [Block("h2", "2. Rejection reasons by stage and rule")]
    if not rejections["by_rule"]:
        blocks.append(Block("p", "No failed rounds: no rejection reasons (no data)."))
        _figure(blocks, plots, "rejections", "no failed rounds")
        return blocks
    blocks.append(Block("p", f"{_n(rejections['failed_rounds'], 'failed round')}. A round counts once for each rule it broke "
                             "(policy: the rule's name; execution: the tool and the kind of error; committee: the "
                             "metric voted down; others: the reason's wording without ids or numbers)."))
    blocks.append(Block("table", header=("Stage", "Rule", "Failed rounds", "Example"),
                        rows=[(r["stage"], r["rule"], r["count"], r["example"]) for r in rejections["by_rule"][:40]]))
    if len(rejections["by_rule"]) > 40:
        blocks.append(Block("p", f"... and {len(rejections['by_rule']) - 40} more rules (report.json has them all)."))
    _figure(blocks, plots, "rejections", "no failed rounds")
    return blocks


def _acceptance(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    acceptance = stats["acceptance"]
    blocks = [Block("h2", "3. Acceptance with vs without feedback")]
    finished = acceptance["finished_requests"]
    if not finished:
        blocks.append(Block("p", "No finished blueprint requests (no data)."))
        _figure(blocks, plots, "acceptance", "no finished requests")
        return blocks
    first, anyround, paper = acceptance["first_round"], acceptance["with_feedback"], acceptance["paper"]
    blocks.append(Block("p", f"Accepted in the first round (what a run without feedback would keep): {first['accepted']} of "
                             f"{finished} finished requests ({_pct(first['rate'])}). Accepted in any round (with "
                             f"feedback): {anyround['accepted']} of {finished} ({_pct(anyround['rate'])}); "
                             f"{acceptance['accepted_after_feedback']} needed feedback. The paper reports "
                             f"{_pct(paper['without_feedback'])} without and {_pct(paper['with_feedback'])} with feedback."))
    blocks.append(Block("table", header=("Round", "Requests reaching it", "Accepted in it", "Rate", "Accepted by it (cumulative)"),
                        rows=[(r["round"], r["reached"], r["accepted"], _pct(r["rate"]), _pct(r["cumulative_rate"]))
                              for r in acceptance["per_round"]]))
    _figure(blocks, plots, "acceptance", "no finished requests")
    return blocks


def _distributions(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    distributions = stats["distributions"]
    blocks = [Block("h2", "4. Turns, tool calls and user turns per verified conversation")]
    if not distributions["count"]:
        blocks.append(Block("p", "No verified conversations (no data)."))
        _figure(blocks, plots, "distributions", "no verified conversations")
        return blocks
    blocks.append(Block("p", f"Over {distributions['count']} verified, unique conversations. The paper reports 1-29 turns, "
                             "about 7 tool calls and 6 user turns on average."))
    blocks.append(Block("table", header=("Per conversation", "Mean", "Median", "Min", "Max"), rows=[
        (label, _num(d["mean"]), _num(d["median"]), d["min"], d["max"])
        for label, d in (("turns", distributions["turns"]), ("tool calls", distributions["tool_calls"]),
                         ("user turns", distributions["user_turns"]))
    ]))
    _figure(blocks, plots, "distributions", "no verified conversations")
    return blocks


def _committee(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    committee = stats["committee"]
    blocks = [Block("h2", "5. Committee agreement")]
    if not committee["rounds"]:
        blocks.append(Block("p", "No round reached the review committee (no data)."))
        _figure(blocks, plots, "committee", "no committee rounds")
        return blocks
    sizes = ", ".join(f"{_n(int(k), 'judge')} in {_n(v, 'round')}" for k, v in committee["judges"].items())
    rule = committee["pass_rule"]
    agreement = committee["verdict_agreement"]
    blocks.append(Block("p", f"{_n(committee['rounds'], 'round')} reached the committee, {committee['passed_rounds']} accepted "
                             f"({sizes}; {_n(committee['abstentions'], 'abstention')}: judges without a valid review). All judges agreed on the verdict in "
                             f"{agreement['agreed']} of {committee['rounds_with_judge_verdicts']} rounds "
                             f"({_pct(agreement['rate'])}); a judge's verdict applies the default pass rule to its own "
                             f"scores ({', '.join(rule['required'])} required, at least {_pct(rule['threshold'])} of the "
                             f"metrics). Unanimous on every metric: {_pct(committee['unanimous_on_every_metric']['rate'])}. "
                             f"Pass votes: {_pct(committee['pass_vote_share'])} of all votes."))
    blocks.append(Block("table", header=("Metric", "Judges unanimous", "Pass votes", "Rounds"),
                        rows=[(m, _pct(row["agreement"]), _pct(row["pass_vote_share"]), row["rounds"])
                              for m, row in committee["metrics"].items()]))
    _figure(blocks, plots, "committee", "no votes recorded")
    return blocks


def _cost(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    cost = stats["cost"]
    blocks = [Block("h2", "6. Cost")]
    if not cost["calls"]:
        blocks.append(Block("p", "No LLM calls recorded in this run's store (no data)."))
        _figure(blocks, plots, "cost", "no LLM calls recorded")
        return blocks
    blocks.append(Block("p", f"{_n(cost['calls'], 'LLM call')} in {_n(cost['sessions'], 'session')}: {cost['prompt_tokens']:,} prompt + "
                             f"{cost['completion_tokens']:,} completion = {cost['total_tokens']:,} paid tokens, "
                             f"{_num(cost['latency_s'])} s of summed latency. {cost['cache_hits']:,} cache hits "
                             f"({cost['cached_tokens']:,} tokens) were not paid and are not counted above; "
                             f"{_n(cost['errors'], 'call')} failed; {_n(cost['estimated_calls'], 'call')} had estimated token counts."))
    per_items = []
    if cost["per_accepted_trajectory"]:
        per = cost["per_accepted_trajectory"]
        per_items.append(f"per verified conversation (both phases): {_num(per['tokens'])} tokens, {_num(per['calls'])} calls, "
                         f"{_num(per['latency_s'])} s")
    if cost["per_accepted_blueprint"]:
        per = cost["per_accepted_blueprint"]
        per_items.append(f"per accepted blueprint (calls outside Phase 2): {_num(per['tokens'])} tokens, "
                         f"{_num(per['calls'])} calls, {_num(per['latency_s'])} s")
    if per_items:
        blocks.append(Block("list", items=per_items))
    header = ("Calls", "Cache hits", "Prompt tokens", "Completion tokens", "Paid tokens", "Latency (s)")

    def row(name: str, b: dict[str, Any]) -> tuple:
        return (name, b["calls"], b["cache_hits"], b["prompt_tokens"], b["completion_tokens"], b["total_tokens"], _num(b["latency_s"]))

    blocks.append(Block("table", header=("Role", *header), rows=[row(k, v) for k, v in cost["by_role"].items()]))
    blocks.append(Block("table", header=("Phase", *header), rows=[row(k, v) for k, v in cost["by_phase"].items()]))
    _figure(blocks, plots, "cost", "no paid calls")
    return blocks


def _leftovers(stats: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "7. Unfinished items and contamination flags")]
    if stats["errors"]:
        blocks.append(Block("p", f"{_n(len(stats['errors']), 'item')} did not finish (run the same command again to resume them):"))
        blocks.append(Block("table", header=("Phase", "Item", "Error"), rows=[(e["phase"], e["item"], e["error"]) for e in stats["errors"]]))
    else:
        blocks.append(Block("p", "No unfinished items."))
    if stats["contamination"]:
        blocks.append(Block("p", f"{_n(len(stats['contamination']), 'accepted blueprint')} look like benchmark test tasks; they are "
                                 "kept, flagged and left out of exports:"))
        blocks.append(Block("table", header=("Blueprint", "Reason"), rows=[(c["id"], c["reason"]) for c in stats["contamination"]]))
    else:
        blocks.append(Block("p", "No blueprint flagged as test contamination."))
    events = stats["events"]
    if events["sessions"]:
        blocks.append(Block("p", f"Events: {_n(events['sessions'], 'session')}, {events['interrupted']} interrupted "
                                 f"({_counts(events['by_kind'])})."))
    return blocks


def _coverage(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    blocks = [Block("h2", "8. Coverage and diversity of the accepted blueprints")]
    coverage, diversity = stats.get("coverage") or {}, stats.get("diversity") or {}
    if not diversity.get("blueprints"):
        blocks.append(Block("p", "No accepted blueprints (no data)."))
        _figure(blocks, plots, "coverage", "no accepted blueprints")
        return blocks
    for domain, found in coverage.items():
        counts = found["write_tools"]
        uncovered = found["uncovered"]
        known = "" if found["domain_loaded"] else " (the domain could not be loaded here: only the write tools used are listed)"
        blocks.append(Block("p", f"{domain}: {len(counts) - len(uncovered)} of {len(counts)} write tools covered"
                                 + (f"; never: {', '.join(uncovered)}" if uncovered else "") + known + "."))
        blocks.append(Block("table", header=("Write tool", "Accepted blueprints"), rows=sorted(counts.items(), key=lambda kv: -kv[1])))
    _figure(blocks, plots, "coverage", "no accepted blueprints")
    nearest = diversity["nearest_similarity_summary"]
    blocks.append(Block("p", f"{diversity['distinct_action_signatures']} distinct action signatures (tools and arguments) "
                             f"and {diversity['distinct_tool_sequences']} distinct tool sequences among "
                             f"{_n(diversity['blueprints'], 'accepted blueprint')}."))
    if nearest["mean"] is not None:
        blocks.append(Block("p", f"Instruction similarity to the nearest other accepted instruction (0: no words in common, "
                                 f"1: the same; {diversity['compared']} compared): mean {_num(nearest['mean'])}, median "
                                 f"{_num(nearest['median'])}, 90th percentile {_num(nearest['p90'])}, max {_num(nearest['max'])}."))
    return blocks


def _examples(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    examples = stats.get("examples") or {}
    blocks = [Block("h2", "9. Examples")]
    blueprints = examples.get("blueprints") or []
    if not blueprints:
        blocks.append(Block("p", "No accepted blueprints to show."))
    for blueprint in blueprints:
        blocks.append(Block("p", f"Blueprint {blueprint['id']}: {blueprint['instruction']}"))
        blocks.append(Block("list", items=[f"{a.get('name')}({json.dumps(a.get('arguments'), ensure_ascii=False)})"
                                           for a in blueprint.get("actions") or []]
                            + [f"output: {o}" for o in blueprint.get("outputs") or []]))
    for key, title in (("verified", "A verified conversation"), ("failed", "A failed conversation")):
        conversation = examples.get(key)
        if conversation is None:
            blocks.append(Block("p", f"{title}: none in this run."))
            continue
        blocks.append(Block("p", f"{title}: blueprint {conversation['blueprint_id']}, attempt {conversation['attempt']}, "
                                 f"ended by {conversation['stop']}, reward {_num(conversation['reward'])}."))
        if conversation["reasons"]:
            blocks.append(Block("list", items=[f"why: {reason}" for reason in conversation["reasons"]]))
        blocks.append(Block("table", header=("Role", "Message or call"),
                            rows=[(t["role"], t["text"]) for t in conversation["turns"]]))
    return blocks


def build_blocks(stats: dict[str, Any], plots: Mapping[str, Path | None]) -> list[Block]:
    """The whole report, in order."""
    blocks = [Block("h1", "APIGen-MT run report"), Block("p", f"Run directory: {stats['run_dir']}")]
    for section in (_funnel, _rejections, _acceptance, _distributions, _committee, _cost):
        blocks += section(stats, plots)
    return blocks + _leftovers(stats) + _coverage(stats, plots) + _examples(stats, plots)


# -- the formats --------------------------------------------------------------------------------


def _escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _md(text: Any) -> str:
    """Markdown text: HTML-escaped (Markdown passes raw HTML through), quotes kept readable."""
    return html.escape(str(text), quote=False)


def _cell(value: Any) -> str:
    text = " ".join(_num(value).split())
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 3] + "..."
    return text


def render_markdown(blocks: Sequence[Block]) -> str:
    """Markdown; images are referenced by file name (they lie next to report.md)."""
    out = []
    for block in blocks:
        if block.kind == "h1":
            out.append(f"# {_md(block.text)}")
        elif block.kind == "h2":
            out.append(f"## {_md(block.text)}")
        elif block.kind == "p":
            out.append(_md(block.text))
        elif block.kind == "list":
            out.append("\n".join(f"- {_md(item)}" for item in block.items))
        elif block.kind == "table":
            def line(cells: Sequence[Any]) -> str:
                return "| " + " | ".join(_md(_cell(c)).replace("|", "&#124;") for c in cells) + " |"

            out.append("\n".join([line(block.header), "|" + "---|" * len(block.header), *(line(r) for r in block.rows)]))
        elif block.kind == "image" and block.path is not None:
            out.append(f"![{_md(block.text)}]({block.path.name})")
    return "\n\n".join(out) + "\n"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4c72b0; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f2f4f8; }
td { max-width: 480px; overflow-wrap: anywhere; }
img { max-width: 100%; margin: 1em 0; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(blocks: Sequence[Block]) -> str:
    """One self-contained page: inline style, PNGs as data URIs, every text escaped."""
    title = next((b.text for b in blocks if b.kind == "h1"), "report")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{_escape(title)}</title>",
           f"<style>{STYLE}</style>", "</head>", "<body>"]
    for block in blocks:
        if block.kind in ("h1", "h2"):
            out.append(f"<{block.kind}>{_escape(block.text)}</{block.kind}>")
        elif block.kind == "p":
            out.append(f"<p>{_escape(block.text)}</p>")
        elif block.kind == "list":
            out.append("<ul>" + "".join(f"<li>{_escape(item)}</li>" for item in block.items) + "</ul>")
        elif block.kind == "table":
            head = "".join(f"<th>{_escape(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(f"<td>{_escape(_cell(c))}</td>" for c in row) + "</tr>" for row in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif block.kind == "image" and block.path is not None:
            out.append(f'<img alt="{_escape(block.text)}" src="{_data_uri(block.path)}">')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# -- the terminal ------------------------------------------------------------------------------


def summary_text(stats: dict[str, Any], files: Sequence[Path]) -> str:
    """About eight lines for the terminal: what was kept, what feedback bought, the main
    rejection reasons, the cost per kept conversation, and where the report is."""
    p1, p2, acceptance, cost = stats["phase1"], stats["phase2"], stats["acceptance"], stats["cost"]
    lines = [f"report for {stats['run_dir']}"]
    if p1["requests"]:
        lines.append(f"phase 1: {p1['accepted']} of {p1['requests']} blueprint requests accepted ({p1['rejected']} rejected, "
                     f"{p1['unfinished']} unfinished, {p1['flagged_as_test_contamination']} flagged as test contamination)")
        lines.append(f"acceptance: {_pct(acceptance['first_round']['rate'])} in the first round (no feedback) vs "
                     f"{_pct(acceptance['with_feedback']['rate'])} with feedback (paper: "
                     f"{_pct(acceptance['paper']['without_feedback'])} vs {_pct(acceptance['paper']['with_feedback'])})")
    else:
        lines.append("phase 1: no blueprint requests")
    if p2["conversations"]:
        lines.append(f"phase 2: {p2['unique_verified']} verified conversations of {p2['conversations']} "
                     f"({_pct(p2['success_rate'])}); failed by stop: {_counts(p2['failed_by_stop'])}")
    else:
        lines.append("phase 2: no conversations")
    top = stats["rejections"]["by_rule"][:3]
    if top:
        lines.append("top rejection reasons: " + "; ".join(f"{r['stage']}/{r['rule']} ({r['count']})" for r in top))
    if cost["calls"]:
        per = cost["per_accepted_trajectory"] or cost["per_accepted_blueprint"]
        unit = "verified conversation" if cost["per_accepted_trajectory"] else "accepted blueprint"
        each = f", {_num(per['tokens'])} per {unit}" if per else ""
        lines.append(f"cost: {cost['total_tokens']:,} paid tokens in {cost['calls']:,} calls{each} "
                     f"({cost['cache_hits']:,} cache hits not paid)")
    else:
        lines.append("cost: no LLM calls recorded")
    lines.append("report: " + ", ".join(str(f) for f in files))
    return "\n".join(lines)
