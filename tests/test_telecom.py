"""tau2 telecom (issue 13, item 1): the agent's and the user's tools with tau2's kinds, both
databases forked by copy, each task's initial state built as tau2 builds it, and tau2's own
environment assertions; every train and test task replayed here and in tau2 ends the same."""

from __future__ import annotations

import pytest

pytest.importorskip("tau2")

from apigen_mt.api import run_phase1  # noqa: E402
from apigen_mt.domains.base import DomainError, ToolExecutionError, ToolKind, UnknownToolError  # noqa: E402
from apigen_mt.domains.registry import get_domain  # noqa: E402
from apigen_mt.domains.tau2bench.runtime import import_tau2  # noqa: E402
from apigen_mt.domains.tau2bench.tasks import tau2_tasks  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def telecom():
    return get_domain("telecom")


def _tau2_env(task):
    env = import_tau2("domains.telecom.environment").get_environment(policy_type="workflow")
    init = task.initial_state
    env.set_state(init.initialization_data if init else None, init.initialization_actions if init else None, [])
    return env


def _same(ours, theirs):
    return (ours.agent_db.model_dump() == theirs.tools.db.model_dump()
            and ours.user_db.model_dump() == theirs.user_tools.db.model_dump())


def test_both_sides_tools_with_tau2_s_kinds(telecom):
    toolkit = import_tau2("environment.toolkit")
    env = import_tau2("domains.telecom.environment").get_environment()
    for specs, tau2_toolkit in ((telecom.tools, env.tools), (telecom.user_tools, env.user_tools)):
        kinds = {name: str(getattr(kind, "value", kind)) for name, kind in toolkit.get_tool_types(tau2_toolkit).items()}
        assert {s.name for s in specs} == set(kinds)
        assert all(s.kind.value == kinds[s.name] or (s.kind is ToolKind.OTHER and kinds[s.name] == "generic") for s in specs)
    assert telecom.user_tool("toggle_airplane_mode").kind is ToolKind.WRITE and telecom.tool("toggle_airplane_mode") is None
    assert "<tech_support_policy>" in telecom.policy and telecom.user_ids() == ["C1001", "C1002", "C1003", "C1004"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_task_starts_and_ends_as_in_tau2_and_its_assertions_agree(telecom, split):
    message = import_tau2("data_model.message")
    tasks = tau2_tasks("telecom", split)
    assert len(tasks) == {"train": 74, "test": 40}[split]
    for task in tasks:
        ours = telecom.env_for(task.initial_state.model_dump(mode="json") if task.initial_state else None)
        theirs = _tau2_env(task)
        assert _same(ours, theirs), task.id
        for number, action in enumerate(task.evaluation_criteria.actions or []):
            (ours.execute_user if action.requestor == "user" else ours.execute)(action.name, action.arguments)
            theirs.get_response(message.ToolCall(id=str(number), name=action.name, arguments=action.arguments,
                                                 requestor=action.requestor))
        assert _same(ours, theirs), task.id
        for assertion in task.evaluation_criteria.env_assertions or []:
            held = ours.run_function(assertion.env_type, assertion.func_name, assertion.arguments) == assertion.assert_value
            assert held is theirs.run_env_assertion(assertion, raise_assertion_error=False) is True, (task.id, assertion)


def test_forks_are_independent_and_a_failed_call_changes_nothing(telecom):
    task = tau2_tasks("telecom", "train")[0]
    env = telecom.env_for(task.initial_state.model_dump(mode="json"))
    before = env.dump()
    fork = env.fork()
    fork.execute_user("toggle_airplane_mode", {})
    assert env.dump() == before and fork.dump() != before
    assert telecom.new_env().dump() == telecom.pristine_tables  # nothing reached the pristine state
    with pytest.raises(ToolExecutionError):
        env.execute("suspend_line", {"customer_id": "C1001", "line_id": "L9999", "reason": "travel"})
    assert env.dump() == before
    with pytest.raises(UnknownToolError, match="not one of the agent's tools"):
        env.execute("toggle_airplane_mode", {})
    changed = {(c.table, c.key) for c in fork.changed_records()}
    assert ("phone", "device") in changed


def test_generation_on_it_says_what_is_missing_instead_of_dropping_the_user_s_side():
    with pytest.raises(DomainError, match="tools of the user's own"):
        run_phase1("telecom", 1)
