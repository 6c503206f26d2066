"""The LLM test doubles: ScriptedChatModel (in-process) and OpenAIStubServer (real HTTP path)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from typing import Annotated

import openai
import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from apigen_mt.testing import (
    Fault,
    OpenAIStubServer,
    ScriptedChatModel,
    ScriptError,
    ScriptExhaustedError,
    structured,
    tool_call,
)


@tool
def get_order(order_id: str) -> str:
    """Look up an order's status."""
    return json.dumps({"order_id": order_id, "status": "shipped"})


class Refund(BaseModel):
    """A refund decision."""

    order_id: str
    amount: float = Field(ge=0)
    reason: str


REFUND = {"order_id": "#W1", "amount": 12.5, "reason": "damaged"}


# ---------------------------------------------------------------------------------------------
# ScriptedChatModel
# ---------------------------------------------------------------------------------------------


def test_plain_invoke_records_calls_and_usage():
    model = ScriptedChatModel(["Hello there, how can I help?", AIMessage(content="Bye.")])
    reply = model.invoke([HumanMessage("hi you")])
    assert isinstance(reply, AIMessage)
    assert reply.content == "Hello there, how can I help?"
    assert reply.usage_metadata == {"input_tokens": 2, "output_tokens": 6, "total_tokens": 8}
    assert reply.response_metadata["finish_reason"] == "stop"
    assert model.invoke("again").content == "Bye."
    assert [c.index for c in model.calls] == [1, 2]
    assert model.calls[0].messages[0].content == "hi you"
    assert model.calls[1].response.content == "Bye."
    model.assert_consumed()


def test_bind_tools_round_trip():
    def answer_from_tool(messages):
        observation = json.loads(messages[-1].content)
        return f"Order {observation['order_id']} is {observation['status']}."

    model = ScriptedChatModel([tool_call("get_order", {"order_id": "#W1"}), answer_from_tool])
    bound = model.bind_tools([get_order], tool_choice="auto")
    assert [t["function"]["name"] for t in model.bound_tools] == ["get_order"]

    messages = [HumanMessage("Where is order #W1?")]
    first = bound.invoke(messages)
    assert first.tool_calls == [
        {"name": "get_order", "args": {"order_id": "#W1"}, "id": "call_1_0", "type": "tool_call"}
    ]
    assert first.response_metadata["finish_reason"] == "tool_calls"
    messages += [first, ToolMessage(get_order.invoke(first.tool_calls[0]["args"]), tool_call_id="call_1_0")]
    second = bound.invoke(messages)
    assert second.content == "Order #W1 is shipped."
    assert model.calls[0].tool_names == ["get_order"]
    assert model.calls[0].kwargs["tool_choice"] == "auto"
    assert isinstance(model.calls[1].messages[-1], ToolMessage)


def test_invalid_tool_arguments_and_exception_items():
    model = ScriptedChatModel([tool_call("get_order", '{"order_id": '), TimeoutError("scripted timeout")])
    reply = model.bind_tools([get_order]).invoke("x")
    assert reply.tool_calls == [] and reply.invalid_tool_calls[0]["name"] == "get_order"
    with pytest.raises(TimeoutError, match="scripted timeout"):
        model.invoke("x")
    assert isinstance(model.calls[1].error, TimeoutError)


@pytest.mark.parametrize("item", [REFUND, json.dumps(REFUND), Refund(**REFUND)])
def test_structured_output_json_schema(item):
    model = ScriptedChatModel([item])
    result = model.with_structured_output(Refund).invoke("refund?")  # json_schema: the ChatOpenAI default
    assert result == Refund(**REFUND)
    assert model.calls[0].kwargs["response_format"] is Refund  # bound as ChatOpenAI binds it


def test_structured_output_function_calling_and_include_raw():
    model = ScriptedChatModel([REFUND, tool_call("Refund", REFUND), {"order_id": "#W1"}])
    chain = model.with_structured_output(Refund, method="function_calling")
    assert chain.invoke("refund?") == Refund(**REFUND)  # JSON data became the forced tool's call
    call = model.calls[0]
    assert call.kwargs["tool_choice"] == {"type": "function", "function": {"name": "Refund"}}
    assert call.tool_names == ["Refund"]

    raw_chain = model.with_structured_output(Refund, method="function_calling", include_raw=True)
    ok = raw_chain.invoke("refund?")
    assert ok["parsed"] == Refund(**REFUND) and ok["parsing_error"] is None
    assert ok["raw"].tool_calls[0]["name"] == "Refund"
    bad = raw_chain.invoke("refund?")  # missing fields: validation fails, reported not raised
    assert bad["parsed"] is None and bad["parsing_error"] is not None
    assert bad["raw"].tool_calls[0]["args"] == {"order_id": "#W1"}


