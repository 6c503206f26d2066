"""Structured outputs: parse -> validate -> one repair turn -> a typed failure, never a crash.

Uses :class:`ScriptedChatModel` and the real ``ChatOpenAI`` against :class:`OpenAIStubServer`
(asserting on the recorded HTTP requests). The embedded-model integration test lives in
``test_tool_calling.py`` (it checks a structured result and a tool call together).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from apigen_mt.llm.structured import (
    DEFAULT_MAX_TOKENS,
    FailureKind,
    LongStr,
    ShortStr,
    StructuredOutputError,
    StructuredResult,
    astructured_call,
    bounded,
    load_json_output,
    response_format_for,
    structured_call,
    unbounded_fields,
)
from apigen_mt.testing import Fault, OpenAIStubServer, ScriptedChatModel, structured, tool_call


class Step(BaseModel):
    name: ShortStr
    arguments: dict[str, Any] = Field(default_factory=dict)  # any JSON: left open on purpose


@bounded(ignore=["steps[].arguments"])
class Review(BaseModel):
    """A reviewer's verdict on a task."""

    verdict: Literal["pass", "fail"]
    score: int = Field(ge=0, le=10)
    reasons: list[Annotated[str, Field(max_length=200)]] = Field(max_length=3)
    steps: list[Step] = Field(default_factory=list, max_length=5)


GOOD = {"verdict": "pass", "score": 8, "reasons": ["clear"], "steps": [{"name": "get_order", "arguments": {"id": "1"}}]}
BAD_SCORE = {"verdict": "pass", "score": 42, "reasons": ["clear"]}
MESSAGES = [SystemMessage("You review tasks."), HumanMessage("Review: cancel order #1.")]


def chat(stub: OpenAIStubServer, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub-model", max_retries=0, timeout=10, **kwargs)


def length_error(content: str) -> openai.LengthFinishReasonError:
    completion = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 200, "total_tokens": 201},
    })
    return openai.LengthFinishReasonError(completion=completion)


# ---------------------------------------------------------------------------
# ScriptedChatModel
# ---------------------------------------------------------------------------


