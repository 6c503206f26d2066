"""The conversation audit: each check passing and failing, every input layout, the command, and
tau2-bench results files built with tau2's own data model and scored by tau2's evaluator."""

from __future__ import annotations

import copy
import json

import pytest

from apigen_mt.api import run_phase2
from apigen_mt.cli import main
from apigen_mt.domains.registry import get_domain
from apigen_mt.domains.tau2bench.runtime import import_tau2
from apigen_mt.domains.tau2bench.tasks import tau2_blueprints, tau2_tasks
from apigen_mt.export import to_openai, to_sharegpt
from apigen_mt.testing.oracle import oracle_plan, oracle_user_reply
from apigen_mt.tools.audit.checks import AUDIT_CHECKS, audit_conversation, is_confirmation
from apigen_mt.tools.audit.conversation import from_openai, from_sharegpt, read_conversations
from apigen_mt.tools.checks.validate import validate_blueprint
from apigen_mt.tools.executor import render_observation

from phase2_oracle import oracle_phase2_models


def _library_conversation() -> tuple[dict, dict]:
    """A verified oracle conversation of the first library example that writes, and its blueprint."""
    library = get_domain("library")
    blueprint = next(bp.to_json() for bp in library.example_blueprints()
                     if any(a["name"] in library.confirmed_writes for a in bp.to_json()["actions"]))
    result = run_phase2([blueprint], chat_models=oracle_phase2_models, settings={"best_of_n": 1, "max_attempts": 1})
    [trajectory] = result.trajectories
    return trajectory, blueprint


@pytest.fixture(scope="module")
def library_conversation():
    return _library_conversation()


def _write_calls(row: dict) -> list[dict]:
    library = get_domain("library")
    return [call for m in row["messages"] for call in m.get("tool_calls") or []
            if call["function"]["name"] in library.confirmed_writes]


def test_a_verified_oracle_conversation_passes_every_check(library_conversation):
    trajectory, _ = library_conversation
    assert trajectory["audit"] == {"id": None, "passed": True, "failed_checks": [], "reasons": []}
    result = audit_conversation(get_domain("library"), from_openai(to_openai(trajectory)))
    assert result.passed and result.id == trajectory["blueprint_id"]


def test_an_identifier_nobody_gave_fails_grounding(library_conversation):
    trajectory, _ = library_conversation
    row = copy.deepcopy(to_openai(trajectory))
    write = _write_calls(row)[0]
    arguments = json.loads(write["function"]["arguments"])
    key = next(k for k in arguments if k.endswith("_id"))
    arguments[key] = {"book_id": "B9999", "loan_id": "L9999", "member_id": "M9999"}.get(key, "X9999")
    write["function"]["arguments"] = json.dumps(arguments)
    result = audit_conversation(get_domain("library"), from_openai(row))
    assert "grounding" in result.failed_checks
    assert any(f".{key} = '{arguments[key]}' was not said by the user" in r for r in result.reasons), result.reasons


def test_a_write_without_the_users_yes_fails_confirmation(library_conversation):
    trajectory, _ = library_conversation
    row = copy.deepcopy(to_openai(trajectory))
    for message in row["messages"]:
        if message["role"] == "user" and is_confirmation(message["content"]):
            message["content"] = "Hmm, what else can you tell me?"
    result = audit_conversation(get_domain("library"), from_openai(row))
    assert result.failed_checks == ["confirmation"]
    assert result.reasons[0].startswith("confirmation: turn ") and "did not confirm this write" in result.reasons[0]


def test_what_counts_as_a_confirmation():
    assert is_confirmation("Yes, go ahead.") and is_confirmation("ok, please do") and is_confirmation("Confirmed.")
    assert not is_confirmation("No, wait, not yet.") and not is_confirmation("What does it cost?")


