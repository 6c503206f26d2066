"""Weighted sampling without replacement, deterministic given the rng (shared by samplers)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def weighted_order(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> Iterator[T]:
    """Yield ``items`` one by one, each draw proportional to the remaining weights."""
    items, weights = list(items), list(weights)
    while items:
        point = rng.random() * sum(weights)
        index = len(items) - 1
        for i, weight in enumerate(weights):
            point -= weight
            if point < 0:
                index = i
                break
        weights.pop(index)
        yield items.pop(index)
