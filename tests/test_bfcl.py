"""BFCL multi-turn API classes as domains: call parser, environment, registry, and the
acceptance test that replays all 800 multi-turn ground truths against BFCL's own classes."""

from __future__ import annotations

import ast
import copy
import decimal
import fractions
import json
import math
import sys
import threading
import time

import pytest

pytest.importorskip("bfcl_eval")

from apigen_mt.domains.base import ArgumentError, DomainError, ToolExecutionError, ToolKind, UnknownToolError  # noqa: E402
from apigen_mt.domains.bfcl import data  # noqa: E402
from apigen_mt.domains.bfcl.call_parser import CallParseError, parse_call  # noqa: E402
from apigen_mt.domains.bfcl.domain import (  # noqa: E402
    ARGUMENT_RANGES,
    MAX_POWER_DIGITS,
    BFCLDomain,
    bfcl_json,
    error_message,
    ground_truth_actions,
    method_resolver,
    parse_bfcl_call,
    public_state,
)
from apigen_mt.domains.registry import domain_problems, get_domain  # noqa: E402
from apigen_mt.tools.executor import execute_actions, run_call  # noqa: E402
from apigen_mt.tools.state_diff import StateDiff, compare_states, state_hash  # noqa: E402

SINGLE_CLASS = {
    "bfcl.file_system": "GorillaFileSystem",
    "bfcl.math": "MathAPI",
    "bfcl.message": "MessageAPI",
    "bfcl.posting": "TwitterAPI",
    "bfcl.ticket": "TicketAPI",
    "bfcl.trading": "TradingBot",
    "bfcl.travel": "TravelAPI",
    "bfcl.vehicle": "VehicleControlAPI",
}


# -- call parser ---------------------------------------------------------------------------------


def test_parse_keyword_arguments():
    assert parse_call("cd(folder='document')") == ("cd", {"folder": "document"})
    assert parse_call("  grep(file_name='a.txt',pattern='budget analysis') ") == (
        "grep",
        {"file_name": "a.txt", "pattern": "budget analysis"},
    )
    assert parse_call("ls()") == ("ls", {})


def test_parse_positional_arguments_are_named_from_the_signature():
    assert parse_bfcl_call("sort('final_report.pdf')") == ("sort", {"file_name": "final_report.pdf"})
    assert parse_bfcl_call("mv('a.txt', destination='b')") == ("mv", {"source": "a.txt", "destination": "b"})

    def f(a, b, c=3):
        return a

    assert parse_call("f(1, 2)", {"f": f}) == ("f", {"a": 1, "b": 2})
    assert parse_call("f(1, c=2)", lambda name: ["a", "b", "c"]) == ("f", {"a": 1, "c": 2})
    with pytest.raises(CallParseError, match="at most 3"):
        parse_call("f(1, 2, 3, 4)", {"f": f})
    with pytest.raises(CallParseError, match="both by position and by name"):
        parse_call("f(1, a=2)", {"f": f})
    with pytest.raises(CallParseError, match="parameters of 'g' are unknown"):
        parse_call("g(1)")


def test_parse_literals_negative_numbers_and_nesting():
    name, args = parse_call(
        "f(a=-3, b=-2.5, c=+4, d=[1, -2, (3, 4)], e={'k': {'n': None, 'b': True}, 1: 'x'}, g=(), h=1e3, s=\"it's\")"
    )
    assert name == "f"
    assert args == {
        "a": -3,
        "b": -2.5,
        "c": 4,
        "d": [1, -2, [3, 4]],
        "e": {"k": {"n": None, "b": True}, 1: "x"},
        "g": [],
        "h": 1000.0,
        "s": "it's",
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "dunder"),
        ("cd(folder=__import__('os').system('ls'))", "literal"),
        ("f(x=g())", "a function call"),
        ("os.system('ls')", "plain function name"),
        ("self.cd(folder='a')", "plain function name"),
        ("f(x=y)", "a name"),
        ("f(x=1 + 2)", "arithmetic"),
        ("f(x=-y)", "numbers only"),
        ("f(x=f'{a}')", "f-string"),
        ("f(x={1, 2})", "a set"),
        ("f(x=b'raw')", "bytes"),
        ("f(*args)", "unpacking"),
        ("f(**kw)", "unpacking"),
        ("f(x=[*a])", "unpacking"),
        ("f(x={**a})", "unpacking"),
        ("f(a=1)(b=2)", "plain function name"),
        ("f(a=1); g()", "not a valid call"),
        ("[f(a=1)]", "expected a function call"),
        ("f(x=lambda: 1)", "lambda"),
        ("f(a=1, a=2)", None),
        ("", "empty"),
        ("f(x=float('inf'))", "a function call"),
    ],
)
def test_parse_rejects_non_literals(text, message):
    with pytest.raises(CallParseError) as error:
        parse_call(text)
    if message:
        assert message in str(error.value)