def test_a_policy_breach_in_the_calls_made_fails_policy(library_conversation):
    """Borrowing for a member nobody looked up by email breaks the identity rule."""
    trajectory, _ = library_conversation
    row = copy.deepcopy(to_openai(trajectory))
    lookups = [m for m in row["messages"] if any(c["function"]["name"] == "find_member_by_email" for c in m.get("tool_calls") or [])]
    drop = {id(m) for m in lookups} | {id(m) for m in row["messages"] if m.get("tool_call_id") in
                                       {c["id"] for m2 in lookups for c in m2["tool_calls"]}}
    row["messages"] = [m for m in row["messages"] if id(m) not in drop]
    result = audit_conversation(get_domain("library"), from_openai(row))
    assert "policy" in result.failed_checks and any(r.startswith("policy: [") for r in result.reasons)


def test_unknown_tools_and_unparsable_arguments_are_reported_not_raised(library_conversation):
    trajectory, _ = library_conversation
    row = copy.deepcopy(to_openai(trajectory))
    calls = [c for m in row["messages"] for c in m.get("tool_calls") or []]
    calls[0]["function"]["name"] = "teleport_member"
    calls[1]["function"]["arguments"] = "{not json"
    result = audit_conversation(get_domain("library"), from_openai(row))
    assert "calls" in result.failed_checks
    assert any("unknown tool 'teleport_member'" in r for r in result.reasons)
    assert any("arguments are not valid JSON" in r for r in result.reasons)


def test_sharegpt_rows_audit_as_their_openai_twins(library_conversation):
    trajectory, _ = library_conversation
    library = get_domain("library")
    good = audit_conversation(library, from_sharegpt({**to_sharegpt(trajectory), "id": "s"}))
    assert good.passed and good.id == "s"
    row = to_sharegpt(trajectory)
    row["conversations"] = [t for t in row["conversations"] if not (t["from"] == "human" and is_confirmation(t["value"]))]
    assert audit_conversation(library, from_sharegpt(row)).failed_checks == ["confirmation"]


def test_files_of_every_layout_and_malformed_lines(tmp_path, library_conversation):
    trajectory, _ = library_conversation
    jsonl = tmp_path / "openai.jsonl"
    jsonl.write_text(json.dumps(to_openai(trajectory)) + "\n{not json\n" + json.dumps({"x": 1}) + "\n")
    rows = list(read_conversations(jsonl))
    assert [(n, c is not None) for n, c, _ in rows] == [(1, True), (2, False), (3, False)]
    assert rows[1][2].startswith("line 2: invalid JSON") and rows[2][2].startswith("line 3: neither an openai row")
    array = tmp_path / "sharegpt.json"
    array.write_text(json.dumps([to_sharegpt(trajectory), to_sharegpt(trajectory)]))
    assert [c.id for _, c, _ in read_conversations(array)] == ["item 0", "item 1"]


def test_the_command_writes_one_line_per_conversation(tmp_path, capsys, library_conversation):
    trajectory, _ = library_conversation
    source, out = tmp_path / "data.jsonl", tmp_path / "audit" / "out.jsonl"
    unconfirmed = copy.deepcopy(to_openai(trajectory))
    unconfirmed["id"] = "no-yes"
    for message in unconfirmed["messages"]:
        if message["role"] == "user" and is_confirmation(message["content"]):
            message["content"] = "Tell me more."
    source.write_text("\n".join(json.dumps(r) for r in (to_openai(trajectory), unconfirmed)) + "\n[1, 2\n")
    assert main(["audit", str(source), "--domain", "library", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["passed"], r["failed_checks"], r["line"]) for r in rows] == [
        (trajectory["blueprint_id"], True, [], 1), ("no-yes", False, ["confirmation"], 2), (None, False, ["format"], 3)]
    assert set(rows[0]) == {"id", "passed", "failed_checks", "reasons", "line"}
    err = capsys.readouterr().err
    assert "audited 3 conversations against library: passed 1; failed format 1, confirmation 1" in err
    assert main(["audit", str(source), "--domain", "library", "--fail-on-reject"]) == 1
    assert main(["audit", str(tmp_path / "missing.jsonl"), "--domain", "library"]) == 2


