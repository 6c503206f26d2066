"""A tau2 environment whose database tables are copy-on-write views of the pristine one."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from apigen_mt.domains.base import (
    ArgumentError,
    Environment,
    RecordChange,
    ToolExecutionError,
    ToolKind,
    UnknownToolError,
)
from apigen_mt.tools import arithmetic
from apigen_mt.tools.cow_table import CowTable
from apigen_mt.tools.frozen import PristineStateError, acting_tool
from apigen_mt.tools.json_schema import argument_errors, coerce_integers
from apigen_mt.tools.jsonable import to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.domains.tau2bench.domain import Tau2Domain


class Tau2Environment(Environment):
    """tau2's own toolkit class, bound to a database made of :class:`CowTable`s."""

    def __init__(self, domain: "Tau2Domain", tables: dict[str, CowTable]) -> None:
        self.domain = domain
        self._rebind(tables)

    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        spec = self.domain.tool(name)
        if spec is None:
            raise UnknownToolError(f"Tool '{name}' not found.")
        problems = argument_errors(arguments, spec.parameters)
        if problems:
            raise ArgumentError(f"Invalid arguments for {name}: " + "; ".join(problems))
        if name == "calculate":
            try:
                return arithmetic.calculate(arguments["expression"])
            except ValueError as error:
                raise ToolExecutionError(str(error)) from None
        arguments = coerce_integers(arguments, spec.parameters)
        # tau2 checks before it writes, but not everywhere: keep the overlays to restore.
        saved = None if spec.kind is ToolKind.READ else {n: t.fork() for n, t in self._tables.items()}
        try:
            with acting_tool(name):
                result = getattr(self._toolkit, name)(**arguments)
        except PristineStateError:  # a bug, not a business failure: the executor says so
            if saved is not None:
                self._rebind(saved)
            raise
        except Exception as error:  # tau2 signals business failures with plain exceptions
            if saved is not None:
                self._rebind(saved)
            raise ToolExecutionError(str(error) or type(error).__name__) from error
        return to_jsonable(result)

    def _rebind(self, tables: dict[str, CowTable]) -> None:
        self._tables = tables
        self._toolkit = self.domain.toolkit_class(self.domain.db_class.model_construct(**tables))

    def changed_records(self) -> Iterator[RecordChange]:
        for table_name, table in self._tables.items():
            for key, pristine, current in table.touched():
                before = copy.deepcopy(self.domain.pristine_dump(table_name, key)) if pristine is not None else None
                after = current.model_dump(mode="json") if current is not None else None
                if before != after:
                    yield RecordChange(table_name, key, before, after)

    def record(self, table: str, key: str) -> Any:
        rows = self._tables.get(table) if isinstance(table, str) else None
        if rows is None or not isinstance(key, str) or key not in rows:
            return None
        return rows.peek(key).model_dump(mode="json")

    def fork(self) -> "Tau2Environment":
        return Tau2Environment(self.domain, {name: t.fork() for name, t in self._tables.items()})

    def dump(self) -> dict[str, dict[str, Any]]:
        return {name: {key: table.peek(key).model_dump(mode="json") for key in table} for name, table in self._tables.items()}
