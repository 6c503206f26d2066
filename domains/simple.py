"""A base for user domains whose state is plain JSON data and whose tools are plain functions.

Writing a domain then takes four things (see ``domains/library`` for a complete template):

* the data: ``{table: {key: record}}`` where every record is a JSON object (a dict);
* the tools: functions decorated with :func:`tool`, taking ``db`` (table name ->
  :class:`~apigen_mt.tools.cow_table.CowTable` of records) first and typed keyword
  arguments after it. The JSON schema an LLM sees is derived from the type hints, the
  descriptions from the docstring (Google style, with an ``Args:`` section);
* the policy text the assistant must follow;
* optionally, :class:`~apigen_mt.domains.base.PolicyRule`\\ s checking that policy over an
  execution trace, example blueprints, a persona set and the user-sampling hooks.

::

    @tool(kind="write")
    def renew_loan(db: Db, loan_id: str) -> dict:
        \"\"\"Renew an active loan by 14 days.

        Args:
            loan_id: The loan id, such as 'L0001'.
        \"\"\"
        loan = db["loans"].get(loan_id)          # keyed access: a private copy, safe to change
        if loan is None:
            raise ToolExecutionError("Loan not found")
        ...

    DOMAIN = SimpleDomain("library", tools=[renew_loan, ...], data=Path(...), policy=Path(...))

Business failures are signalled by raising :class:`ToolExecutionError` (a ``ValueError`` is
converted to one); a failed call leaves the state as it was before the call. Any other
exception is treated as a bug in the tool and reported as such by the executor.

**The copy-on-write invariant**: records reached by *iterating* a table (``items()``,
``values()``) are the pristine objects shared by every environment, frozen
(:mod:`apigen_mt.tools.frozen`): changing one raises a ``PristineStateError`` naming the tool.
Look a record up by key (``db[table][key]`` or ``.get(key)``) to get this environment's own,
mutable copy.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from apigen_mt.domains.base import (
    ArgumentError,
    Domain,
    DomainError,
    Environment,
    PolicyRule,
    RecordChange,
    ToolError,
    ToolExecutionError,
    ToolKind,
    ToolSpec,
    UnknownToolError,
)
from apigen_mt.tools.cow_table import CowTable
from apigen_mt.tools.frozen import acting_tool, freeze
from apigen_mt.tools.jsonable import to_jsonable
from apigen_mt.tools.json_schema import argument_errors, inline_refs
from apigen_mt.tools.jsonl import read_jsonl
from apigen_mt.tools.state_diff import canonical_json

__all__ = [
    "Db",
    "SimpleDomain",
    "SimpleEnvironment",
    "ToolExecutionError",
    "parse_docstring",
    "tool",
]

#: What a tool receives as ``db``: table name -> copy-on-write table of JSON records.
Db: TypeAlias = Mapping[str, CowTable[dict[str, Any]]]

_MARK = "__apigen_tool__"


# -- the decorator ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _ToolMark:
    kind: ToolKind
    name: str | None
    description: str | None


def tool(
    function: Callable[..., Any] | None = None,
    *,
    kind: str | ToolKind = "read",
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Mark a function as a domain tool; usable as ``@tool`` or ``@tool(kind="write")``.

    ``kind`` is ``"read"`` (looks things up), ``"write"`` (changes the state) or ``"other"``
    (neither: transfer to a human, think, calculate). ``name`` and ``description`` default to
    the function's name and the summary of its docstring. The function itself is returned
    unchanged, so it can still be called directly (``borrow_book(db, member_id=...)``).
    """
    if isinstance(function, str):
        raise DomainError(f"write @tool(kind={function!r}), not @tool({function!r})")
    try:
        tool_kind = ToolKind(kind.value if isinstance(kind, ToolKind) else kind)
    except ValueError:
        raise DomainError(
            f"@tool(kind={kind!r}): kind must be one of {[k.value for k in ToolKind]}"
        ) from None

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise DomainError(f"@tool must decorate a function, got {type(fn).__name__}")
        setattr(fn, _MARK, _ToolMark(tool_kind, name, description))
        return fn

    return mark(function) if function is not None else mark


