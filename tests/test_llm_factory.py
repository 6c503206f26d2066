"""The LLM layer through the real ChatOpenAI and the HTTP stub: retries, clear errors, budget,
cache, accounting, tracing metadata, secrets. Fast: no real model, short injected delays."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import socket
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from apigen_mt.configuration import Configuration, ModelSpec
from apigen_mt.graphs.context import RunContext
from apigen_mt.llm.accounting import CallRecorder
from apigen_mt.llm.budget import Budget, BudgetExceeded
from apigen_mt.llm.cache import CacheCorruptError, ResponseCache
from apigen_mt.llm.factory import (
    LOCAL_MAX_TOKENS,
    LLMRuntime,
    make_chat_model,
    managed_info,
    wrap_chat_model,
)
from apigen_mt.llm.retry import (
    LLMConfigError,
    LLMEndpointUnreachable,
    LLMModelNotFound,
    LLMRateLimited,
    LLMTimeout,
    RetryPolicy,
)
from apigen_mt.llm.tracing import configure_tracing, run_config, tracing_status, with_trace
from apigen_mt.testing import Fault, OpenAIStubServer, ScriptedChatModel, tool_call

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


@pytest.fixture
def stub():
    with OpenAIStubServer(max_lifetime=60) as server:
        yield server


def runtime(tmp_path: Path | None = None, **kwargs) -> LLMRuntime:
    cache = ResponseCache(tmp_path / "cache.sqlite") if tmp_path is not None else None
    return LLMRuntime(retry=FAST, cache=cache, **kwargs)


def spec(stub: OpenAIStubServer, **kwargs) -> ModelSpec:
    return ModelSpec(model="stub", base_url=stub.base_url, **kwargs)


def dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@tool
def get_order(order_id: str) -> str:
    """Look up an order."""
    return order_id


class Verdict(BaseModel):
    correct: bool
    reason: str


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.rate_limit(0.01), Fault.server_error(500, retry_after=0.01),
                                   Fault.server_error(503), Fault.drop()])
def test_transient_failure_then_success(stub, fault):
    rt = runtime()
    stub.inject(fault)
    stub.add_replies("fine")
    model = make_chat_model(spec(stub), "generator", runtime=rt)
    assert model.invoke("hi").content == "fine"
    assert len(stub.chat_requests) == 2
    (record,) = rt.recorder.records
    assert record.retries == 1 and record.ok and record.role == "generator"


def test_a_run_survives_injected_faults_async(stub):
    rt = runtime()
    # the timeout leaves room for a loaded machine: only the injected delay may exceed it
    faults = [Fault.rate_limit(0.01), Fault.server_error(500, retry_after=0.01), Fault.delay(3.0), Fault.drop(),
              Fault.server_error(502, retry_after=0.01), Fault.rate_limit(0.01)]
    stub.inject(*faults)
    stub.add_replies(*[f"reply {i}" for i in range(12)])
    model = make_chat_model(spec(stub, timeout=1.5, max_retries=4), "user", runtime=rt)

    async def run():
        return await asyncio.gather(*(model.ainvoke(f"turn {i}") for i in range(8)))

    replies = asyncio.run(run())
    assert all(r.content.startswith("reply ") for r in replies)
    records = rt.recorder.records
    assert len(records) == 8 and all(r.ok for r in records)
    assert sum(r.retries for r in records) == len(faults)
    assert len(stub.chat_requests) == 8 + len(faults)


def test_timeouts_exhaust_retries_with_a_clear_error(stub):
    rt = runtime()
    stub.inject(*[Fault.delay(1.0)] * 3)
    model = make_chat_model(spec(stub, timeout=0.2, max_retries=2), "assistant", runtime=rt)
    with pytest.raises(LLMTimeout) as info:
        model.invoke("hi")
    message = str(info.value)
    assert "role assistant" in message and "0.2 s" in message and "3 attempts" in message
    assert "APIGEN_MT_ASSISTANT_TIMEOUT" in message
    (record,) = rt.recorder.records
    assert record.retries == 2 and "LLMTimeout" in record.error
    assert rt.budget.tokens == 0  # a failed call spends nothing


def test_persistent_429_ends_in_rate_limited(stub):
    stub.inject(*[Fault.rate_limit(0.01)] * 2)
    model = make_chat_model(spec(stub, max_retries=1), "reviewer[0]", runtime=runtime())
    with pytest.raises(LLMRateLimited, match="429"):
        model.invoke("hi")


@pytest.mark.parametrize("use_async", [False, True])
def test_unreachable_endpoint_names_the_url(use_async):
    url = dead_url()
    rt = runtime()
    model = make_chat_model(ModelSpec(model="m", base_url=url, max_retries=1), "feedback", runtime=rt)
    with pytest.raises(LLMEndpointUnreachable) as info:
        asyncio.run(model.ainvoke("hi")) if use_async else model.invoke("hi")
    assert url in str(info.value) and "role feedback" in str(info.value)
    assert "refused" in str(info.value).lower() or "failed" in str(info.value).lower()
    assert rt.recorder.records[0].retries == 1


def test_unknown_model_is_a_clear_error_without_retries(stub):
    stub.inject(Fault.status(404, message="The model `gpt-9` does not exist"))
    rt = runtime()
    model = make_chat_model(ModelSpec(model="gpt-9", base_url=stub.base_url), "recombiner", runtime=rt)
    with pytest.raises(LLMModelNotFound) as info:
        model.invoke("hi")
    message = str(info.value)
    assert "'gpt-9'" in message and stub.base_url in message and "/models" in message
    assert len(stub.chat_requests) == 1  # a 404 is not retried


# -- budget ---------------------------------------------------------------------------------------


def test_budget_stops_cleanly_before_the_request(stub):
    rt = runtime(budget=Budget(max_calls=2))
    stub.add_replies("a", "b", "c")
    model = make_chat_model(spec(stub), "generator", runtime=rt)
    assert [model.invoke(str(i)).content for i in range(2)] == ["a", "b"]
    with pytest.raises(BudgetExceeded) as info:
        model.invoke("3")
    assert "2 of 2 LLM calls" in str(info.value) and info.value.kind == "calls"
    assert len(stub.chat_requests) == 2 and rt.budget.exhausted
    with pytest.raises(BudgetExceeded):  # it stays stopped
        model.invoke("4")
    assert len(rt.recorder.records) == 2


def test_token_budget_counts_reservations_in_flight(stub):
    stub.add_replies(*["ok"] * 10)
    # Each call reserves its prompt estimate + max_tokens (50): four fit in 230, a fifth does not.
    rt = runtime(budget=Budget(max_tokens=230))
    model = make_chat_model(spec(stub, max_tokens=50), "user", runtime=rt)

    async def run():
        return await asyncio.gather(*(model.ainvoke("hi") for _ in range(6)), return_exceptions=True)

    results = asyncio.run(run())
    stopped = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(stopped) == 2 and all(r.kind == "tokens" for r in stopped)
    assert len(stub.chat_requests) == 4
    assert rt.budget.tokens <= 230


def test_cache_hits_cost_no_budget(tmp_path, stub):
    rt = runtime(tmp_path, budget=Budget(max_calls=1))
    stub.add_replies("once")
    model = make_chat_model(spec(stub, temperature=0), "assistant", runtime=rt)
    assert model.invoke("same").content == "once"
    assert model.invoke("same").content == "once"
    assert rt.budget.calls == 1


# -- cache -------------------------------------------------------------------------------------------


def test_cache_hit_at_temperature_zero_costs_no_request(tmp_path, stub):
    rt = runtime(tmp_path)
    stub.add_replies("first", "second", "third", "fourth")
    model = make_chat_model(spec(stub, temperature=0), "reviewer[0]", runtime=rt)
    assert model.invoke([HumanMessage("judge this")]).content == "first"
    assert model.invoke([HumanMessage("judge this")]).content == "first"
    assert len(stub.chat_requests) == 1
    assert [r.cache_hit for r in rt.recorder.records] == [False, True]
    # anything that changes the request is a different key: messages, bound params, tools
    assert model.invoke([HumanMessage("judge that")]).content == "second"
    assert model.bind(max_tokens=5).invoke([HumanMessage("judge this")]).content == "third"
    assert model.bind_tools([get_order]).invoke([HumanMessage("judge this")]).content == "fourth"
    assert len(stub.chat_requests) == 4


@pytest.mark.parametrize("streamed", [False, True])
def test_a_cancelled_call_settles_its_reservation_and_is_recorded(stub, streamed):
    """Ctrl-C or a cancelled task (CancelledError is no Exception) must not keep budget nor vanish."""
    rt = runtime(budget=Budget(max_calls=10, max_tokens=100_000))
    model = make_chat_model(spec(stub, max_tokens=1000), "assistant", runtime=rt)
    stub.inject(Fault.delay(5.0))

    async def call():
        if streamed:
            return [chunk async for chunk in model.astream("hi")]
        return await model.ainvoke("hi")

    async def go():
        task = asyncio.create_task(call())
        while not stub.chat_requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    budget = rt.budget.snapshot()
    assert budget["calls"] == 1 and budget["in_flight_tokens"] == 0 and budget["tokens"] == 0
    (record,) = rt.recorder.records
    assert record.error is not None and record.error.startswith("CancelledError") and record.streamed == streamed


def test_rerun_costs_nothing(tmp_path, stub):
    stub.add_replies(tool_call("get_order", {"order_id": "#1"}), {"correct": True, "reason": "ok"})
    first = runtime(tmp_path)
    model = make_chat_model(spec(stub), "assistant", runtime=first)
    call = model.bind_tools([get_order]).invoke("where is #1")
    verdict = model.with_structured_output(Verdict).invoke("judge")
    first.close()
    # a new process would build a new runtime on the same file
    second = runtime(tmp_path)
    model = make_chat_model(spec(stub), "assistant", runtime=second)
    assert model.bind_tools([get_order]).invoke("where is #1").tool_calls == call.tool_calls
    assert model.with_structured_output(Verdict).invoke("judge") == verdict
    assert asyncio.run(model.bind_tools([get_order]).ainvoke("where is #1")).tool_calls == call.tool_calls
    streamed = list(model.bind_tools([get_order]).stream("where is #1"))
    assert sum(streamed[1:], streamed[0]).tool_calls == call.tool_calls
    assert len(stub.chat_requests) == 2
    assert all(r.cache_hit for r in second.recorder.records)
    assert second.report()["calls"]["total"]["prompt_tokens"] == 0  # nothing spent


def test_sampling_roles_are_not_cached(tmp_path, stub):
    rt = runtime(tmp_path)
    stub.add_replies("one", "two")
    model = make_chat_model(spec(stub, temperature=0.7), "user", runtime=rt)
    assert [model.invoke("same").content for _ in range(2)] == ["one", "two"]
    assert managed_info(model).cache is False


def test_stream_is_managed_and_cached(tmp_path, stub):
    rt = runtime(tmp_path)
    stub.inject(Fault.rate_limit(0.01))
    stub.add_replies("a streamed reply")
    model = make_chat_model(spec(stub), "assistant", runtime=rt)
    assert "".join(c.content for c in model.stream("go")) == "a streamed reply"

    async def astream():
        return "".join([c.content async for c in model.astream("go")])

    assert asyncio.run(astream()) == "a streamed reply"
    first, second = rt.recorder.records
    assert (first.retries, first.streamed, first.cache_hit) == (1, True, False)
    assert first.completion_tokens > 0 and second.cache_hit
    assert len(stub.chat_requests) == 2  # the 429 and one reply


def test_corrupt_cache_file(tmp_path, stub, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheCorruptError) as info:
        ResponseCache(path).open()
    assert str(path) in str(info.value) and "delete it" in str(info.value)
    # met during a run instead: logged once, the run goes on uncached, the file is left alone
    rt = LLMRuntime(retry=FAST, cache=ResponseCache(path))
    stub.add_replies("a", "b")
    model = make_chat_model(spec(stub), "assistant", runtime=rt)
    with caplog.at_level(logging.ERROR):
        assert model.invoke("x").content == "a" and model.invoke("x").content == "b"
    assert "delete it" in caplog.text and rt.cache.disabled
    assert path.read_bytes().startswith(b"this is not a database")


# -- accounting and tracing ------------------------------------------------------------------------


def test_accounting_records_tokens_latency_and_trace_fields(stub):
    stub.add_replies("The order shipped yesterday.")
    sink: list = []
    rt = LLMRuntime(retry=FAST, recorder=CallRecorder(sink=sink.append))
    model = make_chat_model(spec(stub), "assistant", runtime=rt)
    config = run_config(run_id="r1", blueprint_id="b7", phase="phase2", attempt=2)
    reply = model.invoke([HumanMessage("where is my order please")], config)
    (record,) = rt.recorder.records
    assert sink == [record]
    assert record.prompt_tokens == reply.usage_metadata["input_tokens"] > 0
    assert record.completion_tokens == reply.usage_metadata["output_tokens"] > 0
    assert record.latency_s > 0 and not record.tokens_estimated and record.model.startswith("stub @ http://127.0.0.1")
    assert dict(record.metadata) == {"run_id": "r1", "blueprint_id": "b7", "phase": "phase2", "attempt": 2}
    body = json.dumps(record.to_json())
    assert "where is my order" not in body  # records carry no message text
    summary = rt.recorder.summary()
    assert summary["by_role"]["assistant"]["calls"] == 1
    assert summary["total"]["completion_tokens"] == record.completion_tokens


def test_every_call_carries_trace_metadata_and_tags_inside_a_graph(stub):
    from langchain_core.callbacks import BaseCallbackHandler
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    seen: list[tuple[dict, list]] = []

    class Spy(BaseCallbackHandler):  # what a LangSmith tracer would receive
        def on_chat_model_start(self, serialized, messages, *, metadata=None, tags=None, **kwargs):
            seen.append((dict(metadata or {}), list(tags or [])))

    class State(TypedDict):
        reply: str

    async def assistant(state: State, config, runtime) -> State:
        llm = await runtime.context.amodel(config, "assistant")
        return {"reply": (await llm.ainvoke("hello", config)).content}

    graph = StateGraph(State, context_schema=RunContext)
    graph.add_node("assistant", assistant)
    graph.add_edge(START, "assistant")
    graph.add_edge("assistant", END)
    settings = Configuration.load(env={}, use_default_file=False, overrides={
        "model": "stub", "base_url": stub.base_url, "cache": False})
    rt = LLMRuntime.from_configuration(settings, retry=FAST)
    config = run_config(run_id="r9", blueprint_id="b3", phase="phase2", attempt=1, configurable=settings.to_configurable())
    stub.add_replies("hi there")
    out = asyncio.run(graph.compile().ainvoke({"reply": ""}, {**config, "callbacks": [Spy()]}, context=RunContext(llm=rt)))
    assert out["reply"] == "hi there"
    ((metadata, tags),) = seen
    assert {k: metadata[k] for k in ("run_id", "blueprint_id", "phase", "attempt", "role")} == {
        "run_id": "r9", "blueprint_id": "b3", "phase": "phase2", "attempt": 1, "role": "assistant"}
    assert {"phase:phase2", "blueprint_id:b3", "role:assistant"} <= set(tags)
    (record,) = rt.recorder.records
    assert record.metadata["langgraph_node"] == "assistant" and record.metadata["blueprint_id"] == "b3"


def test_trace_config_helpers():
    config = run_config(run_id="r1", blueprint_id="b1", phase="phase1", tags=["x"])
    assert config["metadata"] == {"run_id": "r1", "blueprint_id": "b1", "phase": "phase1"}
    assert config["tags"] == ["x", "run_id:r1", "blueprint_id:b1", "phase:phase1"]
    later = with_trace(config, phase="phase2", role="user", attempt=3)
    assert later["metadata"]["phase"] == "phase2" and later["metadata"]["blueprint_id"] == "b1"
    assert "phase:phase1" not in later["tags"] and "phase:phase2" in later["tags"] and "attempt:3" in later["tags"]
    assert config["metadata"]["phase"] == "phase1"  # the base is not modified


def test_tracing_is_off_unless_asked_with_a_key():
    assert not tracing_status({}).enabled
    env = {"LANGSMITH_TRACING": "true"}
    status = configure_tracing(env)
    assert status.requested and not status.enabled and env["LANGSMITH_TRACING"] == "false"
    status = tracing_status({"LANGSMITH_TRACING": "true", "LANGSMITH_API_KEY": SECRET, "LANGSMITH_PROJECT": "p"})
    assert status.enabled and "project p" in status.detail and SECRET not in status.detail


# -- building: local, providers, keys ------------------------------------------------------------------


class FakeEmbedded:
    """Stands in for the embedded server: points "local" at the stub, counts starts."""

    model = "smollm2-135m-instruct"

    def __init__(self, url: str) -> None:
        self.url, self.starts, self.running = url, 0, False

    def start(self):
        self.starts += 0 if self.running else 1
        self.running = True
        return self

    async def astart(self):
        return self.start()

    @property
    def base_url(self) -> str:
        assert self.running, "base_url read before start"
        return self.url


def test_local_model_starts_the_server_lazily_and_caps_tokens(stub):
    server = FakeEmbedded(stub.base_url)
    rt = LLMRuntime(retry=FAST, server=server)
    model = make_chat_model(ModelSpec(model="local", max_tokens=100_000), "generator", runtime=rt)
    assert server.starts == 0  # building starts nothing
    stub.add_replies("hello", "again")
    assert asyncio.run(model.ainvoke("hi")).content == "hello"
    assert model.invoke("hi there").content == "again"
    assert server.starts == 1
    bodies = [r.body for r in stub.chat_requests]
    assert all(b["model"] == "smollm2-135m-instruct" and b["max_completion_tokens"] == LOCAL_MAX_TOKENS for b in bodies)
    assert stub.chat_requests[0].headers["authorization"] == "Bearer local"
    info = managed_info(model.bind_tools([get_order]))
    assert (info.tool_calling, info.model_id) == ("json_schema", "local:smollm2-135m-instruct")


def test_ollama_without_its_package_uses_the_openai_endpoint(stub, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{stub.port}")
    stub.add_replies("from ollama")
    model = make_chat_model(ModelSpec(model="ollama:qwen2.5:7b", max_tokens=64), "user", runtime=runtime())
    assert model.invoke("hi").content == "from ollama"
    body = stub.chat_requests[0].body
    assert body["model"] == "qwen2.5:7b" and body["max_tokens"] == 64


def test_missing_key_or_package_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match=r"\$OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o", "generator")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    if importlib.util.find_spec("langchain_anthropic") is None:
        with pytest.raises(LLMConfigError, match="pip install langchain-anthropic"):
            make_chat_model("anthropic:claude-sonnet-4-5", "reviewer[1]")


def test_no_api_key_is_ever_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_ENDPOINT_KEY", SECRET)
    with OpenAIStubServer(["yes", "no"], api_key=SECRET) as secured:
        config = Configuration.load(env={}, use_default_file=False, overrides={
            "assistant_model": "stub", "assistant_base_url": secured.base_url,
            "assistant_api_key_env": "MY_ENDPOINT_KEY", "cache_path": tmp_path / "cache.sqlite",
            "run_dir": tmp_path,
        })
        rt = LLMRuntime.from_configuration(config, retry=FAST)
        model = rt.role_model(config, "assistant")
        assert model.invoke("q1").content == "yes"  # the key reached the server ...
        assert model.invoke("q1").content == "yes"  # (cached)
        assert asyncio.run(model.ainvoke("q2")).content == "no"
        assert secured.chat_requests[0].headers["authorization"] == f"Bearer {SECRET}"
        rt.close()
    (tmp_path / "config.json").write_text(json.dumps(config.public_dict()))
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(r.to_json()) for r in rt.recorder.records))
    (tmp_path / "report.json").write_text(json.dumps(rt.report()))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 4
    for path in written:  # ... but never to disk (cache included)
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in repr(model) and SECRET not in json.dumps(rt.report())


# -- wrapping any model; the LangGraph entry points ----------------------------------------------------


def test_wrap_a_scripted_model():
    scripted = ScriptedChatModel({"generator": ["bp"], "reviewer[0]": ["yes"]})
    rt = LLMRuntime(retry=FAST, budget=Budget(max_calls=2))
    generator = wrap_chat_model(scripted, "generator", runtime=rt)
    judge = wrap_chat_model(scripted, "reviewer[0]", runtime=rt)
    assert generator.invoke("write").content == "bp"  # keyed by the role metadata
    assert judge.invoke("judge").content == "yes"
    assert [c.key for c in scripted.calls] == ["generator", "reviewer[0]"]  # state stays shared
    with pytest.raises(BudgetExceeded):
        judge.invoke("again")
    assert [r.role for r in rt.recorder.records] == ["generator", "reviewer[0]"]


def test_a_model_that_streams_internally_is_counted_once(stub):
    from langchain_openai import ChatOpenAI

    rt = runtime()
    plain = ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub", streaming=True, max_retries=0)
    model = wrap_chat_model(plain, "assistant", runtime=rt)
    stub.inject(Fault.rate_limit(0.01))
    stub.add_replies("streamed inside invoke")
    assert model.invoke("hi").content == "streamed inside invoke"
    (record,) = rt.recorder.records
    assert record.retries == 1 and record.completion_tokens > 0
    assert model.get_name() == "ChatOpenAI"


def test_a_run_context_resolves_each_role_from_the_runnable_config_once(stub):
    config_obj = Configuration.load(env={}, use_default_file=False, overrides={
        "model": "stub", "base_url": stub.base_url, "reviewers_model": "a,b", "cache": False,
    })
    rt = LLMRuntime.from_configuration(config_obj, retry=FAST)
    context = RunContext(llm=rt)
    config = {"configurable": {**config_obj.to_configurable(), "generator_temperature": 0.3}}
    generator = context.model(config, "generator")
    assert generator is context.model(config, "generator")  # resolved once per run and settings
    assert managed_info(generator).spec.temperature == 0.3
    hotter = context.model({"configurable": {**config["configurable"], "generator_temperature": 0.9}}, "generator")
    assert hotter is not generator and managed_info(hotter).spec.temperature == 0.9  # other settings, other model
    judges = [context.model(config, "reviewers", i) for i in range(asyncio.run(context.areviewer_count(config)))]
    assert context.model(config, "reviewers", 2) is judges[0]  # a larger committee reuses them in turn
    assert [managed_info(j).role for j in judges] == ["reviewer[0]", "reviewer[1]"]
    assert [managed_info(j).spec.model for j in judges] == ["a", "b"]
    stub.add_replies("ok")
    assert judges[1].invoke("x", run_config(phase="phase1")).content == "ok"
    assert stub.chat_requests[0].body["model"] == "b"
    assert rt.recorder.records[0].role == "reviewer[1]"


def test_models_work_across_event_loops_in_one_process(stub):
    """run_phase1 then run_phase2 (two asyncio.run calls) must not share a dead loop's connections."""
    stub.add_replies("one", "two")
    for expected in ("one", "two"):
        model = make_chat_model(spec(stub), "assistant", runtime=runtime())
        assert asyncio.run(model.ainvoke("hi")).content == expected
