"""Output files of the commands: atomic writes and standard output alike."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO


# -- helpers -------------------------------------------------------------------------------------
class atomic_writer:
    """Write to ``path.tmp`` and rename on success, so a crash never leaves half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")

    def __enter__(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.tmp.open("w", encoding="utf-8")
        return self.handle

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.handle.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class stdout_writer:
    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *_: Any) -> None:
        sys.stdout.flush()


