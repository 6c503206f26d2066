"""Test doubles for LLM code: deterministic, offline, usable in your own pipeline tests.

- :class:`ScriptedChatModel`: a LangChain chat model that replies from a script (text, tool
  calls, structured data, exceptions, or callables reacting to the messages). It supports
  ``bind_tools``, ``with_structured_output`` (json_schema / function_calling / json_mode,
  include_raw), streaming, async, keyed scripts per role/tag/LangGraph node, optional latency,
  ``usage_metadata``, and records every call in ``.calls``.
- :class:`OpenAIStubServer`: an OpenAI-compatible HTTP server on 127.0.0.1 (stdlib only) for
  driving the real ``ChatOpenAI``/``openai`` client path: scripted replies (also as SSE
  streams) plus injected faults (:class:`Fault`: 429 with Retry-After, 5xx, delays past the
  client timeout, malformed JSON, invalid tool-call arguments, dropped connections); it
  records every request in ``.requests``.

Example::

    from apigen_mt.testing import ScriptedChatModel, tool_call

    model = ScriptedChatModel([tool_call("get_order", {"order_id": "#1"}), "Your order shipped."])
    reply = model.bind_tools([get_order]).invoke("where is my order?")
    assert reply.tool_calls[0]["name"] == "get_order"

    with OpenAIStubServer(["hi"], faults=[Fault.rate_limit()]) as stub:
        llm = ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub", max_retries=1)
        assert llm.invoke("hello").content == "hi"
        assert len(stub.chat_requests) == 2
"""

from apigen_mt.testing.openai_stub import Fault, OpenAIStubServer, RecordedRequest
from apigen_mt.testing.scripted_model import (
    ScriptedCall,
    ScriptedChatModel,
    ScriptError,
    ScriptExhaustedError,
    structured,
    tool_call,
)

__all__ = [
    "Fault",
    "OpenAIStubServer",
    "RecordedRequest",
    "ScriptError",
    "ScriptExhaustedError",
    "ScriptedCall",
    "ScriptedChatModel",
    "structured",
    "tool_call",
]
