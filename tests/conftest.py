"""Shared fixtures: the real tau2 domains, built once per test session."""

from __future__ import annotations

import pytest

from apigen_mt.domains.registry import get_domain


@pytest.fixture(scope="session")
def retail():
    return get_domain("retail")


@pytest.fixture(scope="session")
def airline():
    return get_domain("airline")


@pytest.fixture(scope="session")
def postgres_databases():
    """Fresh Postgres databases (``.fresh()`` -> URL), all dropped at the end of the session."""
    from postgres_fixture import Databases, postgres_server

    with postgres_server() as admin_url:
        databases = Databases(admin_url)
        try:
            yield databases
        finally:
            databases.drop_all()
