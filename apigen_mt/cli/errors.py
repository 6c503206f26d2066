"""How a command fails: one line on standard error and exit status 2, never a traceback."""

from __future__ import annotations

import sys

__all__ = ["fail", "os_error_text"]


def fail(message: object) -> int:
    """Print ``apigen-mt: error: MESSAGE`` on standard error; the exit status to return (2)."""
    print(f"apigen-mt: error: {message}", file=sys.stderr)
    return 2


def os_error_text(error: OSError) -> str:
    """A file-system error as a user reads it: what could not be done, and to which path."""
    name = error.filename
    if name is None:
        return error.strerror or str(error)
    if isinstance(error, FileExistsError):  # e.g. mkdir(exist_ok=True) meeting a file
        return f"cannot create {name}: something of that name is in the way (a file where a directory is needed?)"
    if isinstance(error, NotADirectoryError):
        return f"cannot use {name}: part of that path is a file, not a directory"
    return f"cannot use {name}: {error.strerror or error}"
