"""Helpers shared by the benchmarks (not a test: benchmarks print ratios, they assert nothing)."""

from __future__ import annotations

import gc
import os


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    gc.collect()
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"