def test_valid_first_try():
    model = ScriptedChatModel([GOOD])
    result = structured_call(model, Review, MESSAGES)
    assert isinstance(result, StructuredResult)
    assert result.ok and result.error is None and result.failure is None and result.attempts == 1
    assert isinstance(result.value, Review) and result.value.steps[0].name == "get_order"
    assert result.raw is not None and not result.repaired and result.unwrap() is result.value
    kwargs = model.calls[0].kwargs
    fmt = kwargs["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Review"
    assert "$ref" not in json.dumps(fmt) and fmt["json_schema"]["schema"]["properties"]["reasons"]["maxItems"] == 3
    assert kwargs["max_tokens"] == DEFAULT_MAX_TOKENS
    assert model.calls[0].messages == MESSAGES


def test_invalid_then_repaired_shows_the_validation_error():
    model = ScriptedChatModel([BAD_SCORE, GOOD])
    result = structured_call(model, Review, MESSAGES)
    assert result.ok and result.attempts == 2 and result.repaired
    [failure] = result.failures
    assert failure.kind is FailureKind.VALIDATION and "score" in failure.message
    repair = model.calls[1].messages
    assert repair[: len(MESSAGES)] == MESSAGES
    assert isinstance(repair[-2], AIMessage) and json.loads(repair[-2].content) == BAD_SCORE
    assert isinstance(repair[-1], HumanMessage)
    assert "score: Input should be less than or equal to 10 (got 42)" in repair[-1].content
    assert "https://" not in repair[-1].content


def test_invalid_twice_is_a_typed_failure():
    model = ScriptedChatModel([BAD_SCORE, {"verdict": "maybe", "score": 1, "reasons": []}])
    result = structured_call(model, Review, MESSAGES)
    assert not result.ok and result.value is None and result.attempts == 2
    assert result.failure.kind is FailureKind.VALIDATION and "verdict" in result.error
    assert [f.attempt for f in result.failures] == [1, 2]
    assert result.failure.to_dict()["kind"] == "validation"
    assert result.usage["output_tokens"] > 0
    with pytest.raises(StructuredOutputError) as info:
        result.unwrap()
    assert info.value.failure is result.failure


def test_malformed_json_is_repaired_or_reported():
    model = ScriptedChatModel(['{"verdict": "pass", "score": ', GOOD, "no json here", "[1, 2]"])
    repaired = structured_call(model, Review, MESSAGES)
    failed = structured_call(model, Review, MESSAGES)
    assert repaired.ok and repaired.failures[0].kind is FailureKind.MALFORMED_JSON
    assert "not valid JSON" in model.calls[1].messages[-1].content
    assert not failed.ok and failed.failure.kind is FailureKind.MALFORMED_JSON
    assert failed.failures[0].raw_text == "no json here"


def test_json_in_fences_or_prose_is_accepted():
    model = ScriptedChatModel(["```json\n" + json.dumps(GOOD) + "\n```", "Here you go: " + json.dumps(GOOD) + " Hope it helps."])
    assert structured_call(model, Review, MESSAGES).attempts == 1
    assert structured_call(model, Review, MESSAGES).attempts == 1


def test_no_repair_means_one_call():
    model = ScriptedChatModel([BAD_SCORE])
    result = structured_call(model, Review, MESSAGES, repair=False)
    assert not result.ok and result.attempts == 1 and len(model.calls) == 1


def test_truncation_refusal_and_empty_output_never_raise():
    refusal = AIMessage(content="", additional_kwargs={"refusal": "I can't help with that."})
    model = ScriptedChatModel([length_error('{"verdict": "pa'), refusal, "", AIMessage(content='{"a', response_metadata={"finish_reason": "length"})])
    first = structured_call(model, Review, MESSAGES)
    assert not first.ok and [f.kind for f in first.failures] == [FailureKind.TRUNCATED, FailureKind.REFUSAL]
    assert first.failures[0].raw_text == '{"verdict": "pa'
    assert "more briefly" in model.calls[1].messages[-1].content
    second = structured_call(model, Review, MESSAGES)
    assert [f.kind for f in second.failures] == [FailureKind.EMPTY, FailureKind.TRUNCATED]


def test_transport_and_programming_errors_still_raise():
    with pytest.raises(ConnectionError):
        structured_call(ScriptedChatModel([ConnectionError("down")]), Review, MESSAGES)
    with pytest.raises(TypeError):
        structured_call(ScriptedChatModel([GOOD]), dict, MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        structured_call(ScriptedChatModel([GOOD]), Review, MESSAGES, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        structured_call(ScriptedChatModel([GOOD]), Review, [])


def test_max_tokens_is_capped_by_the_smaller_setting():
    model = ScriptedChatModel([GOOD] * 3)
    structured_call(model.bind(max_tokens=100), Review, MESSAGES)
    structured_call(model.bind(max_tokens=100), Review, MESSAGES, max_tokens=50)
    structured_call(model, Review, MESSAGES, max_tokens=300)
    assert [c.kwargs["max_tokens"] for c in model.calls] == [100, 50, 300]


def test_function_calling_method():
    model = ScriptedChatModel([tool_call("Review", {"verdict": "fail"}), structured(GOOD)])
    result = structured_call(model, Review, MESSAGES, method="function_calling")
    assert result.ok and result.attempts == 2
    first = model.calls[0]
    assert first.tool_names == ["Review"] and first.kwargs["tool_choice"]["function"]["name"] == "Review"
    assert "score: Field required" in model.calls[1].messages[-1].content


def test_async_variant():
    model = ScriptedChatModel({"a": [BAD_SCORE, GOOD], "b": ["nope", "still nope"]})

    async def main():
        return await asyncio.gather(
            astructured_call(model, Review, MESSAGES, config={"tags": ["a"]}),
            astructured_call(model, Review, MESSAGES, config={"tags": ["b"]}),
        )

    first, second = asyncio.run(main())
    assert first.ok and first.attempts == 2
    assert not second.ok and second.failure.kind is FailureKind.MALFORMED_JSON


# ---------------------------------------------------------------------------
# the real ChatOpenAI over HTTP
# ---------------------------------------------------------------------------


def test_chat_openai_json_schema_repair_round_trip():
    with OpenAIStubServer([json.dumps(BAD_SCORE), json.dumps(GOOD)]) as stub:
        result = structured_call(chat(stub, max_tokens=300), Review, MESSAGES)
    assert result.ok and result.value.verdict == "pass" and result.attempts == 2
    first, second = stub.chat_requests
    fmt = first.body["response_format"]
    assert fmt == response_format_for(Review)
    assert fmt["json_schema"]["schema"]["properties"]["steps"]["items"]["properties"]["name"]["maxLength"] == 200
    assert first.body["max_completion_tokens"] == 300
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user"]
    assert json.loads(second.messages[2]["content"]) == BAD_SCORE
    assert "score: Input should be less than or equal to 10" in second.messages[3]["content"]


def test_chat_openai_malformed_content_and_unreadable_body():
    with OpenAIStubServer(["{not json", '{"verdict": "pass",'], faults=[]) as stub:
        failed = structured_call(chat(stub), Review, MESSAGES)
    assert not failed.ok and failed.failure.kind is FailureKind.MALFORMED_JSON and len(stub.chat_requests) == 2
    with OpenAIStubServer([json.dumps(GOOD)], faults=[Fault.malformed_json()]) as stub:
        retried = structured_call(chat(stub), Review, MESSAGES)
    assert retried.ok and retried.failures[0].kind is FailureKind.MALFORMED_RESPONSE
    assert stub.chat_requests[1].messages == stub.chat_requests[0].messages  # nothing to show: plain retry
    with OpenAIStubServer([], faults=[Fault.malformed_json(), Fault.malformed_json()]) as stub:
        broken = structured_call(chat(stub), Review, MESSAGES)
    assert not broken.ok and broken.raw is None and broken.failure.kind is FailureKind.MALFORMED_RESPONSE


def test_chat_openai_function_calling_with_broken_arguments():
    faults = [Fault.invalid_tool_arguments("Review", '{"verdict": ')]
    with OpenAIStubServer([tool_call("Review", GOOD)], faults=faults) as stub:
        result = structured_call(chat(stub), Review, MESSAGES, method="function_calling")
    assert result.ok and result.failures[0].kind is FailureKind.MALFORMED_JSON
    body = stub.chat_requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Review"}}
    assert body["tools"][0]["function"]["parameters"]["properties"]["score"]["maximum"] == 10
    assert stub.chat_requests[1].messages[-2]["content"] == '{"verdict": '


def test_chat_openai_async():
    async def main():
        with OpenAIStubServer([json.dumps(BAD_SCORE), json.dumps(GOOD)]) as stub:
            return await astructured_call(chat(stub), Review, MESSAGES), stub.chat_requests

    result, requests = asyncio.run(main())
    assert result.ok and result.attempts == 2 and len(requests) == 2


# ---------------------------------------------------------------------------
# bounded schemas
# ---------------------------------------------------------------------------


def test_unbounded_fields_lists_open_arrays_strings_maps_and_any():
    class Inner(BaseModel):
        text: str
        code: Literal["a", "b"]
        when: Annotated[str, Field(max_length=10)]

    class Loose(BaseModel):
        title: str
        items: list[Inner]
        tags: Annotated[list[ShortStr], Field(max_length=4)]
        attrs: dict[str, int]
        blob: Any
        note: LongStr | None = None
        count: int = 0

    assert unbounded_fields(Loose) == [
        "title (string without maxLength)",
        "items (array without maxItems)",
        "items[].text (string without maxLength)",
        "attrs (object without maxProperties)",
        "blob (any value)",
    ]
    assert unbounded_fields(Loose, ignore=["items", "attrs", "blob", "title"]) == []
    assert unbounded_fields(Review) == []  # its @bounded ignore list is honoured
    assert unbounded_fields({"type": "array", "items": {"type": "string", "maxLength": 3}}) == ["(root) (array without maxItems)"]


def test_unbounded_fields_handles_recursive_schemas():
    class Node(BaseModel):
        label: ShortStr
        children: list["Node"] = Field(default_factory=list, max_length=3)

    assert unbounded_fields(Node) == []


def test_bounded_decorator_refuses_open_schemas():
    with pytest.raises(TypeError, match="reasons"):
        @bounded
        class Open(BaseModel):
            reasons: list[ShortStr]

    @bounded
    class Closed(BaseModel):
        reasons: list[ShortStr] = Field(max_length=2)

    assert unbounded_fields(Closed) == []


def test_load_json_output_never_evaluates():
    assert load_json_output(' {"a": 1} ') == {"a": 1}
    for text in ["", "   ", "__import__('os')", "{'a': 1}", "1 + 1"]:
        with pytest.raises(ValueError):
            load_json_output(text)
