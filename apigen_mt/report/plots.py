"""The report's figures, drawn from the stats dict alone (one function per figure).

Figures are built with matplotlib's object API on an explicit Agg canvas, never through
``pyplot``: no display is needed, no global backend is switched under the caller (a
notebook keeps its own), and nothing stays registered once a figure is saved. A figure
without data is not drawn: its function returns None and the text says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["PLOTS", "acceptance_plot", "committee_plot", "cost_plot", "distributions_plot", "draw_all", "funnel_plot",
           "rejections_plot"]

DPI = 110
BLUE, GREY, GREEN, RED = "#4c72b0", "#9a9a9a", "#55a868", "#c44e52"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)  # the explicit Agg canvas
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, format="png")
    figure.clear()
    return path


def _label_bars(axes: Any, bars: Any, texts: list[str]) -> None:
    for bar, text in zip(bars, texts):
        axes.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)


def _text(value: Any) -> str:
    """Run text as a literal label: ``$`` would start matplotlib's math mode."""
    return str(value).replace("$", r"\$")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def funnel_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """Phase-1 rounds through each stage, and Phase-2 conversations to unique verified."""
    phase1, phase2 = stats["phase1"], stats["phase2"]
    rows1 = [(row["step"], row["count"]) for row in phase1["funnel"]] if phase1["rounds"] else []
    rows2 = [("conversations", phase2["conversations"]), ("verified (reward 1)", phase2["verified"]),
             ("unique verified", phase2["unique_verified"])] if phase2["conversations"] else []
    panels = [(title, rows) for title, rows in (("Phase 1: rounds (all rounds of all requests)", rows1),
                                                 ("Phase 2: conversations", rows2)) if rows]
    if not panels:
        return None
    figure = _figure(8, 1.2 + 0.45 * sum(len(rows) for _, rows in panels))
    grid = figure.add_gridspec(len(panels), 1, height_ratios=[len(rows) for _, rows in panels])
    for index, (title, rows) in enumerate(panels):
        axes = figure.add_subplot(grid[index])
        labels, counts = [r[0] for r in rows][::-1], [r[1] for r in rows][::-1]
        bars = axes.barh(labels, counts, color=BLUE if index == 0 else GREEN)
        top = max(counts) or 1
        _label_bars(axes, bars, [f"{c} ({c / top:.0%})" for c in counts])
        axes.set_xlim(0, top * 1.2)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title, fontsize=10, loc="left")
        axes.tick_params(labelsize=8)
    return _save(figure, out_dir / "funnel.png")


def rejections_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """The most frequent (stage, rule) pairs among failed rounds."""
    rows = stats["rejections"]["by_rule"][: stats["rejections"]["top"]]
    if not rows:
        return None
    figure = _figure(9, 1.0 + 0.35 * len(rows))
    axes = figure.add_subplot()
    labels = [_text(f"{r['stage']}: {r['rule']}"[:70]) for r in rows][::-1]
    counts = [r["count"] for r in rows][::-1]
    bars = axes.barh(range(len(rows)), counts, color=RED)
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    _label_bars(axes, bars, [str(c) for c in counts])
    axes.set_xlim(0, max(counts) * 1.15)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("failed rounds")
    axes.set_title("Rejection reasons by stage and rule", fontsize=10, loc="left")
    return _save(figure, out_dir / "rejections.png")


