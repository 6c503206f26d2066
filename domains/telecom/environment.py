"""A tau2 telecom environment: the agent's database and the user's phone, both forked by copy.

tau2 rebuilds both from their files for every task. Here each environment holds its own
copies (the agent database has 33 records, the phone two: :func:`copy_model` copies both in
about 0.1 ms), bound to tau2's own toolkits and to tau2's own ``TelecomEnvironment``, whose
``sync_tools`` carries the line's state to the phone after every call, as tau2 does.
"""

from __future__ import annotations

import contextvars
import copy
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from apigen_mt.domains.base import ArgumentError, Environment, RecordChange, ToolExecutionError, ToolKind, UnknownToolError
from apigen_mt.tools.json_schema import argument_errors, coerce_integers
from apigen_mt.tools.jsonable import to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.domains.telecom.domain import TelecomDomain

AGENT_TABLES = {"plans": "plan_id", "customers": "customer_id", "lines": "line_id", "bills": "bill_id",
                "devices": "device_id"}
"""The agent database's lists of records, each by its key field."""
USER_TABLE = "phone"
"""The user's side as one table: its ``device`` and its ``surroundings`` (location, line state)."""


_ACTING: contextvars.ContextVar["TelecomEnvironment | None"] = contextvars.ContextVar("telecom_acting", default=None)


class ReplayableUuid:
    """Stands in for the ``uuid`` module in tau2's telecom tools (:func:`install_replayable_uuid`).

    tau2 names a new draft bill ``B`` + 8 hex digits of ``uuid4()``: a refuel for a customer
    without a draft bill ends in a different state on every replay, and two replays of one
    conversation would never match. Inside one of our calls ``uuid4()`` comes from the
    environment's own counter (forks carry it), so a replay names the bill as the first run
    did; anywhere else it is the real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)

    def uuid4(self) -> uuid.UUID:
        env = _ACTING.get()
        return uuid.uuid4() if env is None else env.next_uuid()


def install_replayable_uuid(tools_module: Any) -> None:
    """Put :class:`ReplayableUuid` in place of ``uuid`` in tau2's telecom tools module (once)."""
    if not isinstance(getattr(tools_module, "uuid", None), ReplayableUuid):
        tools_module.uuid = ReplayableUuid()