def test_structured_output_errors_and_dict_schema():
    model = ScriptedChatModel(["not json", "{\"amount\": -1}", {"answer": 42}, {"answer": 7}])
    with pytest.raises(OutputParserException):
        model.with_structured_output(Refund).invoke("x")
    out = model.with_structured_output(Refund, include_raw=True).invoke("x")
    assert out["parsed"] is None and isinstance(out["parsing_error"], OutputParserException)
    assert out["raw"].content == '{"amount": -1}'
    schema = {
        "title": "answer",
        "description": "The answer.",
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    assert model.with_structured_output(schema).invoke("x") == {"answer": 42}
    assert model.calls[2].kwargs["response_format"]["json_schema"]["name"] == "answer"
    assert model.with_structured_output(schema, method="function_calling").invoke("x") == {"answer": 7}


def test_structured_marker_for_ambiguous_data():
    class Note(BaseModel):
        content: str

    model = ScriptedChatModel([structured({"content": "hi"})])
    assert model.with_structured_output(Note).invoke("x") == Note(content="hi")


def test_streaming_chunks_text_and_tool_calls():
    model = ScriptedChatModel(["one two three four", tool_call("get_order", {"order_id": "#W2"})])
    chunks = list(model.stream("count"))
    texts = [c.content for c in chunks if c.content]
    assert texts == ["one ", "two ", "three ", "four"]
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c
    assert whole.content == "one two three four"
    assert whole.usage_metadata["output_tokens"] == 4
    tool_chunks = list(model.bind_tools([get_order]).stream("where"))
    merged = tool_chunks[0]
    for c in tool_chunks[1:]:
        merged += c
    assert isinstance(merged, AIMessageChunk)
    assert merged.tool_calls[0]["args"] == {"order_id": "#W2"}
    assert len(model.calls) == 2  # one script item per stream


def test_async_invoke_abatch_astream_with_latency():
    model = ScriptedChatModel([f"reply {i}" for i in range(6)], latency=0.2)

    async def main():
        start = time.perf_counter()
        batch = await model.abatch(["a", "b", "c", "d", "e"])
        elapsed = time.perf_counter() - start
        chunks = [c.content async for c in model.astream("f")]
        return batch, elapsed, chunks

    batch, elapsed, chunks = asyncio.run(main())
    assert sorted(m.content for m in batch) == [f"reply {i}" for i in range(5)]
    assert elapsed < 0.6  # the five 0.2 s latencies overlapped (asyncio.sleep, not time.sleep)
    assert "".join(chunks) == "reply 5"


def test_async_callable_items():
    async def reactive(messages):
        await asyncio.sleep(0)
        return f"you said {messages[-1].content}"

    model = ScriptedChatModel([reactive])
    assert asyncio.run(model.ainvoke("ping")).content == "you said ping"


def test_thread_safe_consumption():
    model = ScriptedChatModel([str(i) for i in range(64)])
    results: list[str] = []
    lock = threading.Lock()

    def worker():
        for _ in range(8):
            content = model.invoke("x").content
            with lock:
                results.append(content)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=int) == [str(i) for i in range(64)]
    assert sorted(c.index for c in model.calls) == list(range(1, 65))
    model.assert_consumed()


def test_exhaustion_error_names_the_calls():
    model = ScriptedChatModel(["only one"])
    model.invoke("first")
    with pytest.raises(ScriptExhaustedError, match=r"call #2 \(2 calls made in total, 1 answered\)"):
        model.invoke("second")
    keyed = ScriptedChatModel({"critic": ["ok"]})
    with pytest.raises(ScriptError, match="no script for key 'default'"):
        keyed.invoke("x")


def test_keyed_scripts_by_bind_tag_and_metadata():
    model = ScriptedChatModel({"critic": ["good", "bad"], "writer": ["draft"], "default": ["other"]})
    assert model.bind(script_key="critic").invoke("x").content == "good"
    assert model.with_config(tags=["writer"]).invoke("x").content == "draft"
    assert model.invoke("x", config={"metadata": {"role": "critic"}}).content == "bad"
    assert model.invoke("x").content == "other"
    assert [c.key for c in model.calls] == ["critic", "writer", "critic", "default"]
    assert model.remaining() == 0


class _State(TypedDict):
    messages: Annotated[list, add_messages]
    summary: str


def test_langgraph_tool_agent_and_keyed_nodes():
    model = ScriptedChatModel(
        {
            "agent": [tool_call("get_order", {"order_id": "#W3"}), "Your order #W3 has shipped."],
            "summarize": [lambda messages: f"summary of {len(messages)} messages"],
        }
    )
    agent_model = model.bind_tools([get_order])

    def agent(state: MessagesState):
        return {"messages": [agent_model.invoke(state["messages"])]}

    def summarize(state: _State):
        return {"summary": model.invoke(state["messages"]).content}

    builder = StateGraph(_State)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([get_order]))
    builder.add_node("summarize", summarize)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "summarize"})
    builder.add_edge("tools", "agent")
    builder.add_edge("summarize", END)
    graph = builder.compile()

    # stream_mode="messages" makes the graph call the model's streaming path: same script.
    tokens = [
        chunk.content
        for chunk, meta in graph.stream({"messages": [HumanMessage("where is #W3?")]}, stream_mode="messages")
        if meta["langgraph_node"] == "agent" and chunk.content
    ]
    assert "".join(tokens) == "Your order #W3 has shipped."
    assert len(tokens) == 5  # streamed word by word, not one invoke-sized message
    assert [c.key for c in model.calls] == ["agent", "agent", "summarize"]
    assert model.calls[2].response.content == "summary of 4 messages"
    assert isinstance(model.calls[1].messages[-1], ToolMessage)
    model.assert_consumed()