# -- domains and environments --------------------------------------------------------------------


@pytest.fixture(scope="module")
def file_system():
    return get_domain("bfcl.file_system")


def test_registry_builds_eight_usable_single_class_domains():
    for name, class_name in SINGLE_CLASS.items():
        domain = get_domain(name)
        assert domain.name == name and domain.class_names == (class_name,)
        assert domain_problems(domain) == []
        assert domain.persona_set == "bfcl"
        assert domain.policy.strip()
        assert [t.name for t in domain.tools] == [d["name"] for d in data.func_docs(class_name)]
        counts = domain.tool_counts()
        assert counts["other"] == 0 and counts["read"] > 0
        assert (counts["write"] == 0) == (class_name == "MathAPI")
        # pristine state = the first multi_turn_base entry involving the class
        first = next(e for e in data.all_entries(("base",)) if class_name in e["involved_classes"])
        assert data.pristine_entry_id(class_name) == first["id"]
        assert domain.initial_config() == {class_name: first["initial_config"].get(class_name, {})}


def test_tool_specs_use_standard_json_schema():
    bad_types = {"dict", "float", "tuple", "any", "int", "str", "bool", "list"}

    def walk(schema):
        if isinstance(schema, dict):
            kind = schema.get("type")
            for item in kind if isinstance(kind, list) else [kind]:
                assert item not in bad_types
            if schema.get("default") == "None":
                raise AssertionError("default 'None' must become null")
            for value in schema.values():
                walk(value)
        elif isinstance(schema, list):
            for value in schema:
                walk(value)

    for name in SINGLE_CLASS:
        for spec in get_domain(name).tools:
            assert spec.parameters["type"] == "object"
            assert isinstance(spec.parameters["properties"], dict)
            walk(spec.parameters)
            json.dumps(spec.openai_schema())
    echo = get_domain("bfcl.file_system").tool("echo")
    assert echo.parameters["properties"]["file_name"]["default"] is None
    assert get_domain("bfcl.vehicle").tool("fillFuelTank").parameters["properties"]["fuelAmount"]["type"] == "number"


def test_tool_kinds_follow_the_measurement(file_system):
    kinds = {t.name: t.kind for t in file_system.tools}
    assert kinds["touch"] == kinds["mv"] == kinds["echo"] == ToolKind.WRITE
    assert kinds["cat"] == kinds["ls"] == kinds["cd"] == kinds["pwd"] == ToolKind.READ
    assert all(t.kind == ToolKind.READ for t in get_domain("bfcl.math").tools)


