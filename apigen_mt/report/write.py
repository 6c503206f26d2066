"""``write_report``: a run directory in, report files out (what ``apigen-mt report`` calls).

The store is only read. Numbers come from :mod:`.stats`, figures from :mod:`.plots`,
text from :mod:`.render`; this module wires them and writes the files, so each of those
stays testable alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plots import draw_all
from .render import build_blocks, render_html, render_markdown, summary_text
from .stats import compute_stats

__all__ = ["REPORT_DIR", "Report", "write_report"]

REPORT_DIR = "report"


@dataclass
class Report:
    """The files of one report and the numbers in them."""

    markdown_path: Path
    html_path: Path
    json_path: Path
    plots: list[Path] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def summary_text(self) -> str:
        """About eight lines for the terminal, ending with where the report files are."""
        return summary_text(self.stats, [self.markdown_path, self.html_path])


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Write ``report.md``, ``report.html`` (self-contained), ``report.json`` and the PNGs
    for ``run_dir`` into ``out_dir`` (default ``<run_dir>/report``). A store that cannot be
    read, or a directory without one, raises :class:`~apigen_mt.store.StoreError`; an empty one gives a report that says
    there is no data."""
    from apigen_mt.store import STORE_FILE, RunStore, StoreError

    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).exists():  # RunStore would create an empty store: say so instead
        raise StoreError(f"{run_dir} has no {STORE_FILE}: run `apigen-mt generate` first")
    out = Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(run_dir)
    try:
        stats = compute_stats(store)
    finally:
        store.db.close()
    drawn = draw_all(stats, out)
    stats["plots"] = {name: path.name if path is not None else None for name, path in drawn.items()}
    blocks = build_blocks(stats, drawn)
    report = Report(markdown_path=out / "report.md", html_path=out / "report.html", json_path=out / "report.json",
                    plots=[path for path in drawn.values() if path is not None], stats=stats)
    report.markdown_path.write_text(render_markdown(blocks), encoding="utf-8")
    report.html_path.write_text(render_html(blocks), encoding="utf-8")
    report.json_path.write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    return report