def test_phase2_rejects_a_verified_conversation_that_fails_the_audit():
    """The right final state by an unconfirmed write: reward 1 from the verifier, 0 after the
    audit, kept with the audit's reasons (a rejected example for preference pairs)."""
    library = get_domain("library")
    blueprint = next(bp.to_json() for bp in library.example_blueprints()
                     if any(a["name"] in library.confirmed_writes for a in bp.to_json()["actions"]))

    def hasty_user(messages):
        reply = oracle_user_reply(blueprint)(messages)
        return "Hmm, tell me more." if reply.startswith("Yes") else reply

    def models(bp):
        built = oracle_phase2_models(bp)
        built["user"] = type(built["user"])([hasty_user] * 50)
        return built

    result = run_phase2([blueprint], chat_models=models, settings={"best_of_n": 1, "max_attempts": 1})
    [failed] = result.failed
    assert result.trajectories == [] and failed["verifier_reward"] == 1.0 and failed["reward"] == 0.0
    assert failed["audit"]["failed_checks"] == ["confirmation"]
    assert failed["reasons"][0].startswith("audit confirmation: ")
    unaudited = run_phase2([blueprint], chat_models=models, settings={"best_of_n": 1, "max_attempts": 1, "audit": False})
    assert len(unaudited.trajectories) == 1


# -- tau2-bench results files ------------------------------------------------------------------------


_PLANS: dict[tuple[str, str], list] = {}


def _plan(domain, blueprint: dict) -> list:
    """The oracle's plan, made once per blueprint (the swapped variant reuses it)."""
    key = (domain.name, blueprint["id"])
    if key not in _PLANS:
        _PLANS[key] = oracle_plan(domain, blueprint)
    return _PLANS[key]


def _tau2_simulation(domain_name: str, blueprint: dict, task, number: int, *, swap: tuple[str, str] | None = None):
    """A tau2 SimulationRun of the oracle conversation of ``blueprint``, its reward from tau2's own
    evaluator. ``swap``: (old, new) identifier replaced in the first write that uses it (such a
    run is not scored: only its audit matters, and its reward_info stays empty)."""
    message = import_tau2("data_model.message")
    simulation = import_tau2("data_model.simulation")
    domain = get_domain(domain_name)
    env = domain.new_env()
    messages = [message.UserMessage(role="user", content=blueprint["instruction"])]
    scored = swap is None
    for step, entry in enumerate(_plan(domain, blueprint)):
        if "say" in entry:
            messages.append(message.AssistantMessage(role="assistant", content=entry["say"]))
            if entry["say"].endswith("Shall I proceed?"):
                messages.append(message.UserMessage(role="user", content="Yes, go ahead."))
            continue
        arguments = dict(entry["call"]["arguments"])
        if swap is not None and entry["call"]["name"] in domain.confirmed_writes:
            replaced = {k: swap[1] if v == swap[0] else v for k, v in arguments.items()}
            if replaced != arguments:
                arguments, swap = replaced, None
        call = message.ToolCall(id=f"call_{step}", name=entry["call"]["name"], arguments=arguments)
        messages.append(message.AssistantMessage(role="assistant", tool_calls=[call]))
        try:
            content, error = render_observation(env.execute(call.name, arguments)), False
        except Exception as failure:  # noqa: BLE001 - a tool error is the tool's answer
            content, error = f"Error: {failure}", True
        messages.append(message.ToolMessage(id=call.id, role="tool", content=content, requestor="assistant", error=error))
    reward = None
    if scored:
        env_eval = import_tau2("evaluator.evaluator_env").EnvironmentEvaluator
        comm_eval = import_tau2("evaluator.evaluator_communicate").CommunicateEvaluator
        environment = import_tau2(f"domains.{domain_name}.environment")
        db = env_eval.calculate_reward(environment_constructor=environment.get_environment, task=task, full_trajectory=messages)
        said = comm_eval.calculate_reward(task=task, full_trajectory=messages)
        reward = simulation.RewardInfo(reward=db.reward * said.reward)
    return simulation.SimulationRun(
        id=f"sim-{number}", task_id=task.id, start_time="2026-12-03T00:00:00", end_time="2026-12-03T00:01:00",
        duration=60.0, termination_reason="user_stop", messages=messages, reward_info=reward)