def test_execute_and_state_records(file_system):
    env = file_system.new_env()
    assert list(env.changed_records()) == []
    assert env.execute("cd", {"folder": "document"}) == {"current_working_directory": "document"}
    assert list(env.changed_records()) == []  # the current directory is private, as in BFCL
    assert env.execute("touch", {"file_name": "notes.txt"}) is None
    assert env.execute("echo", {"content": "hello", "file_name": "notes.txt"}) is None
    (change,) = env.changed_records()
    assert (change.table, change.key) == ("GorillaFileSystem", "root")
    assert change.after["contents"]["document"]["contents"]["notes.txt"] == {"type": "file", "content": "hello"}
    assert "notes.txt" not in change.before["contents"]["document"]["contents"]
    assert env.record("GorillaFileSystem", "root") == change.after
    assert env.record("GorillaFileSystem", "_current_dir") is None
    assert env.record("Nope", "root") is None
    json.dumps(env.dump())  # the Directory.parent cycle is skipped
    diff = StateDiff.of(env)
    assert "notes.txt" in diff.render()
    # forks are independent snapshots, new environments start pristine
    snapshot = env.fork()
    env.execute("rm", {"file_name": "notes.txt"})
    assert snapshot.execute("cat", {"file_name": "notes.txt"}) == {"file_content": "hello"}
    assert snapshot.execute("pwd", {}) == {"current_working_directory": "/workspace/document"}
    assert list(file_system.new_env().changed_records()) == []
    assert compare_states(snapshot, env)  # they differ now
    assert state_hash(file_system.new_env()) == state_hash(file_system.new_env())


def test_error_paths(file_system):
    env = file_system.new_env()
    with pytest.raises(UnknownToolError, match="'rm_rf' not found"):
        env.execute("rm_rf", {})
    with pytest.raises(ArgumentError, match="folder must be string"):
        env.execute("cd", {"folder": 3})
    with pytest.raises(ArgumentError, match="missing required argument file_name"):
        env.execute("cat", {})
    with pytest.raises(ArgumentError, match="unexpected argument path"):
        env.execute("cat", {"file_name": "a", "path": "/"})
    with pytest.raises(ToolExecutionError, match="No such file or directory"):  # a returned {"error": ...}
        env.execute("cat", {"file_name": "missing.txt"})
    travel = get_domain("bfcl.travel").new_env()
    with pytest.raises(ToolExecutionError, match="No available route"):  # a raised ValueError
        travel.execute(
            "get_flight_cost", {"travel_from": "XXX", "travel_to": "YYY", "travel_date": "2024-11-15", "travel_class": "economy"}
        )
    ticket = get_domain("bfcl.ticket").new_env()
    with pytest.raises(ToolExecutionError, match="Please log in"):  # a returned [{"error": ...}]
        ticket.execute("get_user_tickets", {})
    # the executor turns all of them into recorded errors
    trace = execute_actions(
        env,
        [
            {"name": "nope", "arguments": {}},
            {"name": "cd", "arguments": {"folder": 3}},
            {"name": "cat", "arguments": {"file_name": "missing.txt"}},
            {"name": "cd", "arguments": {"folder": "document"}},
        ],
    )
    assert [c.error_type for c in trace.calls] == ["UnknownToolError", "ArgumentError", "ToolExecutionError", None]


def test_error_message_forms():
    assert error_message({"error": "boom"}) == "boom"
    assert error_message({"booking_status": False, "error": "Token expired"}) == "Token expired"
    assert error_message({"error": 404}) == "404"
    assert error_message([{"error": "log in"}]) == "log in"
    assert error_message(["Error: User not authenticated."]) == "User not authenticated."
    assert error_message({"ok": True}) is None
    assert error_message([{"id": 1}]) is None
    assert error_message(None) is None


def test_optional_parameters_accept_null_and_ints_pass_as_floats():
    vehicle = get_domain("bfcl.vehicle").new_env()
    assert vehicle.execute("fillFuelTank", {"fuelAmount": 10})["fuelLevel"] == 20.5
    ticket = get_domain("bfcl.ticket").new_env()
    ticket.execute("ticket_login", {"username": "u", "password": "p"})
    ticket.execute("create_ticket", {"title": "t", "priority": 3})
    assert ticket.execute("get_user_tickets", {"status": None})[0]["title"] == "t"
    ticket.execute("edit_ticket", {"ticket_id": 1, "updates": {"status": "Closed", "priority": None}})
    assert ticket.record("TicketAPI", "ticket_queue")[0]["status"] == "Closed"
    assert ticket.record("TicketAPI", "ticket_queue")[0]["priority"] == 3