# ---------------------------------------------------------------------------------------------
# OpenAIStubServer through the real ChatOpenAI
# ---------------------------------------------------------------------------------------------


def _llm(stub: OpenAIStubServer, **kw) -> ChatOpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 2.0)
    return ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub", **kw)


def test_stub_normal_reply_and_records():
    with OpenAIStubServer(["Hello from the stub."]) as stub:
        assert stub.base_url.startswith("http://127.0.0.1:")
        reply = _llm(stub).invoke("hi there")
        assert reply.content == "Hello from the stub."
        assert reply.usage_metadata["input_tokens"] == 2
        (req,) = stub.chat_requests
        assert req.headers["authorization"] == "Bearer x"
        assert req.body["model"] == "stub"
        assert req.messages == [{"role": "user", "content": "hi there"}]
        with urllib.request.urlopen(stub.base_url + "/models", timeout=2) as resp:
            assert json.load(resp)["data"][0]["id"] == "stub"
    assert not stub.running and stub.errors == []


def test_stub_tool_call_and_streaming():
    script = [tool_call("get_order", {"order_id": "#W9"}), "streamed reply text", REFUND]
    with OpenAIStubServer(script) as stub:
        llm = _llm(stub)
        reply = llm.bind_tools([get_order]).invoke("where is #W9")
        assert reply.tool_calls[0]["name"] == "get_order"
        assert reply.tool_calls[0]["args"] == {"order_id": "#W9"}
        assert stub.chat_requests[0].body["tools"][0]["function"]["name"] == "get_order"
        chunks = [c.content for c in llm.stream("stream please")]
        assert "".join(chunks) == "streamed reply text" and len([c for c in chunks if c]) == 3
        assert stub.chat_requests[1].body["stream"] is True
        assert llm.with_structured_output(Refund).invoke("refund?") == Refund(**REFUND)
        assert stub.chat_requests[2].body["response_format"]["type"] == "json_schema"


def test_stub_429_then_success():
    with OpenAIStubServer(["recovered"], faults=[Fault.rate_limit(retry_after=0.05)]) as stub:
        start = time.perf_counter()
        assert _llm(stub, max_retries=2).invoke("x").content == "recovered"
        assert time.perf_counter() - start < 1.0  # honoured retry-after-ms, not the 0.5 s backoff
        assert len(stub.chat_requests) == 2
        assert [r.fault for r in stub.chat_requests] == ["status", None]


def test_stub_500_then_success():
    with OpenAIStubServer(["fine"], faults=[Fault.server_error(500)]) as stub:
        assert _llm(stub, max_retries=2).invoke("x").content == "fine"
        assert len(stub.chat_requests) == 2


def test_stub_timeout_raises_after_retries():
    start = time.perf_counter()
    with OpenAIStubServer(["never served"], faults=[Fault.delay(5), Fault.delay(5)]) as stub:
        with pytest.raises(openai.APITimeoutError):
            _llm(stub, max_retries=1, timeout=0.25).invoke("x")
        assert len(stub.chat_requests) == 2
        assert stub.remaining() == 1  # delays do not consume the script
    assert time.perf_counter() - start < 3.0  # stop() interrupted the pending delays


def test_stub_malformed_json_surfaces():
    with OpenAIStubServer(["unused"], faults=[Fault.malformed_json()]) as stub:
        with pytest.raises(json.JSONDecodeError):
            _llm(stub, max_retries=2).invoke("x")
        assert len(stub.chat_requests) == 1  # a 200 with a bad body is not retried


def test_stub_invalid_tool_arguments_drop_and_exhaustion():
    faults = [Fault.invalid_tool_arguments("get_order", '{"order_id": '), Fault.drop()]
    with OpenAIStubServer(["after the drop"], faults=faults) as stub:
        llm = _llm(stub, max_retries=1)
        reply = llm.bind_tools([get_order]).invoke("x")
        assert reply.tool_calls == [] and reply.invalid_tool_calls[0]["args"] == '{"order_id": '
        assert llm.invoke("x").content == "after the drop"  # dropped, retried, served
        with pytest.raises(openai.InternalServerError, match="exhausted at chat request #4"):
            llm.invoke("x")
        assert len(stub.chat_requests) == 4  # x-should-retry: false stopped the retry
        assert len(stub.errors) == 1


def test_stub_async_and_keyed_by_model():
    with OpenAIStubServer({"critic": ["approve"], "default": ["generic"]}) as stub:
        critic = ChatOpenAI(base_url=stub.base_url, api_key="x", model="critic", max_retries=0, timeout=2)

        async def main():
            return await asyncio.gather(critic.ainvoke("judge"), _llm(stub).ainvoke("other"))

        judged, other = asyncio.run(main())
        assert (judged.content, other.content) == ("approve", "generic")