def _tau2_results(domain_name: str, path, *, swap_users: bool = False, splits: tuple[str, ...] = ("train", "test")):
    """A results file of oracle conversations for every gold task of ``splits`` that passes our
    checks; ``swap_users``: in each, one identifier of a write is replaced by another user's
    (those runs are not scored)."""
    simulation = import_tau2("data_model.simulation")
    environment = import_tau2("environment.environment")
    domain = get_domain(domain_name)
    tasks = {task.id: task for split in splits for task in tau2_tasks(domain_name, split)}
    blueprints = [bp.to_json() for split in splits for bp in tau2_blueprints(domain_name, split)]
    blueprints = [bp for bp in blueprints if validate_blueprint(domain, bp).passed]
    others = _identifiers_by_user(domain_name)
    runs = []
    for number, blueprint in enumerate(blueprints):
        swap = _swap_for(domain, blueprint, others) if swap_users else None
        if swap_users and swap is None:
            continue
        runs.append(_tau2_simulation(domain_name, blueprint, tasks[blueprint["source"]["task_id"]], number, swap=swap))
    info = simulation.Info(
        git_commit="none", num_trials=1, max_steps=100, max_errors=10,
        user_info=simulation.UserInfo(implementation="oracle"), agent_info=simulation.AgentInfo(implementation="oracle"),
        environment_info=environment.EnvironmentInfo(domain_name=domain_name, policy=domain.policy))
    results = simulation.Results(info=info, tasks=[tasks[bp["source"]["task_id"]] for bp in blueprints], simulations=runs)
    path.write_text(results.model_dump_json())
    return results


def _identifiers_by_user(domain_name: str) -> dict[str, str]:
    """One identifier (an order or reservation id) per user, to swap in."""
    db = get_domain(domain_name).pristine
    table = db.orders if domain_name == "retail" else db.reservations
    return {record.user_id: key for key, record in table.items()}


def _swap_for(domain, blueprint: dict, others: dict[str, str]) -> tuple[str, str] | None:
    """(the first order or reservation id a guarded write uses, another user's that q does not name)."""
    for action in blueprint["actions"]:
        if action["name"] not in domain.confirmed_writes:
            continue
        for key in ("order_id", "reservation_id"):
            value = (action.get("arguments") or {}).get(key)
            if value is not None:
                other = next((v for v in others.values() if v != value and v.lstrip("#") not in blueprint["instruction"]), None)
                return (value, other) if other else None
    return None


@pytest.mark.integration
@pytest.mark.parametrize("domain_name", ["retail", "airline"])
def test_tau2_results_rewarded_one_pass_grounding_and_swapped_identifiers_fail(tmp_path, domain_name):
    path = tmp_path / "results.json"
    results = _tau2_results(domain_name, path, splits=("test",))  # scored by tau2's evaluator: ~1 s a task
    rewarded = {run.id for run in results.simulations if run.reward_info.reward == 1.0}
    assert len(rewarded) >= 0.9 * len(results.simulations)  # tau2's evaluator agrees with the oracle
    rows = {row["id"]: row for row in _audit_file(path, domain_name)}
    grounded = [i for i in rewarded if "grounding" not in rows[i]["failed_checks"]]
    assert len(grounded) / len(rewarded) >= 0.95, [rows[i]["reasons"] for i in rewarded if i not in grounded][:3]
    swapped = tmp_path / "swapped.json"
    changed = _tau2_results(domain_name, swapped, swap_users=True)
    assert len(changed.simulations) >= 15
    rows = list(_audit_file(swapped, domain_name))
    assert all("grounding" in row["failed_checks"] for row in rows), [r["id"] for r in rows if "grounding" not in r["failed_checks"]]