def test_arguments_and_defaults_are_never_aliased_into_the_state():
    domain = get_domain("bfcl.posting")
    api_class = data.api_class("TwitterAPI")
    defaults_before = copy.deepcopy(api_class.post_tweet.__defaults__)
    env = domain.new_env()
    api = env.instances["TwitterAPI"]
    env.execute("authenticate_twitter", {"username": api.username, "password": api.password})
    tags = ["#a"]
    arguments = {"content": "hi", "tags": tags}
    tweet = env.execute("post_tweet", arguments)
    env.execute("mention", {"tweet_id": tweet["id"], "mentioned_usernames": ["@bob"]})
    env.execute("post_tweet", {"content": "no mentions"})
    env.execute("mention", {"tweet_id": tweet["id"] + 1, "mentioned_usernames": ["@eve"]})
    assert arguments == {"content": "hi", "tags": ["#a"]} and tags == ["#a"]
    assert api_class.post_tweet.__defaults__ == defaults_before == ([], [])
    assert env.execute("get_tweet", {"tweet_id": tweet["id"]})["mentions"] == ["@bob"]
    # an observation is a copy, not a view of the live state
    observed = env.execute("get_tweet", {"tweet_id": tweet["id"]})
    observed["mentions"].append("@x")
    assert env.execute("get_tweet", {"tweet_id": tweet["id"]})["mentions"] == ["@bob"]


def test_state_dump_normalises_integral_floats_like_python_equality():
    vehicle = get_domain("bfcl.vehicle")
    a, b = vehicle.new_env(), vehicle.new_env()
    a.execute("adjustClimateControl", {"temperature": 20})
    b.execute("adjustClimateControl", {"temperature": 20.0})
    assert a.instances["VehicleControlAPI"] == b.instances["VehicleControlAPI"]  # BFCL's own __eq__
    assert compare_states(a, b) == []
    assert bfcl_json({"x": 2.0, "y": 2.5}, state=True) == {"x": 2, "y": 2.5}
    assert bfcl_json({"x": 2.0}) == {"x": 2.0}
    assert bfcl_json({3: {1, 2}}) == {"3": [1, 2]}


def test_scenarios_are_exactly_those_whose_data_is_the_domain_state():
    """A blueprint written from a sampled scenario's data must run on that data."""
    trading = get_domain("bfcl.trading")
    ids = trading.user_ids()
    assert ids and ids[0] == data.pristine_entry_id("TradingBot")
    for id_ in ids:
        assert BFCLDomain.for_entry(id_).new_env().dump()["TradingBot"] == trading.new_env().dump()["TradingBot"]
    others = [e["id"] for e in data.all_entries() if "TradingBot" in e["involved_classes"] and e["id"] not in ids]
    assert others and "long_context" not in "".join(ids)
    context = trading.user_context(ids[0], max_chars=800)
    assert context["scenario_id"] == ids[0] and "TradingBot" in context["initial_state"]
    assert len(json.dumps(context["initial_state"])) <= 800
    with pytest.raises(DomainError, match="not a scenario"):
        trading.user_context(others[0])
    # every other scenario is a domain of its own, by name
    assert get_domain(f"bfcl.{others[0]}").user_ids() == [others[0]]
    with pytest.raises(DomainError, match="not a scenario"):
        get_domain("bfcl.math").user_context("multi_turn_base_0")  # file system + posting only


def test_for_entry_uses_all_classes_long_context_and_excluded_functions():
    entry = data.get_entry("multi_turn_long_context_0")
    domain = BFCLDomain.for_entry(entry)
    assert set(domain.class_names) == set(entry["involved_classes"]) and domain.long_context
    assert domain.user_ids() == [entry["id"]]
    assert all(domain.tool(name) is None for name in entry["excluded_function"])
    assert BFCLDomain.for_entry(entry, exclude_functions=False).tool(entry["excluded_function"][0]) is not None
    # long context: padded directories, as BFCL loads them
    plain = BFCLDomain.for_entry("multi_turn_base_0")
    assert len(json.dumps(domain.new_env().dump())) > len(json.dumps(plain.new_env().dump()))
    assert not plain.long_context


