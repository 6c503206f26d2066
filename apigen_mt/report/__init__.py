"""Run reports: a run directory's store -> Markdown, self-contained HTML, PNG plots, JSON.

    from apigen_mt.report import write_report

    report = write_report("runs/r1")      # -> runs/r1/report/report.{md,html,json} + *.png
    print(report.summary_text())

Sections: the funnel per stage, rejection reasons by rule, acceptance with vs without
feedback, conversation lengths, committee agreement, cost, unfinished items and
contamination flags. :func:`compute_stats` gives the numbers alone.
"""

from .stats import compute_stats
from .write import Report, write_report

__all__ = ["Report", "compute_stats", "write_report"]
