"""Finds domains by name: the built-in ones, or a user's module given by its import path.

``get_domain("retail")`` builds a shipped domain; ``get_domain("mypkg.mydomain")`` imports a
user module that defines ``DOMAIN`` (a :class:`Domain` instance) or ``get_domain()``
returning one (see ``domains/library`` for the template). Domains are built once per
process: loading pristine data is the expensive part, and environments fork from it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping

from apigen_mt.domains.base import Domain, DomainError


def _builtin(module: str, attribute: str, *args: str) -> Callable[[], Domain]:
    def build() -> Domain:
        return getattr(importlib.import_module(f"apigen_mt.domains.{module}"), attribute)(*args)

    return build


BUILTIN: dict[str, tuple[Callable[[], Domain], str]] = {
    "retail": (_builtin("retail", "RetailDomain"), "tau2-bench retail"),
    "airline": (_builtin("airline", "AirlineDomain"), "tau2-bench airline"),
    "telecom": (_builtin("telecom", "TelecomDomain"), "tau2-bench telecom (the user acts on a phone too)"),
    "library": (_builtin("library", "get_domain"), "example: a public library (template for custom domains)"),
    "bfcl.file_system": (_builtin("bfcl", "single_class_domain", "file_system"), "BFCL GorillaFileSystem"),
    "bfcl.math": (_builtin("bfcl", "single_class_domain", "math"), "BFCL MathAPI"),
    "bfcl.message": (_builtin("bfcl", "single_class_domain", "message"), "BFCL MessageAPI"),
    "bfcl.posting": (_builtin("bfcl", "single_class_domain", "posting"), "BFCL TwitterAPI"),
    "bfcl.ticket": (_builtin("bfcl", "single_class_domain", "ticket"), "BFCL TicketAPI"),
    "bfcl.trading": (_builtin("bfcl", "single_class_domain", "trading"), "BFCL TradingBot"),
    "bfcl.travel": (_builtin("bfcl", "single_class_domain", "travel"), "BFCL TravelAPI"),
    "bfcl.vehicle": (_builtin("bfcl", "single_class_domain", "vehicle"), "BFCL VehicleControlAPI"),
}


BFCL_ENTRY_PREFIX = "bfcl.multi_turn_"


def generating_domain(name: str) -> Domain:
    """The domain called ``name``, if Phase 1 and Phase 2 can generate on it (DomainError if
    not: a domain where the user acts too, until dual-control blueprints are generated)."""
    domain = get_domain(name)
    if domain.user_tools:
        raise DomainError(
            f"domain {name!r} has tools of the user's own ({len(domain.user_tools)}: the user acts too), and "
            "Phase 1 and Phase 2 do not generate dual-control tasks yet. Its environment and tools work "
            "(apigen-mt check-domain, graph, import-tau2, validate, export); blueprints with user actions "
            "are not generated yet"
        )
    return domain


def pool_root(name: str) -> str:
    """The domain whose state pool ``name`` is one state of (``bfcl.ticket@multi_turn_base_23``
    -> ``bfcl.ticket``), else ``name`` itself: reports count a run's states as one domain."""
    return name.partition("@")[0] if "@" in name else name


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a domain shipped here (not a user's module)."""
    return name in BUILTIN or name.startswith(BFCL_ENTRY_PREFIX) or (
        name.partition("@")[0] in BUILTIN and name.startswith("bfcl.") and "@" in name
    )


_LOADED: dict[str, Domain] = {}
_LOADING = threading.RLock()  # threads asking at once for a domain wait for one build, not build it each


def get_domain(name: str) -> Domain:
    """The domain called ``name`` (built-in) or defined by the module at import path ``name``."""
    domain = _LOADED.get(name)
    if domain is None:
        with _LOADING:
            domain = _LOADED.get(name)
            if domain is None:
                domain = _LOADED[name] = _load(name)
    return domain


def _load(name: str) -> Domain:
    if name in BUILTIN:
        return BUILTIN[name][0]()
    if name.startswith(BFCL_ENTRY_PREFIX):  # one BFCL multi-turn scenario, e.g. bfcl.multi_turn_base_7
        from apigen_mt.domains.bfcl.domain import BFCLDomain

        return BFCLDomain.for_entry(name[len("bfcl."):])
    base, _, state = name.partition("@")
    if state and base in BUILTIN and base.startswith("bfcl."):  # a class in another state: bfcl.ticket@multi_turn_base_23
        from apigen_mt.domains.bfcl.domain import BFCLDomain

        return BFCLDomain.for_class(base[len("bfcl."):], state)
    if "." not in name:
        raise DomainError(
            f"unknown domain {name!r}. Built-in domains: {', '.join(BUILTIN)}; "
            "one BFCL scenario: bfcl.<entry id>, e.g. bfcl.multi_turn_base_7. "
            "A custom domain is given by its module path, e.g. --domain mypkg.mydomain"
        )
    return load_domain_module(name)


def load_domain_module(path: str) -> Domain:
    """Import a user domain module and return the domain it defines."""
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as error:
        raise DomainError(
            f"cannot import domain module {path!r}: {error}. Is it installed or on PYTHONPATH?"
        ) from error
    except Exception as error:  # a broken user module must not look like our crash
        raise DomainError(f"domain module {path!r} failed to import: {type(error).__name__}: {error}") from error
    candidate = getattr(module, "DOMAIN", None)
    if candidate is None and callable(getattr(module, "get_domain", None)):
        try:
            candidate = module.get_domain()
        except Exception as error:
            raise DomainError(f"{path}.get_domain() failed: {type(error).__name__}: {error}") from error
    if not isinstance(candidate, Domain):
        raise DomainError(
            f"domain module {path!r} must define DOMAIN (a apigen_mt.domains.base.Domain) "
            f"or get_domain() returning one; found {type(candidate).__name__}"
        )
    problems = domain_problems(candidate)
    if problems:
        raise DomainError(f"domain module {path!r} is not usable: " + "; ".join(problems))
    return candidate


def domain_problems(domain: Domain) -> list[str]:
    """Contract violations that would only surface later as confusing errors."""
    problems = []
    if not domain.name:
        problems.append("it has no name")
    try:
        tools = domain.tools
    except Exception as error:
        return problems + [f"its tools cannot be listed: {error}"]
    if not tools:
        problems.append("it has no tools")
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate tool names: {duplicates}")
    for spec in tools:
        if not isinstance(spec.parameters, Mapping) or spec.parameters.get("type") != "object":
            problems.append(f"tool {spec.name!r} parameters must be a JSON schema of type object")
    try:
        domain.new_env()
    except Exception as error:
        problems.append(f"new_env() failed: {type(error).__name__}: {error}")
    return problems
