"""Groups of validated blueprints of the same user, the input of task recombination.

A blueprint's user is its ``user_id`` field (set by Phase 1 from the sampled user) or,
failing that, the one ``user_id`` argument its actions use. Blueprints of unknown or
several users are never grouped: a recombined task must stay one user's conversation.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from apigen_mt.blueprint import blueprint_json

__all__ = ["group_by_user", "user_of"]


def user_of(blueprint: Any) -> str | None:
    """The one user a blueprint is about, or None."""
    data = blueprint_json(blueprint)
    if isinstance(data.get("user_id"), str) and data["user_id"]:
        return data["user_id"]
    users = {
        (action.get("arguments") or {}).get("user_id")
        for action in data.get("actions") or []
        if isinstance(action, Mapping) and isinstance(action.get("arguments"), Mapping)
    }
    users.discard(None)
    return str(users.pop()) if len(users) == 1 else None


def group_by_user(
    blueprints: Iterable[Any], *, size: int = 2, rng: random.Random | None = None
) -> list[list[dict[str, Any]]]:
    """Disjoint groups of ``size`` blueprints (JSON form) sharing a user and a domain (one
    initial state: blueprints drawn in two states of a pool are not one task), in a stable
    order; ``rng`` shuffles each user's blueprints first. Leftovers smaller than ``size`` are
    dropped."""
    if size < 2:
        raise ValueError(f"a recombination group needs at least 2 blueprints, not {size}")
    by_user: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for blueprint in blueprints:
        data = dict(blueprint_json(blueprint))
        user = user_of(data)
        if user is not None:
            by_user.setdefault((str(data.get("domain") or ""), user), []).append(data)
    groups = []
    for user in sorted(by_user):
        members = by_user[user]
        if rng is not None:
            rng.shuffle(members)
        groups += [members[i : i + size] for i in range(0, len(members) - size + 1, size)]
    return groups