def test_ground_truth_parses_and_math_is_stateless():
    assert ground_truth_actions("multi_turn_base_0")[2] == [{"name": "sort", "arguments": {"file_name": "final_report.pdf"}}]
    env = get_domain("bfcl.math").new_env()
    assert env.execute("add", {"a": 1, "b": 2}) == {"result": 3}
    assert env.dump() == {"MathAPI": {}} and list(env.changed_records()) == []



# -- math: numbers, limits, process-wide precision --------------------------------------------


@pytest.fixture()
def math_env():
    return get_domain("bfcl.math").new_env()


def test_math_results_are_plain_json_numbers(math_env):
    # logarithm returns an mpmath mpf, square_root a Decimal: both become floats
    result = math_env.execute("logarithm", {"value": 630.0, "base": 6.0, "precision": 10})["result"]
    assert isinstance(result, float) and math.isclose(result, math.log(630) / math.log(6), rel_tol=1e-9)
    assert math_env.execute("logarithm", {"value": 1000, "base": 10, "precision": 5}) == {"result": pytest.approx(3.0)}
    assert math_env.execute("square_root", {"number": 2, "precision": 30})["result"] == pytest.approx(math.sqrt(2))
    # not finite, or not real: the number's text, so the observation stays valid JSON
    assert math_env.execute("logarithm", {"value": 0, "base": 10, "precision": 5}) == {"result": "-inf"}
    negative = math_env.execute("logarithm", {"value": -1, "base": 10, "precision": 5})["result"]
    assert isinstance(negative, str) and "j" in negative  # an mpc: (0.0 + 1.3644j)
    assert math_env.execute("power", {"base": -8, "exponent": 0.5})["result"].endswith("j)")  # a complex
    for observation in (result, negative):
        json.dumps(observation, allow_nan=False)
    assert bfcl_json(float("nan")) == "nan" and bfcl_json(decimal.Decimal("1e400")) == "1E+400"
    assert bfcl_json(fractions.Fraction(1, 4)) == 0.25 and bfcl_json(decimal.Decimal("4"), state=True) == 4

    class Opaque:  # no public attributes: its text, not {}
        def __init__(self):
            self._hidden = 1

        def __str__(self):
            return "opaque"

    class Point:
        def __init__(self):
            self.x, self._y = 1, 2

    assert bfcl_json({"a": Opaque(), "b": Point()}) == {"a": "opaque", "b": {"x": 1}}


def test_math_arguments_beyond_their_range_are_refused_quickly(math_env):
    started = time.perf_counter()
    cases = [
        ("logarithm", {"value": 10, "base": 2, "precision": 100000}, "precision must be between 1 and 100"),
        ("logarithm", {"value": 10, "base": 2, "precision": 0}, "precision must be between 1 and 100"),
        ("square_root", {"number": 2, "precision": 200000}, "precision must be between 1 and 100"),
        ("power", {"base": 10, "exponent": 10000}, "exponent must be between -1000 and 1000"),
        ("power", {"base": 2.5, "exponent": -1e6}, "exponent must be between -1000 and 1000"),
        ("round_number", {"number": 5, "decimal_places": -10**8}, "decimal_places must be between -100 and 100"),
        ("power", {"base": 10**400, "exponent": 1000}, f"at most {MAX_POWER_DIGITS:,} are allowed"),
    ]
    for name, arguments, message in cases:
        with pytest.raises(ArgumentError, match=message):
            math_env.execute(name, arguments)
    assert time.perf_counter() - started < 0.5
    # the bounds themselves are allowed
    low, high = ARGUMENT_RANGES["MathAPI"]["logarithm"]["precision"]
    assert math_env.execute("logarithm", {"value": 8, "base": 2, "precision": high}) == {"result": pytest.approx(3.0)}
    assert math_env.execute("square_root", {"number": 9, "precision": low}) == {"result": 9.0**0.5}
    assert math_env.execute("round_number", {"number": 1234.5, "decimal_places": -2}) == {"result": 1200.0}
    assert math_env.execute("power", {"base": 2, "exponent": -1000})["result"] == 2.0**-1000


