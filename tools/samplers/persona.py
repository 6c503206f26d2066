"""Persona sampler: who the simulated user is and how they talk.

Personas come from the domain's persona set (``domains/personas/<set>.json``, loaded by
:func:`apigen_mt.domains.personas.load_personas`). A domain without a set gives None. A set
that is named but missing or malformed raises :class:`~apigen_mt.domains.base.DomainError`:
a broken configuration should be fixed, not silently produce persona-less data.
"""

from __future__ import annotations

import random
from typing import Any

from apigen_mt.domains.base import Domain


class PersonaSampler:
    """Draws one persona of the domain as JSON data ``{id, description, style}``."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    def sample(self, rng: random.Random) -> dict[str, Any] | None:
        persona = self.domain.sample_persona(rng)
        if persona is None:
            return None
        return {"id": persona.id, "description": persona.description, "style": persona.style}