def _audit_file(path, domain_name: str):
    from apigen_mt.tools.audit.checks import audit_rows

    return audit_rows(get_domain(domain_name), path)


@pytest.mark.parametrize("row", [
    {"messages": "not a list"},
    {"messages": [{"role": "assistant", "tool_calls": 5}, 7, None]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": "find_member_by_email"}]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "find_member_by_email", "arguments": "[1]"}}]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": 3, "arguments": None}}]}]},
    {"messages": [{"role": "tool", "content": {"not": "text"}}, {"content": "no role"}]},
    {"messages": [{"role": "user", "content": [{"text": None}, "x"]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "get_member_details",
                                                                      "arguments": {"member_id": 10 ** 400}}}]}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "get_member_details",
                                                                      "arguments": "[" * 100000}}]}]},
])
def test_malformed_conversations_are_reported_never_raised(row):
    result = audit_conversation(get_domain("library"), from_openai(row))  # never raises
    assert result.passed == (not result.failed_checks)
    assert set(result.failed_checks) <= set(AUDIT_CHECKS) and len(result.reasons) >= len(result.failed_checks)


def test_files_that_are_not_text_or_too_deep_are_reported(tmp_path):
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    [(number, conversation, error)] = list(read_conversations(binary))
    assert conversation is None and error.startswith("the file is not UTF-8 text")
    deep = tmp_path / "deep.jsonl"
    deep.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n" + "[" * 100000 + "\n")
    rows = list(read_conversations(deep))
    assert rows[0][1] is not None and rows[1][1] is None and rows[1][2].startswith("line 2: invalid JSON")


def test_a_sharegpt_function_call_that_is_not_json_is_a_calls_failure():
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{oops"}]}
    result = audit_conversation(get_domain("library"), from_sharegpt(row))
    assert result.failed_checks == ["calls"] and "not JSON" in result.reasons[0]


def _guarded_write_after(*turns: tuple[str, str]) -> list[str]:
    """The audit's confirmation reasons for a library return after ``turns`` ((role, text) pairs)."""
    library = get_domain("library")
    data = library.data
    loan, record = next((k, v) for k, v in data["loans"].items() if v["status"] != "returned")
    member = data["members"][record["member_id"]]
    messages = [{"role": "user", "content": f"I am {member['email']}, return loan {loan}."},
                {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "find_member_by_email",
                                                                              "arguments": json.dumps({"email": member["email"]})}}]},
                {"role": "tool", "tool_call_id": "1", "content": member["member_id"]},
                *({"role": role, "content": text} for role, text in turns),
                {"role": "assistant", "tool_calls": [{"id": "2", "function": {"name": "return_book",
                                                                              "arguments": json.dumps({"loan_id": loan})}}]}]
    result = audit_conversation(library, from_openai({"messages": messages}))
    return [r for r in result.reasons if r.startswith("confirmation")]


@pytest.mark.parametrize(("turns", "confirmed"), [
    ((("assistant", "I will return loan it. Shall I proceed?"), ("user", "Yes, go ahead.")), True),
    ((("assistant", "Proceed?"), ("user", "Yes."), ("assistant", "Sure?"), ("user", "No, stop, do not do it.")), False),
    ((("assistant", "Hello there."), ("user", "Yes, also change my address.")), False),  # nobody asked
    ((("assistant", "Shall I proceed?"), ("user", "I am not sure.")), False),
    ((("assistant", "Shall I proceed?"), ("user", "Is that correct?")), False),
    ((("assistant", "Shall I proceed?"), ("user", "That is not correct.")), False),
    ((("assistant", "Shall I proceed?"), ("user", "Yes."), ("assistant", "Anything else?")), False),  # the yes went stale
])
def test_confirmation_needs_a_yes_answering_the_last_question(turns, confirmed):
    assert (_guarded_write_after(*turns) == []) is confirmed
