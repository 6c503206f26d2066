"""The contract every domain implements: tools, policy, a forkable state, policy rules.

A *domain* is an executable world an agent acts in (tau2 retail, a BFCL API class, a user's
own module). Everything the pipeline does with a domain goes through the classes here, so
the checks, the verifier, the samplers and the graphs never special-case one domain.

State is modelled as *tables of records* (``orders["#W123"]``, ``users["sara_doe_496"]``):
that is what lets a fork be cheap (copy-on-write per record), a diff list only the touched
records (the paper's diff_patch) and two states be compared without dumping whole databases.
"""

from __future__ import annotations

import copy
import random
from abc import ABC, abstractmethod
from datetime import date
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from langchain_core.utils.function_calling import convert_to_openai_tool

if TYPE_CHECKING:  # pragma: no cover
    from apigen_mt.tools.executor import ExecutionTrace


class ToolKind(str, Enum):
    """Whether a tool only looks things up or changes the state (the API sampler's split)."""

    READ = "read"
    WRITE = "write"
    OTHER = "other"  # neither: think, calculate, transfer to a human


@dataclass(frozen=True)
class ToolSpec:
    """One callable API of a domain, described the way an LLM sees it."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments object
    kind: ToolKind = ToolKind.READ

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI function-calling form."""
        parameters = copy.deepcopy(dict(self.parameters))
        return convert_to_openai_tool({"name": self.name, "description": self.description, "parameters": parameters})


class ToolError(Exception):
    """A call that did not succeed. ``str(error)`` reads like a real API's error message."""

    stage = "execution"


class UnknownToolError(ToolError):
    """The call names a tool the domain does not have."""


class ArgumentError(ToolError):
    """Argument names or types do not match the tool's schema."""


class ToolExecutionError(ToolError):
    """The API itself refused the call (a business rule, a missing record, ...)."""


class DomainError(Exception):
    """A domain cannot be found, imported or built; the message says how to fix it."""


@dataclass(frozen=True)
class RecordChange:
    """One record whose value differs from the pristine state.

    ``before`` is None for an added record, ``after`` None for a removed one. Values are plain
    JSON-able data, so a change can be shown to an LLM judge or written to disk as is.
    """

    table: str
    key: str
    before: Any
    after: Any