def is_tool(obj: Any) -> bool:
    return callable(obj) and isinstance(getattr(obj, _MARK, None), _ToolMark)


# -- docstrings ------------------------------------------------------------------------------
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Warnings?|See Also|Attributes|Todo):\s*$"
)
_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {argument: description})`` from a Google-style docstring.

    The summary is the text before the first section (``Args:``, ``Returns:``, ...), with
    lines of one paragraph joined. Arguments are the ``name: text`` or ``name (type): text``
    entries of the ``Args:`` section; more deeply indented lines continue an entry.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    index = 0
    while index < len(lines) and not _SECTION.match(lines[index].strip()):
        summary_lines.append(lines[index].strip())
        index += 1
    while index < len(lines):
        section = _SECTION.match(lines[index].strip())
        index += 1
        body: list[str] = []
        while index < len(lines) and not (
            _SECTION.match(lines[index].strip()) and not lines[index][:1].isspace()
        ):
            body.append(lines[index])
            index += 1
        if section and section.group(1) in ("Args", "Arguments", "Parameters", "Params", "Keyword Args"):
            args.update(_parse_args(body))
    paragraphs = " ".join(line if line else "\n\n" for line in summary_lines)
    summary = "\n\n".join(" ".join(p.split()) for p in paragraphs.split("\n\n") if p.strip())
    return summary, args