class TelecomEnvironment(Environment):
    """One telecom world: tau2's agent and user toolkits on this environment's own databases."""

    def __init__(self, domain: "TelecomDomain", db: Any, user_db: Any, baseline: Mapping[str, Any] | None = None) -> None:
        self.domain = domain
        self._tau2 = domain.tau2_environment(db, user_db)
        self._baseline = baseline if baseline is not None else domain.pristine_tables
        self._ids = 0  # uuids handed out (ReplayableUuid)

    def next_uuid(self) -> uuid.UUID:
        """The next id this world hands out: the same on every replay from the same state."""
        self._ids += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, f"apigen-mt:telecom:{self._ids}")

    def mark_start(self) -> None:
        """Take the current state as where the task starts: changes are counted from it (a
        task's initial state is its pristine state; the diff shows what its actions did)."""
        self._baseline = self.dump()

    @property
    def agent_db(self) -> Any:
        """tau2's agent database of this environment (read it; change it only through tools)."""
        return self._tau2.tools.db

    @property
    def user_db(self) -> Any:
        """tau2's user database (the phone) of this environment."""
        return self._tau2.user_tools.db

    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """One of the agent's tools."""
        return self._call("assistant", name, arguments)

    def execute_user(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """One of the user's tools: the user acts on their phone."""
        return self._call("user", name, arguments)

    def initialize(self, agent_data: Mapping[str, Any] | None, user_data: Mapping[str, Any] | None) -> None:
        """Merge a task's ``initialization_data`` into the databases (tau2's ``update_db``; no sync)."""
        if agent_data:
            self._tau2.tools.update_db(dict(agent_data))
        if user_data:
            self._tau2.user_tools.update_db(dict(user_data))

    def sync(self) -> None:
        """Carry the line's state to the phone (tau2's ``sync_tools``)."""
        self._tau2.sync_tools()

    def run_function(self, env_type: str, name: str, arguments: Mapping[str, Any]) -> Any:
        """A function of either toolkit that is not a tool (tau2's initialization and assertion
        functions: ``turn_airplane_mode_on``, ``assert_can_send_mms``), then the sync."""
        toolkit = self._toolkit(env_type)
        function = getattr(toolkit, name, None) if not name.startswith("_") else None
        if not callable(function):
            raise UnknownToolError(f"{env_type} function {name!r} not found in tau2's telecom toolkit")
        acting = _ACTING.set(self)
        try:
            result = function(**dict(arguments))
            self._tau2.sync_tools()
        except Exception as error:  # tau2 raises plain exceptions for scenarios it cannot set
            raise ToolExecutionError(f"{name}: {error or type(error).__name__}") from error
        finally:
            _ACTING.reset(acting)
        return to_jsonable(result)

    def assertion_holds(self, assertion: Mapping[str, Any]) -> bool:
        """One of tau2's environment assertions (``{"env_type", "func_name", "arguments",
        "assert_value"}``) on this state, as tau2's ``run_env_assertion`` evaluates it (here on a
        fork: an assertion function that changed the state would not change this one)."""
        name = assertion.get("func_name")
        if not isinstance(name, str) or not name.startswith("assert_"):
            raise ArgumentError(f"an assertion names an assert_* function, not {name!r}")
        result = self.fork().run_function(str(assertion.get("env_type") or "assistant"), name, assertion.get("arguments") or {})
        if not isinstance(result, bool):
            raise ArgumentError(f"{name} returned {type(result).__name__}, not a bool")
        return result == assertion.get("assert_value", True)  # as tau2 compares it

    def _toolkit(self, env_type: str) -> Any:
        if env_type == "user":
            return self._tau2.user_tools
        if env_type == "assistant":
            return self._tau2.tools
        raise ArgumentError(f"env_type must be 'assistant' or 'user', not {env_type!r}")

    def _call(self, requestor: str, name: str, arguments: Mapping[str, Any]) -> Any:
        spec = self.domain.tool(name) if requestor == "assistant" else self.domain.user_tool(name)
        if spec is None:
            whose = "agent" if requestor == "assistant" else "user"
            raise UnknownToolError(f"Tool '{name}' is not one of the {whose}'s tools in telecom.")
        problems = argument_errors(arguments, spec.parameters)
        if problems:
            raise ArgumentError(f"Invalid arguments for {name}: " + "; ".join(problems))
        arguments = coerce_integers(arguments, spec.parameters)
        toolkit = self._toolkit(requestor)
        # A toolkit changes only its own database; the sync, after a success, changes the other.
        # tau2 keeps what a failed call changed; here a failed call changes nothing (the
        # contract). No telecom tool is known to change state and then raise: this is a guard.
        saved = None if spec.kind is ToolKind.READ else (copy_model(toolkit.db), self._ids)
        acting = _ACTING.set(self)
        try:
            result = toolkit.use_tool(tool_name=name, **arguments)
            self._tau2.sync_tools()
        except Exception as error:  # tau2's business failures are plain exceptions
            if saved is not None:
                toolkit.db, self._ids = saved  # a failed call changes nothing, even half-way
            raise ToolExecutionError(str(error) or type(error).__name__) from error
        finally:
            _ACTING.reset(acting)
        return to_jsonable(result)

    def fork(self) -> "TelecomEnvironment":
        forked = TelecomEnvironment(self.domain, copy_model(self.agent_db), copy_model(self.user_db), self._baseline)
        forked._ids = self._ids
        return forked

    def dump(self) -> dict[str, dict[str, Any]]:
        return state_tables(self.agent_db, self.user_db)

    def changed_records(self) -> Iterator[RecordChange]:
        """Every record that differs from where the task started (its initial state)."""
        pristine = self._baseline
        for table, records in self.dump().items():
            before_table = pristine.get(table, {})
            for key in sorted(set(records) | set(before_table)):
                before, after = before_table.get(key), records.get(key)
                if before != after:  # the caller's own copies: the baseline is shared by forks
                    yield RecordChange(table, key, copy.deepcopy(before), after)

    def record(self, table: str, key: str) -> Any:
        return self.dump().get(table, {}).get(key) if isinstance(table, str) and isinstance(key, str) else None


def copy_model(model: Any) -> Any:
    """An independent copy of a tau2 database: dumped and validated anew by pydantic's core,
    about 5x faster than ``model_copy(deep=True)`` (0.1 ms for both telecom databases)."""
    return type(model).model_validate(model.model_dump())


def state_tables(db: Any, user_db: Any) -> dict[str, dict[str, Any]]:
    """Both databases as ``{table: {key: record}}`` JSON data (the phone as table ``phone``)."""
    data = db.model_dump(mode="json")
    tables = {name: {str(row[key]): row for row in data.get(name) or []} for name, key in AGENT_TABLES.items()}
    tables[USER_TABLE] = dict(user_db.model_dump(mode="json"))
    return tables
