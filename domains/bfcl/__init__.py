"""BFCL's executable multi-turn API classes (bfcl-eval) as apigen-mt domains.

``get_domain("bfcl.file_system")`` (and ``bfcl.math``, ``bfcl.message``, ``bfcl.posting``,
``bfcl.ticket``, ``bfcl.trading``, ``bfcl.travel``, ``bfcl.vehicle``) builds a single-class
domain; ``BFCLDomain.for_entry("multi_turn_base_0")`` the domain of one multi-turn entry
with all its classes. Read/write kinds come from ``tool_kinds.json``, measured by
``python -m apigen_mt.domains.bfcl.classify``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.domains.bfcl.domain import BFCLDomain, BFCLEnvironment

__all__ = ["BFCLDomain", "BFCLEnvironment", "single_class_domain"]


def single_class_domain(short_name: str) -> "BFCLDomain":
    """The built-in domain ``bfcl.<short_name>`` (``file_system``, ``math``, ``trading``, ...)."""
    from apigen_mt.domains.bfcl.domain import BFCLDomain

    return BFCLDomain.for_class(short_name)


def __getattr__(name: str):  # imports bfcl-eval only when a domain is really used
    if name in ("BFCLDomain", "BFCLEnvironment"):
        from apigen_mt.domains.bfcl import domain

        return getattr(domain, name)
    raise AttributeError(name)
