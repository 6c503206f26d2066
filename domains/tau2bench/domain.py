"""Base class of the tau2-bench domains: pristine data loaded once, tools from tau2 itself."""

from __future__ import annotations

import functools
import importlib
from typing import Any, ClassVar

from apigen_mt.domains.base import Domain, PolicyRule, ToolKind, ToolSpec
from apigen_mt.domains.tau2bench.environment import Tau2Environment
from apigen_mt.domains.tau2bench.runtime import import_tau2
from apigen_mt.tools.cow_table import CowTable
from apigen_mt.tools.frozen import freeze, freeze_model
from apigen_mt.tools.json_schema import inline_refs

_KINDS = {"read": ToolKind.READ, "write": ToolKind.WRITE}


@functools.cache
def _load_pristine(tau2_name: str) -> tuple[Any, type, type, str]:
    """(pristine db, db class, toolkit class, policy text) of one tau2 domain, per process.

    The pristine db is frozen: every environment shares it, and tau2 code that changed a
    record it reached by iteration would change them all (a keyed lookup copies)."""
    env_module = import_tau2(f"domains.{tau2_name}.environment")
    environment = env_module.get_environment()
    toolkit = environment.tools
    db, db_class = toolkit.db, type(toolkit.db)
    for name, value in list(db.__dict__.items()):
        if isinstance(value, dict):
            db.__dict__[name] = freeze(value, name)
    freeze_model(db, "the database")
    return db, db_class, type(toolkit), environment.get_policy()


class Tau2Domain(Domain):
    """A tau2-bench domain; subclasses set ``tau2_name`` and the sampling hooks."""

    tau2_name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._pristine, self.db_class, self.toolkit_class, self._policy = _load_pristine(self.tau2_name)
        self._table_names = [
            name
            for name, value in vars(self._pristine).items()
            if isinstance(value, dict)
        ]
        self._dumps: dict[tuple[str, str], Any] = {}
        self._tools = self._build_tool_specs()

    # -- Domain --------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self._policy

    @property
    def tools(self) -> list[ToolSpec]:
        return self._tools

    def new_env(self) -> Tau2Environment:
        tables = {name: CowTable(getattr(self._pristine, name)) for name in self._table_names}
        return Tau2Environment(self, tables)

    def _rules_module(self) -> Any:
        package = type(self).__module__.rsplit(".", 1)[0]
        return importlib.import_module(f"{package}.rules")

    @property
    def policy_rules(self) -> list[PolicyRule]:
        """``RULES`` of the subclass's package (``domains/<name>/rules.py``)."""
        return self._rules_module().RULES

    @property
    def generation_policy_rules(self) -> list[PolicyRule]:
        """``GENERATION_RULES`` of the rules module when it has them, else ``RULES``."""
        module = self._rules_module()
        return getattr(module, "GENERATION_RULES", module.RULES)

    def user_ids(self) -> list[str]:
        return sorted(self._pristine.users)

    def example_blueprints(self) -> list[Any]:
        from apigen_mt.domains.tau2bench.tasks import tau2_blueprints

        return tau2_blueprints(self.tau2_name, "train")

    # -- helpers for subclasses and the environment ------------------------------------------
    @property
    def pristine(self) -> Any:
        """The shared pristine tau2 database: read it, never change it."""
        return self._pristine

    def pristine_dump(self, table: str, key: str) -> Any:
        """A pristine record as JSON data, cached (diffs compare against it often)."""
        cache_key = (table, key)
        if cache_key not in self._dumps:
            self._dumps[cache_key] = getattr(self._pristine, table)[key].model_dump(mode="json")
        return self._dumps[cache_key]

    def _build_tool_specs(self) -> list[ToolSpec]:
        return tool_specs(self.toolkit_class(self._pristine))


def tool_specs(toolkit: Any) -> list[ToolSpec]:
    """A tau2 toolkit's tools as specs, with tau2's own read/write marks (its generic tools: other)."""
    kinds = import_tau2("environment.toolkit").get_tool_types(toolkit)
    specs = []
    for name, tool in toolkit.get_tools().items():
        function = tool.openai_schema["function"]
        specs.append(
            ToolSpec(
                name=name,
                description=function.get("description", ""),
                parameters=inline_refs(function.get("parameters", {"type": "object", "properties": {}})),
                kind=_KINDS.get(getattr(kinds[name], "value", str(kinds[name])), ToolKind.OTHER),
            )
        )
    return specs