def _parse_args(body: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    indent = None
    current = None
    for line in body:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        match = _ARG.match(line.strip()) if width <= indent else None
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


# -- schemas ---------------------------------------------------------------------------------
def _strip_titles(schema: Any) -> Any:
    """pydantic's ``title`` keywords removed (``properties`` keys named "title" are kept)."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                out[key] = {name: _strip_titles(sub) for name, sub in value.items()}
            elif key in ("default", "const", "enum", "examples"):  # data, not schema
                out[key] = value
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


def _type_hints(function: Callable[..., Any], tool_name: str, names: list[str]) -> dict[str, Any]:
    """The resolved annotations of ``names``, one clear error per unresolvable one."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # one bad annotation (maybe only db's): resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(function, "__globals__", {})
    for name in names:
        annotation = function.__annotations__.get(name, inspect.Parameter.empty)
        for _ in range(2):  # twice: a quoted hint under `from __future__ import annotations`
            if not isinstance(annotation, str):
                break
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 - the user's own module
            except Exception as error:
                raise DomainError(
                    f"tool {tool_name!r}: the type hint of parameter {name!r} cannot be resolved "
                    f"({type(error).__name__}: {error})"
                ) from None
        if annotation is not inspect.Parameter.empty:
            hints[name] = annotation
    return hints


class _Tool:
    """One decorated function with its spec and an argument validator."""

    def __init__(self, function: Callable[..., Any]) -> None:
        mark: _ToolMark = getattr(function, _MARK)
        self.function = function
        self.kind = mark.kind
        name = self.name = mark.name or getattr(function, "__name__", "")
        if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise DomainError(f"tool name {name!r} is not a valid function name")
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError) as error:
            raise DomainError(f"tool {name!r}: cannot read its signature ({error})") from None
        params = list(signature.parameters.values())
        if not params or params[0].name != "db" or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise DomainError(
                f"tool {name!r}: its first parameter must be `db` (the tables), "
                f"as in def {name}(db: Db, ...)"
            )
        params = params[1:]
        for param in params:
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise DomainError(f"tool {name!r}: *args/**kwargs are not allowed; name every argument")
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise DomainError(f"tool {name!r}: parameter {param.name!r} must not be positional-only")
        hints = _type_hints(function, name, [p.name for p in params])
        summary, arg_docs = parse_docstring(function.__doc__)
        unknown = sorted(set(arg_docs) - {p.name for p in params} - {"db"})
        if unknown:
            raise DomainError(f"tool {name!r}: its docstring documents unknown parameters {unknown}")
        self.description = mark.description or summary
        if not self.description:
            raise DomainError(f"tool {name!r} has no description: give it a docstring")

        fields: dict[str, Any] = {}
        self._fields: list[tuple[str, str]] = []  # (model field, argument name)
        for position, param in enumerate(params):
            if param.name not in hints:
                raise DomainError(
                    f"tool {name!r}: parameter {param.name!r} has no type hint "
                    "(the JSON schema is derived from the hints)"
                )
            hint = hints[param.name]
            try:
                TypeAdapter(hint).json_schema()
            except Exception as error:
                raise DomainError(
                    f"tool {name!r}: no JSON schema for parameter {param.name!r} of type {hint!r} "
                    f"({type(error).__name__}: {str(error).splitlines()[0]}). Use JSON types: str, int, "
                    "float, bool, list[...], dict[str, ...], Literal, Optional, TypedDict or pydantic models"
                ) from None
            default = ... if param.default is inspect.Parameter.empty else param.default
            field_name = f"p{position}"  # aliases avoid clashes with BaseModel attributes
            fields[field_name] = (hint, Field(default, alias=param.name))
            self._fields.append((field_name, param.name))
        try:
            self._model: type[BaseModel] = create_model(  # type: ignore[call-overload]
                f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
            )
            schema = self._model.model_json_schema(by_alias=True)
        except Exception as error:
            raise DomainError(
                f"tool {name!r}: cannot build the JSON schema of its parameters "
                f"({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from None
        schema = _strip_titles(inline_refs(schema))
        schema.setdefault("properties", {})
        for arg, text in arg_docs.items():
            prop = schema["properties"].get(arg)
            if isinstance(prop, dict) and text and "description" not in prop:
                prop["description"] = text
        self.spec = ToolSpec(name=name, description=self.description, parameters=schema, kind=self.kind)

    def arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments to call the function with (coerced to the hinted types)."""
        try:
            model = self._model.model_validate(dict(arguments))
        except ValidationError as error:
            problems = [
                f"{'.'.join(str(p) for p in item['loc']) or '<arguments>'}: {item['msg']}"
                for item in error.errors()
            ]
            raise ArgumentError(f"Invalid arguments for {self.name}: " + "; ".join(problems)) from None
        return {arg: getattr(model, field) for field, arg in self._fields}


# -- the environment -------------------------------------------------------------------------
class SimpleEnvironment(Environment):
    """Copy-on-write tables over the domain's pristine data, with the tools bound to them."""

    def __init__(self, domain: "SimpleDomain", tables: dict[str, CowTable[dict[str, Any]]]) -> None:
        self.domain = domain
        self._tables = tables
        self._db: Db = types.MappingProxyType(tables)

    @property
    def db(self) -> Db:
        """The tables as the tools see them (keyed access copies; iteration is read-only)."""
        return self._db

    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        bound = self.domain.bound_tool(name)
        if bound is None:
            raise UnknownToolError(
                f"Tool '{name}' not found. Available tools: {', '.join(self.domain.tool_names)}"
            )
        problems = argument_errors(arguments, bound.spec.parameters)
        if problems:
            raise ArgumentError(f"Invalid arguments for {name}: " + "; ".join(problems))
        kwargs = bound.arguments(arguments)
        # A refused call must not leave half its changes behind: keep the overlays to restore.
        saved = None if bound.kind is ToolKind.READ else {n: t.fork() for n, t in self._tables.items()}
        try:
            with acting_tool(name):
                result = bound.function(self._db, **kwargs)
        except ToolError:
            self._restore(saved)
            raise
        except ValueError as error:  # plain ValueError is the documented business failure too
            self._restore(saved)
            raise ToolExecutionError(str(error) or type(error).__name__) from error
        except BaseException:
            self._restore(saved)
            raise
        return to_jsonable(result)

    def _restore(self, saved: dict[str, CowTable[dict[str, Any]]] | None) -> None:
        if saved is not None:
            self._tables.clear()
            self._tables.update(saved)

    def changed_records(self) -> Iterator[RecordChange]:
        # compared as canonical JSON, like the state diff: 1, 1.0 and True are different values
        for table_name, table in self._tables.items():
            for key, pristine, current in table.touched():
                if canonical_json(pristine) != canonical_json(current):
                    yield RecordChange(table_name, key, copy.deepcopy(pristine), copy.deepcopy(current))

    def record(self, table: str, key: str) -> Any:
        rows = self._tables.get(table)
        if rows is None or key not in rows:
            return None
        return copy.deepcopy(rows.peek(key))

    def fork(self) -> "SimpleEnvironment":
        return SimpleEnvironment(self.domain, {name: t.fork() for name, t in self._tables.items()})

    def dump(self) -> dict[str, dict[str, Any]]:
        return {name: {key: to_jsonable(table.peek(key)) for key in table} for name, table in self._tables.items()}


# -- the domain ------------------------------------------------------------------------------
def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise DomainError(f"cannot read the {what} file {path}: {error.strerror or error}") from None


def _load_data(data: Mapping[str, Any] | str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    if isinstance(data, (str, Path)):
        try:
            data = json.loads(_read_text(Path(data), "data"))
        except json.JSONDecodeError as error:
            raise DomainError(f"data file {data} is not valid JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise DomainError(f"data must be a mapping table -> key -> record, got {type(data).__name__}")
    try:  # a JSON round trip: a private copy, and proof that every value is plain JSON
        plain = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise DomainError(f"data must be plain JSON data: {error}") from None
    for table, rows in plain.items():
        if not isinstance(rows, dict):
            raise DomainError(f"data table {table!r} must map keys to records, got {type(rows).__name__}")
        for key, record in rows.items():
            if not isinstance(record, dict):
                raise DomainError(
                    f"data record {table}[{key!r}] must be a JSON object, got {type(record).__name__}"
                )
    for table, rows in data.items():  # json turned non-string keys into strings: say so
        if not isinstance(table, str) or any(not isinstance(k, str) for k in rows):
            raise DomainError(f"data table {table!r}: table names and record keys must be strings")
    return plain


def _load_examples(examples: Iterable[Any] | str | Path | None) -> list[Any]:
    from apigen_mt.blueprint import Blueprint

    if examples is None:
        return []
    raw: list[tuple[str, Any]] = []
    if isinstance(examples, (str, Path)):
        try:
            for number, item, error in read_jsonl(examples):
                if error is not None:  # "line 3: invalid JSON (...)"
                    raise DomainError(f"{examples} {error}")
                raw.append((f"{examples} line {number}", item))
        except OSError as error:
            raise DomainError(f"cannot read the examples file {examples}: {error.strerror or error}") from None
    else:
        raw = [(f"example {index}", item) for index, item in enumerate(examples)]
    out = []
    for where, item in raw:
        if isinstance(item, Blueprint):
            out.append(item)
            continue
        try:
            out.append(Blueprint.model_validate(item))
        except ValidationError as error:
            first = error.errors()[0]
            raise DomainError(
                f"{where} is not a blueprint: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None
    return out


def _collect_tools(tools: Iterable[Callable[..., Any]] | types.ModuleType) -> list[Callable[..., Any]]:
    if isinstance(tools, types.ModuleType):
        found = [value for value in vars(tools).values() if is_tool(value)]
        if not found:
            raise DomainError(f"module {tools.__name__} defines no @tool functions")
        return found
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise DomainError("tools must be a list of @tool functions or a module defining them")
    out = []
    for item in tools:
        if not is_tool(item):
            raise DomainError(
                f"{getattr(item, '__name__', repr(item))} is not a tool: decorate it with @tool(kind=...)"
            )
        out.append(item)
    return out


class SimpleDomain(Domain):
    """A domain over plain JSON data whose tools are decorated Python functions.

    Args:
        name: The domain name; blueprints carry it in their ``domain`` field.
        tools: The ``@tool`` functions, in order, or a module (its ``@tool`` functions in
            definition order).
        data: The pristine state ``{table: {key: record}}``, or the path of a JSON file with it.
        policy: The policy text, or a :class:`~pathlib.Path` of a file holding it.
        description: One line about the domain.
        rules: :class:`PolicyRule`\\ s checking the policy over an execution trace.
        persona_set: The file stem of the domain's personas (``domains/personas/<stem>.json``).
        examples: Example blueprints (dicts or Blueprints), or the path of a JSONL file.
        user_table: The table whose keys are the users the data sampler draws; enables the
            default :meth:`user_ids` and :meth:`user_context`.
        user_ids: ``f(data) -> [user id]``, replacing the default :meth:`user_ids`.
        user_context: ``f(data, user_id) -> dict``, replacing the default :meth:`user_context`.
        today: The domain's fixed "today" (an ISO date): dates relative to it are derivable.
        free_text_arguments: Tool name -> its free-text arguments (a reason, a summary), which
            the grounding check does not trace to the user's words.
        confirmed_writes: The write tools the policy runs only after the user's explicit yes
            (the conversation audit's ``confirmation`` check); ``True``: every write tool.
        identification_tools: The read tools that identify the user, which the policy asks
            for before the user's data (lookups make them first).
        stated_arguments: Tool name -> requests a user may make of it, each a dict of argument
            values no record holds (a username and password, a date): grounded walks draw
            them, and the instruction must say them.

    Subclasses may override :meth:`user_ids`, :meth:`user_context` and
    :meth:`example_blueprints` instead of passing the callables.
    """

    def __init__(
        self,
        name: str,
        *,
        tools: Iterable[Callable[..., Any]] | types.ModuleType,
        data: Mapping[str, Any] | str | Path,
        policy: str | Path,
        description: str = "",
        rules: Iterable[PolicyRule] = (),
        persona_set: str | None = None,
        examples: Iterable[Any] | str | Path | None = None,
        user_table: str | None = None,
        user_ids: Callable[[Mapping[str, Any]], list[str]] | None = None,
        user_context: Callable[[Mapping[str, Any], str], dict[str, Any]] | None = None,
        today: str | date | None = None,
        free_text_arguments: Mapping[str, Iterable[str]] | None = None,
        confirmed_writes: Iterable[str] | bool = (),
        identification_tools: Iterable[str] = (),
        stated_arguments: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise DomainError("a domain needs a non-empty name")
        self.name = name
        self.description = description
        self.persona_set = persona_set
        self._policy = _read_text(policy, "policy") if isinstance(policy, Path) else policy
        if not isinstance(self._policy, str) or not self._policy.strip():
            raise DomainError(f"domain {name!r}: the policy text is empty")
        self._data = {table: freeze(rows, table) for table, rows in _load_data(data).items()}
        self._fingerprint = json.dumps(self._data, sort_keys=True)
        self._bound: dict[str, _Tool] = {}
        for function in _collect_tools(tools):
            bound = _Tool(function)
            if bound.name in self._bound:
                raise DomainError(f"domain {name!r}: two tools are named {bound.name!r}")
            self._bound[bound.name] = bound
        if not self._bound:
            raise DomainError(f"domain {name!r} has no tools")
        self._tools = [bound.spec for bound in self._bound.values()]
        self._rules = list(rules)
        for rule in self._rules:
            if not isinstance(rule, PolicyRule):
                raise DomainError(f"domain {name!r}: rules must be PolicyRule objects, got {type(rule).__name__}")
            unknown = [t for t in rule.tools if t not in self._bound]
            if unknown:
                raise DomainError(f"domain {name!r}: rule {rule.name!r} names unknown tools {unknown}")
        self._examples = _load_examples(examples)
        if user_table is not None and user_table not in self._data:
            raise DomainError(f"domain {name!r}: user_table {user_table!r} is not a table of its data")
        self.user_table = user_table
        self._user_ids = user_ids
        self._user_context = user_context
        self.today = date.fromisoformat(today) if isinstance(today, str) else today
        self.free_text_arguments = {tool: tuple(args) for tool, args in (free_text_arguments or {}).items()}
        unknown = sorted(set(self.free_text_arguments) - set(self._bound))
        if unknown:
            raise DomainError(f"domain {name!r}: free_text_arguments names unknown tools {unknown}")
        writes = [spec.name for spec in self.tools if spec.kind is ToolKind.WRITE]
        self.confirmed_writes = frozenset(writes if confirmed_writes is True else confirmed_writes or ())
        unknown = sorted(self.confirmed_writes - set(writes))
        if unknown:
            raise DomainError(f"domain {name!r}: confirmed_writes names tools that are not write tools: {unknown}")
        self.identification_tools = tuple(identification_tools)
        unknown = sorted(set(self.identification_tools) - {spec.name for spec in self.tools if spec.kind is ToolKind.READ})
        if unknown:
            raise DomainError(f"domain {name!r}: identification_tools names tools that are not read tools: {unknown}")
        self.stated_arguments = _stated_arguments(name, self._bound, stated_arguments or {})

    # -- Domain ------------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self._policy

    @property
    def tools(self) -> list[ToolSpec]:
        return self._tools

    @property
    def policy_rules(self) -> list[PolicyRule]:
        return self._rules

    def new_env(self) -> SimpleEnvironment:
        return SimpleEnvironment(self, {table: CowTable(rows) for table, rows in self._data.items()})

    def example_blueprints(self) -> list[Any]:
        return list(self._examples)

    def user_ids(self) -> list[str]:
        """``user_ids(data)`` if given, else the sorted keys of ``user_table``, else none."""
        if self._user_ids is not None:
            return list(self._user_ids(self._data))
        if self.user_table is not None:
            return sorted(self._data[self.user_table])
        return []

    def user_context(self, user_id: str) -> dict[str, Any]:
        """``user_context(data, id)`` if given, else the user's record plus, per other table,
        the records with a top-level field equal to (or a list containing) the user id."""
        if self._user_context is not None:
            return self._user_context(self._data, user_id)
        if self.user_table is None:
            return super().user_context(user_id)
        users = self._data[self.user_table]
        if user_id not in users:
            raise DomainError(f"domain {self.name!r}: no user {user_id!r} in table {self.user_table!r}")
        context: dict[str, Any] = {"user": copy.deepcopy(users[user_id])}
        for table, rows in self._data.items():
            if table == self.user_table:
                continue
            owned = [
                copy.deepcopy(record)
                for record in rows.values()
                if any(v == user_id or (isinstance(v, list) and user_id in v) for v in record.values())
            ]
            if owned:
                context[table] = owned
        return context

    # -- for tools, tests and rules -----------------------------------------------------------
    @property
    def data(self) -> Mapping[str, Mapping[str, Any]]:
        """The pristine data, shared by every environment: read-only (a change raises
        :class:`~apigen_mt.tools.frozen.PristineStateError`)."""
        return types.MappingProxyType(self._data)

    @property
    def tool_names(self) -> list[str]:
        return list(self._bound)

    def bound_tool(self, name: str) -> _Tool | None:
        return self._bound.get(name) if isinstance(name, str) else None

    def pristine_intact(self) -> bool:
        """Whether the pristine data still equals what was loaded (it is frozen, so only
        code that bypasses the frozen types could make this False)."""
        return json.dumps(self._data, sort_keys=True) == self._fingerprint


def _stated_arguments(
    name: str, tools: Mapping[str, "_Tool"], requests: Mapping[str, Iterable[Mapping[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """``stated_arguments`` checked: known tools, each request a dict of that tool's arguments."""
    checked: dict[str, list[dict[str, Any]]] = {}
    for tool_name, given in requests.items():
        if tool_name not in tools:
            raise DomainError(f"domain {name!r}: stated_arguments names an unknown tool {tool_name!r}")
        known = set((tools[tool_name].spec.parameters.get("properties") or {}))
        checked[tool_name] = []
        for request in given:
            if not isinstance(request, Mapping) or not request:
                raise DomainError(f"domain {name!r}: stated_arguments[{tool_name!r}] holds {request!r}, not a dict of arguments")
            unknown = sorted(set(request) - known)
            if unknown:
                raise DomainError(f"domain {name!r}: stated_arguments[{tool_name!r}] names arguments {tool_name} does not take: {unknown}")
            checked[tool_name].append(dict(request))
    return checked
