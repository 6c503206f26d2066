"""The live progress display of ``apigen-mt generate``: the funnel per stage as it fills.

A :class:`PhaseProgress` is a :class:`~apigen_mt.runner.RunObserver`: the runner tells it
which node each thread finished and every model call; it counts (cheap, on the event loop)
and shows the counts. On a terminal it is a `rich` live panel redrawn a few times a
second; elsewhere (CI logs, pipes) it prints one plain line at most every ``interval``
seconds, and always a last one, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, TextIO

from apigen_mt.runner import NullObserver

__all__ = ["PhaseProgress", "progress_summary"]

PHASE1_FUNNEL = ("proposed", "format", "execution", "policy", "grounding", "dedup", "committee")
PHASE2_FUNNEL = ("conversations", "user_turns", "assistant_turns", "tool_rounds", "verified", "failed")


def progress_summary(node: str, update: Mapping[str, Any]) -> dict[str, Any]:
    """What :meth:`PhaseProgress.node_finished` reads of a node's update: all a cluster worker
    relays to its coordinator (a check's stage and verdict, conversations' rewards)."""
    summary: dict[str, Any] = {}
    check = update.get("check")
    if isinstance(check, Mapping):
        summary["check"] = {"stage": check.get("stage"), "passed": check.get("passed")}
    if node == "verify":
        summary["trajectories"] = [{"reward": record.get("reward")} for record in update.get("trajectories") or []]
    return summary


class PhaseProgress(NullObserver):
    """Counts one phase's threads, funnel stages and LLM calls, and shows them."""

    def __init__(self, phase: int, total: int, *, stream: TextIO | None = None, live: bool | None = None,
                 interval: float = 10.0) -> None:
        self.phase = phase
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval
        self.threads: Counter[str] = Counter()
        self.funnel: Counter[str] = Counter()
        self.llm: Counter[str] = Counter()
        self.started_at = time.monotonic()
        self._printed_at = 0.0
        self._display: Any = None

    # -- RunObserver ---------------------------------------------------------------------------

    def thread_started(self, thread_id: str, *, resumed: bool) -> None:
        self.threads["resumed" if resumed else "started"] += 1

    def node_finished(self, thread_id: str, node: str, update: Mapping[str, Any]) -> None:
        check = update.get("check") if isinstance(update.get("check"), Mapping) else None
        if node == "propose":
            self.funnel["proposed"] += 1
        elif node.endswith("_check") and check is not None and check.get("passed"):
            self.funnel[str(check.get("stage"))] += 1
        elif node == "aggregate" and check is not None and check.get("passed"):
            self.funnel["committee"] += 1
        elif node == "feedback":
            self.funnel["feedback"] += 1
        elif node == "start_attempt":
            self.funnel["conversations"] += 1
        elif node == "user_turn":
            self.funnel["user_turns"] += 1
        elif node == "assistant_turn":
            self.funnel["assistant_turns"] += 1
        elif node == "tools":
            self.funnel["tool_rounds"] += 1
        elif node == "verify":
            for record in update.get("trajectories") or []:
                self.funnel["verified" if record.get("reward") == 1.0 else "failed"] += 1
        self._maybe_print()

    def thread_finished(self, outcome: Any) -> None:
        values = outcome.values or {}
        if outcome.reused:
            self.threads["reused"] += 1
        if not outcome.ok:
            self.threads["unfinished"] += 1
        else:
            self.threads[str(values.get("status") or "unfinished")] += 1
        self.threads["done"] += 1
        self._maybe_print()

    def llm_call(self, record: Any) -> None:
        self.llm["calls"] += 1
        if record.cache_hit:
            self.llm["cached"] += 1
        else:
            self.llm["tokens"] += record.total_tokens
        if record.error:
            self.llm["errors"] += 1

    # -- showing -------------------------------------------------------------------------------

    def line(self) -> str:
        """One line: threads, the funnel, LLM use, rate."""
        elapsed = time.monotonic() - self.started_at
        t = self.threads
        kept = t["accepted"]
        names = PHASE1_FUNNEL if self.phase == 1 else PHASE2_FUNNEL
        funnel = " > ".join(f"{name.replace('_', ' ')} {self.funnel[name]}" for name in names)
        if self.phase == 1:
            funnel += f", feedback {self.funnel['feedback']}"
        parts = [
            f"phase {self.phase} [{t['done']}/{self.total} done]",
            f"accepted {kept}, rejected {t['rejected']}, unfinished {t['unfinished']}"
            + (f", reused {t['reused']}" if t["reused"] else "") + (f", resumed {t['resumed']}" if t["resumed"] else ""),
            funnel,
            f"llm {self.llm['calls']} calls ({self.llm['cached']} cached, {self.llm['errors']} failed), "
            f"{self.llm['tokens']:,} tokens",
            f"{kept / elapsed * 60 if elapsed else 0:.1f} accepted/min, {_duration(elapsed)}",
        ]
        return " | ".join(parts)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for part in self.line().split(" | "):
            table.add_row(part)
        return table

    def _maybe_print(self) -> None:
        if self.live:
            return  # the live display redraws by itself
        now = time.monotonic()
        if now - self._printed_at >= self.interval:
            self._printed_at = now
            print(self.line(), file=self.stream, flush=True)

    def __enter__(self) -> PhaseProgress:
        self.started_at = time.monotonic()
        self._printed_at = self.started_at  # the first plain line after one interval
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._display = Live(self, console=Console(file=self.stream), refresh_per_second=4, transient=True)
            self._display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._display is not None:
            self._display.__exit__(*exc)
            self._display = None
        print(self.line(), file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