class Environment(ABC):
    """A live, mutable copy of a domain's state with its tools bound to it.

    Made by :meth:`Domain.new_env` (a cheap fork of the pristine state) or :meth:`fork` (a
    snapshot of this one). Implementations raise :class:`ToolError` subclasses from
    :meth:`execute`; anything else escaping is a bug in the domain, and the executor turns it
    into a :class:`ToolExecutionError` so a run never dies on it.
    """

    domain: "Domain"

    @abstractmethod
    def execute(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run one tool call; return its observation (JSON-able data or a string).

        A call that raises leaves the state exactly as it was: the verifier and the policy
        rules rely on failed calls changing nothing.
        """

    @abstractmethod
    def changed_records(self) -> Iterable[RecordChange]:
        """Every record whose current value differs from the pristine state.

        ``before`` and ``after`` are the caller's own copies: changing them changes nothing.
        """

    @abstractmethod
    def record(self, table: str, key: str) -> Any:
        """A copy of one record's current value as JSON-able data; None if absent."""

    @abstractmethod
    def fork(self) -> "Environment":
        """An independent copy of the current state (for snapshots and what-ifs)."""

    def execute_user(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run one of the user's own tools (``Domain.user_tools``: a phone's settings); as
        :meth:`execute`, a failed call changes nothing. Domains without user tools have none."""
        raise UnknownToolError(f"Tool '{name}' is not a user tool: the user has no tools in domain {self.domain.name!r}.")

    def assertion_holds(self, assertion: Mapping[str, Any]) -> bool:
        """Whether one of a blueprint's ``assertions`` holds in this state; ArgumentError for
        a domain without assertion functions or a malformed one."""
        raise ArgumentError(f"domain {self.domain.name!r} has no assertion functions")

    def dump(self) -> dict[str, dict[str, Any]]:
        """The whole current state as JSON data, ``{table: {key: value}}``.

        Reads every record, so it is for checks (``apigen-mt check-domain`` compares a fresh
        environment's dump with the pristine one), never for the hot path."""
        raise NotImplementedError(
            f"{type(self).__name__} has no dump(): implement it to let check-domain compare whole states"
        )


@dataclass(frozen=True)
class PolicyRule:
    """One domain rule written as an executable check over an execution trace.

    ``check`` returns one violation message per breach (empty when the trace complies); each
    message should say what happened and what the policy requires, since it goes back to the
    generator as feedback. ``tools`` names the tools the rule is about, so the policy sampler
    can show the generator only the rules relevant to the APIs it sampled.
    """

    name: str
    description: str
    tools: tuple[str, ...]
    check: Callable[["ExecutionTrace"], list[str]]


@dataclass(frozen=True)
class Persona:
    """Who a simulated user is and how they talk."""

    id: str
    description: str
    style: str

    def render(self) -> str:
        return f"{self.description} {self.style}"


class Domain(ABC):
    """A tool-using world: tools, policy text, pristine state, rules and sampling hooks."""

    name: str = ""
    description: str = ""
    persona_set: str | None = None  # file stem under domains/personas/
    _personas: list[Persona] | None = None
    today: date | None = None
    """The domain's "today" (its data's fixed present), for dates the grounding check derives."""
    free_text_arguments: Mapping[str, tuple[str, ...]] = {}
    """Tool -> its free-text arguments (a reason, a summary): the grounding check exempts them."""
    conventional_values: Mapping[str, Mapping[str, tuple[Any, ...]]] = {}
    """Tool -> argument -> values every assistant knows from the tool's conventions (``cd``'s
    ``..``): the grounding check accepts them unsaid."""
    stated_arguments: Mapping[str, Sequence[Mapping[str, Any]]] = {}
    """Tool -> requests a user may make of it, each a dict of argument values no record or
    output holds (a username and password, a route and a date, the numbers to add): grounded
    walks draw one per call for the arguments nothing else fills. They are the user's to
    say, so the grounding check asks the instruction to say them (they are not exempt)."""
    identification_tools: tuple[str, ...] = ()
    """Read tools that identify the user (``find_user_id_by_email``), which the policy asks for
    before the user's data: lookups (the grounding closure, an oracle) make them first."""
    confirmed_writes: frozenset[str] = frozenset()
    """Write tools the policy runs only after the user's explicit confirmation ("yes"): the
    conversation audit checks each was preceded by one."""

    def derived_amounts(self, name: str, arguments: Mapping[str, Any], env: "Environment") -> Mapping[float, str]:
        """Amounts the assistant computes for a call by the policy's arithmetic (a booking's price:
        the fares it looked up times the passengers, plus fees), keyed by value, with how; the
        grounding check accepts them and the rest of a payment split that totals one. ``env``
        is the state before the call (do not change it). By default an empty mapping."""
        return {}

    # -- the essentials -------------------------------------------------------------
    @property
    @abstractmethod
    def policy(self) -> str:
        """The domain policy the assistant must follow (its system prompt)."""

    @property
    @abstractmethod
    def tools(self) -> list[ToolSpec]:
        """The tools, in a stable order."""

    @abstractmethod
    def new_env(self) -> Environment:
        """A fresh environment forked from the pristine state."""

    # -- rules and sampling hooks, with neutral defaults --------------------------------
    @property
    def policy_rules(self) -> list[PolicyRule]:
        return []

    @property
    def generation_policy_rules(self) -> list[PolicyRule]:
        """The rules generated blueprints must pass: ``policy_rules`` unless a domain asks
        more of the data it generates than of benchmark gold (retail: the identity lookup
        spelled out in the actions, which tau2's gold lists often omit)."""
        return self.policy_rules

    def tool(self, name: str) -> ToolSpec | None:
        """The spec of one tool, or None (also for a name that is not a string)."""
        if not isinstance(name, str):
            return None
        index = self.__dict__.get("_tool_index")
        if index is None:
            index = self.__dict__["_tool_index"] = {t.name: t for t in self.tools}
        return index.get(name)

    def user_ids(self) -> list[str]:
        """Ids of the users (or scenarios) the domain-data sampler can draw from."""
        return []

    def user_context(self, user_id: str) -> dict[str, Any]:
        """One user's record and the records that belong to them, as JSON-able data."""
        raise DomainError(f"domain {self.name!r} has no per-user data")

    def example_blueprints(self) -> list[Any]:
        """Few-shot examples; for benchmark-derived domains, from a *train* split only."""
        return []

    def env_for(self, initial_state: Mapping[str, Any] | None) -> Environment:
        """A fresh environment in a blueprint's ``initial_state`` (the pristine one for None);
        DomainError for a domain whose tasks all start in its pristine state."""
        if initial_state:
            raise DomainError(f"domain {self.name!r} has no initial states: a blueprint of it carries none")
        return self.new_env()

    def user_tool(self, name: str) -> ToolSpec | None:
        """The spec of one of the user's tools, or None (indexed once, as :meth:`tool`)."""
        if not isinstance(name, str):
            return None
        index = self.__dict__.get("_user_tool_index")
        if index is None:
            index = self.__dict__["_user_tool_index"] = {t.name: t for t in self.user_tools}
        return index.get(name)

    @property
    def user_tools(self) -> list[ToolSpec]:
        """The tools the user has (tau2 telecom: their phone), which the user, not the
        assistant, calls; empty for a domain where only the assistant acts."""
        return []

    def state_pool(self) -> list[str]:
        """Names of domains with these tools in other initial states, this one's first (empty:
        one state only). Phase 1 draws one per blueprint (``state_pool`` setting), and the
        blueprint carries the drawn name, so every later check runs in its state."""
        return []

    def check_runs(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """``(name, actions)`` sequences that exercise the tools from a fresh environment, for
        ``apigen-mt check-domain`` only: never shown to a model (a benchmark's test data may
        serve here). Default: none (the check uses the examples and sampled calls)."""
        return []

    @property
    def personas(self) -> list[Persona]:
        if self._personas is None:
            from apigen_mt.domains.personas import load_personas

            self._personas = load_personas(self.persona_set) if self.persona_set else []
        return self._personas

    def sample_persona(self, rng: random.Random) -> Persona | None:
        return rng.choice(self.personas) if self.personas else None

    def tool_counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ToolKind}
        for spec in self.tools:
            counts[spec.kind.value] += 1
        return counts


@dataclass
class DomainInfo:
    """A registered domain's name and how to build it (used by the registry)."""

    name: str
    factory: Callable[[], Domain]
    summary: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