def test_integers_beyond_64_bits_are_written_as_text(math_env):
    assert math_env.execute("multiply", {"a": 2**62, "b": 1}) == {"result": 2**62}
    assert math_env.execute("multiply", {"a": -(2**62), "b": 2}) == {"result": -(2**63)}
    assert math_env.execute("multiply", {"a": 2**62, "b": 2}) == {"result": str(2**63)}
    assert math_env.execute("power", {"base": 10, "exponent": 400}) == {"result": "1" + "0" * 400}
    # more digits than Python's int-to-text limit (4300): still all of them, and it renders
    call = run_call(math_env, 0, "multiply", {"a": 10**4000, "b": 10**4000})
    assert call.ok and call.observation == {"result": "1" + "0" * 8000}
    assert len(call.render()) > 8000


def test_math_calls_leave_process_wide_precision_as_it_was(math_env):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 15
    decimal.getcontext().prec = 28
    try:
        math_env.execute("logarithm", {"value": 10, "base": 3, "precision": 60})
        assert mpmath.mp.dps == 15
        math_env.execute("square_root", {"number": 10, "precision": 60})
        assert decimal.getcontext().prec == 28
        with pytest.raises(ToolExecutionError):  # log(1) == 0: BFCL returns an error after setting dps
            math_env.execute("logarithm", {"value": 10, "base": 1, "precision": 40})
        assert mpmath.mp.dps == 15 and decimal.getcontext().prec == 28
        # a call's own low precision is honoured, and the caller's high one is back afterwards
        mpmath.mp.dps = 80
        result = math_env.execute("logarithm", {"value": 10, "base": 3, "precision": 3})["result"]
        assert result == 2.09619140625 != math.log(10, 3)  # 3 digits (13 bits) of precision
        assert mpmath.mp.dps == 80
    finally:
        mpmath.mp.dps = 15
        decimal.getcontext().prec = 28


