"""JSON Lines reading that reports bad lines by number instead of failing the whole file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: Path | str) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, parsed value or None, error or None)`` for each non-blank line."""
    with Path(path).open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as error:
                yield number, None, f"line {number}: invalid JSON ({error.msg} at column {error.colno})"
