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