def test_concurrent_math_calls_do_not_see_each_others_precision():
    """mpmath's precision is one process-wide setting: threads must not interleave inside a call."""
    domain = get_domain("bfcl.math")
    expected = {p: domain.new_env().execute("logarithm", {"value": 10, "base": 3, "precision": p}) for p in (3, 60)}
    wrong: list[int] = []

    def work(precision: int) -> None:
        env = domain.new_env()
        for _ in range(1500):
            if env.execute("logarithm", {"value": 10, "base": 3, "precision": precision}) != expected[precision]:
                wrong.append(precision)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible (without the lock: ~10 wrong results)
    try:
        threads = [threading.Thread(target=work, args=(p,)) for p in (3, 60, 3, 60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []

# -- robustness of the environment API ------------------------------------------------------------


def test_odd_tool_names_and_record_keys_are_answered_not_crashed(file_system):
    env = file_system.new_env()
    for name in (["x"], None, {"a": 1}, 5):
        with pytest.raises(UnknownToolError, match="not found"):
            env.execute(name, {})
        assert file_system.owner(name) is None
    assert env.record("GorillaFileSystem", 5) is None
    assert env.record(["GorillaFileSystem"], "root") is None
    assert env.record("GorillaFileSystem", None) is None
    assert env.record("GorillaFileSystem", "root") is not None


def test_diffs_never_alias_the_shared_pristine_state(file_system):
    env = file_system.new_env()
    env.execute("touch", {"file_name": "x.txt"})
    (change,) = env.changed_records()
    change.before["contents"].clear()  # a caller editing a diff it was handed
    file_system.pristine_state("GorillaFileSystem")["root"]["contents"].clear()
    StateDiff.of(env).changes[0].before["contents"]["injected"] = 1
    assert list(file_system.new_env().changed_records()) == []
    other = file_system.new_env()
    other.execute("touch", {"file_name": "x.txt"})
    (again,) = other.changed_records()
    assert again.before == file_system.new_env().record("GorillaFileSystem", "root")
    assert "injected" not in again.before["contents"] and again.before["contents"]


def test_damaged_data_files_raise_domain_errors(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"id": "a"}\n\n{"id": "b"}\n', encoding="utf-8")
    assert data._read_rows(good) == [{"id": "a"}, {"id": "b"}]
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "a"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(DomainError, match="line 2: invalid JSON"):
        data._read_rows(bad)
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(DomainError, match="line 1: expected a JSON object, got list"):
        data._read_rows(not_object)
    with pytest.raises(DomainError, match="data file missing"):
        data._read_rows(tmp_path / "absent.json")


# -- acceptance: all 800 multi-turn entries against BFCL's own classes ---------------------------


def _reference_instances(entry):
    """BFCL's classes loaded exactly as its checker loads them (no deep copy afterwards)."""
    instances = {}
    for class_name in entry["involved_classes"]:
        instance = data.api_class(class_name)()
        if not data.is_stateless(class_name):
            instance._load_scenario(
                copy.deepcopy(entry["initial_config"].get(class_name, {})), long_context=data.is_long_context(entry)
            )
        instances[class_name] = instance
    return instances


def _reference_call(instances, text):
    """Runs a call string on BFCL's instances the way eval would, but via ast.literal_eval."""
    node = ast.parse(text, mode="eval").body
    name = node.func.id
    positional = [ast.literal_eval(arg) for arg in node.args]
    keywords = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    owner = next(c for c, inst in instances.items() if callable(getattr(inst, name, None)) and not name.startswith("_"))
    try:
        result = getattr(instances[owner], name)(*positional, **keywords)
    except Exception as error:  # BFCL records "Error during execution: ..."
        return True, f"{type(error).__name__}: {error}"
    return error_message(result) is not None, result


@pytest.mark.integration
def test_ground_truth_replay_matches_bfcl_on_all_800_entries():
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import _compare_instances

    entries = data.all_entries()
    assert len(entries) == 800
    mismatches: list[str] = []
    calls = failed = 0
    for entry in entries:
        domain = BFCLDomain.for_entry(entry)
        env = domain.new_env()
        reference = _reference_instances(entry)
        for turn_index, turn in enumerate(data.ground_truth(entry["id"])):
            actions = [parse_call(text, method_resolver) for text in turn]
            trace = execute_actions(env, [{"name": n, "arguments": a} for n, a in actions])
            for text, call in zip(turn, trace.calls):
                calls += 1
                ref_failed, ref_result = _reference_call(reference, text)
                failed += ref_failed
                if call.ok == ref_failed:
                    mismatches.append(
                        f"{entry['id']} turn {turn_index} {text}: ours {call.error or 'ok'!r}, BFCL {ref_result!r:.200}"
                    )
                elif call.ok and call.observation != bfcl_json(ref_result):
                    mismatches.append(f"{entry['id']} turn {turn_index} {text}: observations differ")
            for class_name, ref_instance in reference.items():
                valid, differences = _compare_instances(env.instances[class_name], ref_instance)
                if not valid:
                    mismatches.append(f"{entry['id']} turn {turn_index} {class_name}: {sorted(differences)}")
                if public_state(env.instances[class_name]) != public_state(ref_instance):
                    mismatches.append(f"{entry['id']} turn {turn_index} {class_name}: JSON dumps differ")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])
    assert calls == 4625
    assert failed == 0  # BFCL's ground truth never fails (ticket_id='ticket_001' included)


@pytest.mark.integration
def test_tool_kinds_json_is_up_to_date():
    from apigen_mt.domains.bfcl.classify import main

    assert main(["--check"]) == 0


def test_a_failed_write_leaves_the_state_unchanged(monkeypatch):
    """BFCL methods may change state and then report an error: the contract rolls that back."""
    domain = get_domain("bfcl.file_system")
    env = domain.new_env()
    instance = env.instances["GorillaFileSystem"]
    public = next(name for name in vars(instance) if not name.startswith("_"))

    def half_done(self, dir_name):
        setattr(self, public, "half-written")
        return {"error": f"mkdir: cannot create directory '{dir_name}': disk full"}

    monkeypatch.setattr(type(instance), "mkdir", half_done)
    call = execute_actions(env, [{"name": "mkdir", "arguments": {"dir_name": "x"}}]).calls[0]
    assert call.error == "mkdir: cannot create directory 'x': disk full"
    assert list(env.changed_records()) == []