def acceptance_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """First-round vs any-round acceptance next to the paper's, and acceptance per round."""
    acceptance = stats["acceptance"]
    if not acceptance["finished_requests"]:
        return None
    figure = _figure(10, 3.6)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    ours = [acceptance["first_round"]["rate"] or 0.0, acceptance["with_feedback"]["rate"] or 0.0]
    paper = [acceptance["paper"]["without_feedback"], acceptance["paper"]["with_feedback"]]
    positions = [0, 1]
    width = 0.38
    bars = left.bar([p - width / 2 for p in positions], ours, width, color=BLUE, label="this run")
    bars += left.bar([p + width / 2 for p in positions], paper, width, color=GREY, label="paper (APIGen-MT)")
    for bar, value in zip(bars, ours + paper):
        left.annotate(_pct(value), (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    left.set_xticks(positions, ["first round\n(no feedback)", "any round\n(with feedback)"])
    left.set_ylim(0, 1.1)
    left.set_ylabel("share of finished requests accepted")
    left.legend(fontsize=8)
    left.set_title("Acceptance with vs without feedback", fontsize=10, loc="left")
    rounds = acceptance["per_round"]
    numbers = [r["round"] for r in rounds]
    bars = right.bar(numbers, [r["rate"] or 0.0 for r in rounds], color=BLUE, label="accepted / reached this round")
    for bar, row in zip(bars, rounds):
        right.annotate(f"{row['accepted']}/{row['reached']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                       ha="center", va="bottom", fontsize=8)
    right.plot(numbers, [r["cumulative_rate"] or 0.0 for r in rounds], color=GREEN, marker="o",
               label="accepted by this round (cumulative)")
    right.set_xticks(numbers)
    right.set_ylim(0, 1.1)
    right.set_xlabel("round")
    right.legend(fontsize=8)
    right.set_title("Acceptance per round", fontsize=10, loc="left")
    return _save(figure, out_dir / "acceptance.png")


def distributions_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """Histograms of turns, tool calls and user turns per verified, unique conversation."""
    distributions = stats["distributions"]
    if not distributions["count"]:
        return None
    figure = _figure(11, 3.2)
    for index, (name, title) in enumerate((("turns", "turns"), ("tool_calls", "tool calls"), ("user_turns", "user turns"))):
        axes = figure.add_subplot(1, 3, index + 1)
        values = distributions[name]["values"]
        low, high = min(values), max(values)
        bins = [b - 0.5 for b in range(low, high + 2)] if high - low <= 40 else 30  # one bar per count while readable
        axes.hist(values, bins=bins, color=BLUE, edgecolor="white")
        if high - low <= 20:
            axes.set_xticks(range(low, high + 1))
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.axvline(distributions[name]["mean"], color=RED, linestyle="--", linewidth=1, label=f"mean {distributions[name]['mean']:.1f}")
        axes.set_title(title, fontsize=10)
        axes.set_ylabel("conversations" if index == 0 else "")
        axes.legend(fontsize=8)
    return _save(figure, out_dir / "distributions.png")


def committee_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """Per-metric agreement and pass-vote share of the judges."""
    metrics = stats["committee"]["metrics"]
    if not metrics:
        return None
    figure = _figure(7, 3.2)
    axes = figure.add_subplot()
    names = list(metrics)
    positions = list(range(len(names)))
    width = 0.38
    axes.bar([p - width / 2 for p in positions], [metrics[m]["agreement"] or 0.0 for m in names], width, color=BLUE,
             label="judges unanimous")
    axes.bar([p + width / 2 for p in positions], [metrics[m]["pass_vote_share"] or 0.0 for m in names], width, color=GREEN,
             label="pass votes")
    axes.set_xticks(positions, names, fontsize=8)
    axes.set_ylim(0, 1.1)
    axes.legend(fontsize=8)
    axes.set_title("Committee: agreement and pass votes per metric", fontsize=10, loc="left")
    return _save(figure, out_dir / "committee.png")


def cost_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """Paid prompt and completion tokens by role (cache hits are not paid)."""
    by_role = stats["cost"]["by_role"]
    if not by_role or not any(row["calls"] for row in by_role.values()):
        return None
    roles = list(by_role)[::-1]
    prompt = [by_role[r]["prompt_tokens"] for r in roles]
    completion = [by_role[r]["completion_tokens"] for r in roles]
    figure = _figure(8, 1.2 + 0.4 * len(roles))
    axes = figure.add_subplot()
    positions = list(range(len(roles)))
    axes.barh(positions, prompt, color=BLUE, label="prompt")
    bars = axes.barh(positions, completion, left=prompt, color=GREEN, label="completion")
    axes.set_yticks(positions, [_text(r) for r in roles], fontsize=8)
    for bar, role in zip(bars, roles):
        row = by_role[role]
        axes.annotate(f"{row['total_tokens']:,} ({row['calls']} calls, {row['cache_hits']} cached)",
                      (bar.get_x() + bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_xlim(0, max([p + c for p, c in zip(prompt, completion)] + [1]) * 1.5)
    axes.set_xlabel("paid tokens")
    axes.legend(fontsize=8, loc="lower right")
    axes.set_title("Tokens by role", fontsize=10, loc="left")
    return _save(figure, out_dir / "cost.png")


def coverage_plot(stats: dict[str, Any], out_dir: Path) -> Path | None:
    """Accepted blueprints per write tool, one panel per domain."""
    coverage = {d: c for d, c in (stats.get("coverage") or {}).items() if c["write_tools"]}
    if not coverage:
        return None
    figure = _figure(5 * len(coverage) + 1, 3.4)
    for index, (domain, found) in enumerate(coverage.items()):
        axes = figure.add_subplot(1, len(coverage), index + 1)
        names = list(found["write_tools"])
        counts = [found["write_tools"][n] for n in names]
        bars = axes.barh(names, counts, color=[BLUE if n else RED for n in counts])
        _label_bars(axes, bars, [str(n) for n in counts])
        axes.invert_yaxis()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{domain}: accepted blueprints per write tool", fontsize=10)
        axes.tick_params(axis="y", labelsize=8)
    return _save(figure, out_dir / "coverage.png")


PLOTS: dict[str, Callable[[dict[str, Any], Path], Path | None]] = {
    "funnel": funnel_plot,
    "rejections": rejections_plot,
    "acceptance": acceptance_plot,
    "distributions": distributions_plot,
    "committee": committee_plot,
    "cost": cost_plot,
    "coverage": coverage_plot,
}
"""Every figure by name, in report order."""


def draw_all(stats: dict[str, Any], out_dir: Path) -> dict[str, Path | None]:
    """Each figure's path (None where there was nothing to draw)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, draw in PLOTS.items():
        paths[name] = draw(stats, out_dir)
        stale = out_dir / f"{name}.png"
        if paths[name] is None and stale.exists():  # left by an earlier report of this run
            stale.unlink()
    return paths
