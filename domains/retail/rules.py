"""Policy rules of this domain as executable checks over an execution trace."""

from __future__ import annotations

from apigen_mt.domains.base import PolicyRule

RULES: list[PolicyRule] = []
