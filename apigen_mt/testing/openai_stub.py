"""``OpenAIStubServer``: a tiny OpenAI-compatible HTTP server on 127.0.0.1 for tests.

Point the real client at it (``ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub")``
or ``openai.OpenAI(base_url=stub.base_url)``) to test the whole HTTP path: retries, timeouts,
streaming, tool calls, structured output, error handling.

Endpoints: ``POST /v1/chat/completions`` (plain JSON, or SSE when ``"stream": true``, with a
usage chunk when ``stream_options.include_usage``), Azure OpenAI's
``POST /openai/deployments/<name>/chat/completions`` (the deployment is the model) and
``GET /v1/models``.

Replies come from a script with the items :class:`~apigen_mt.testing.ScriptedChatModel`
takes (str, ``AIMessage``, ``{"content", "tool_calls"}`` dicts, structured data, ``tool_call``
and ``structured`` helpers), plus :class:`Fault` items; a callable item is called with the
request body (a dict) and returns an item. When the request forces one tool (``tool_choice``)
and the reply is JSON data, the reply becomes that tool's call. A dict script keys scripts by
the request's ``model`` (fallback ``"default"``).

Each chat request first takes the next queued fault (``faults=`` / :meth:`inject`), if any;
otherwise the next script item. Faults (see :class:`Fault`): an HTTP error status (429 with
``Retry-After``, 500, 503...), a delay (longer than the client's timeout), a malformed JSON
body, a tool call with invalid JSON arguments, a dropped connection.

Every request is recorded (:attr:`OpenAIStubServer.requests`): method, path, headers, JSON
body, and the fault it got. A request the script cannot answer (exhausted, unknown key, a
callable that raised) gets a 500 with ``x-should-retry: false`` and is listed in ``errors``.

The server listens on loopback only, in daemon threads, stops cleanly on ``stop()`` /
context exit (interrupting delays and closing open connections), and stops itself after
``max_lifetime`` seconds in any case.
"""

from __future__ import annotations

import json
import math
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import AIMessage

from apigen_mt.testing.scripted_model import (
    DEFAULT_KEY,
    _split_chunks,
    count_tokens,
    forced_tool_name,
    message_text,
    to_ai_message,
)

__all__ = ["Fault", "OpenAIStubServer", "RecordedRequest"]

HOST = "127.0.0.1"
_AZURE_ROUTE = re.compile(r"/openai/deployments/([^/]+)/chat/completions")


@dataclass(frozen=True)
class Fault:
    """One injected failure for one chat-completions request. Build with the classmethods."""

    kind: str
    code: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None
    reply: Any = None
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    partial: bool = False

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """An HTTP error with an OpenAI-style error body; ``retry_after`` seconds sets
        ``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms`` (which the openai
        client prefers, so short test delays are honoured)."""
        if not 400 <= code <= 599:
            raise ValueError(f"an error status is 4xx or 5xx, got {code}")
        return cls("status", code=code, retry_after=retry_after, message=message, headers=dict(headers or {}))

    @classmethod
    def rate_limit(cls, retry_after: float = 0.05, message: str | None = None) -> Fault:
        """429 Too Many Requests with Retry-After (default 50 ms, to keep tests fast)."""
        return cls.status(429, retry_after=retry_after, message=message)

    @classmethod
    def server_error(cls, code: int = 500, message: str | None = None, retry_after: float | None = None) -> Fault:
        """A 5xx error (500 by default; 502/503 too). The openai client retries it with
        exponential backoff (0.5 s first) unless ``retry_after`` sets a shorter wait."""
        if not 500 <= code <= 599:
            raise ValueError(f"a server error is 5xx, got {code}")
        return cls.status(code, message=message, retry_after=retry_after)

    @classmethod
    def delay(cls, seconds: float, reply: Any = None) -> Fault:
        """Answer only after ``seconds`` (set it past the client's timeout). After the delay
        the stub sends ``reply`` (a script item) if given, else a 504; the script is not
        consumed either way, so a client retry gets the next scripted reply."""
        return cls("delay", seconds=float(seconds), reply=reply)

    @classmethod
    def malformed_json(cls, body: str = '{"id": "chatcmpl-stub", "object": "chat.completion", "choices": [') -> Fault:
        """A 200 ``application/json`` response whose body is not valid JSON."""
        return cls("malformed_json", body=body)

    @classmethod
    def invalid_tool_arguments(cls, name: str = "tool", arguments: str = '{"arg": ') -> Fault:
        """A well-formed 200 reply with one tool call whose ``arguments`` are not valid JSON."""
        return cls("invalid_tool_arguments", reply={"content": "", "tool_calls": [{"name": name, "arguments": arguments}]})

    @classmethod
    def drop(cls, partial: bool = False) -> Fault:
        """Close the connection without a response (``partial``: after headers and half a body)."""
        return cls("drop", partial=partial)


@dataclass
class RecordedRequest:
    """One HTTP request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """The parsed JSON body (``None`` when absent or not JSON)."""
    raw: bytes
    received_at: float
    fault: str | None = None
    """The fault kind served to this request, if any."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or []) if isinstance(self.body, dict) else []


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, stub: OpenAIStubServer) -> None:
        self.stub = stub
        super().__init__((HOST, stub._requested_port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # the client went away (e.g. it timed out): expected in fault tests
        self.stub._error(f"unexpected stub failure: {exc!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OpenAIStub/1.0"
    timeout = 30  # an idle keep-alive connection frees its thread after this long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet; requests are recorded instead

    def setup(self) -> None:
        super().setup()
        self.server.stub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.stub._track(self.connection, add=False)

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        self._read_and_record()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            stub = self.server.stub
            models = stub.model_names
            self._send_json(
                200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in models]}
            )
        else:
            self._send_error(404, f"no route GET {path}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802
        record = self._read_and_record()
        path = self.path.split("?", 1)[0].rstrip("/")
        deployment = _AZURE_ROUTE.fullmatch(path)
        if path not in ("/v1/chat/completions", "/chat/completions") and deployment is None:
            self._send_error(404, f"no route POST {path}", "invalid_request_error")
            return
        if not self._authorized():
            return
        if not isinstance(record.body, dict) or not isinstance(record.body.get("messages"), list):
            self._send_error(400, "request body must be a JSON object with 'messages'", "invalid_request_error")
            return
        if deployment is not None:  # Azure OpenAI names the model in the path, not the body
            record.body["model"] = record.body.get("model") or deployment.group(1)
        self.server.stub._serve_chat(self, record)

    # -- helpers ---------------------------------------------------------------------------

    def _read_and_record(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        record = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw=raw,
            received_at=time.monotonic(),
        )
        self.server.stub._record(record)
        return record

    def _authorized(self) -> bool:
        key = self.server.stub.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_error(401, "Incorrect API key provided (stub)", "invalid_request_error", code="invalid_api_key")
        return False

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_error(
        self,
        status: int,
        message: str,
        kind: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send_json(status, payload, headers)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    409: "conflict",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
    504: "timeout",
}


class OpenAIStubServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

    ``with OpenAIStubServer(["hello"]) as stub: ChatOpenAI(base_url=stub.base_url, ...)``

    Args:
        script: replies (see the module docstring); a list, or a dict keyed by request model.
        faults: faults served first, one per chat request, before any script item.
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
        latency: seconds to wait before each normal reply.
        stream_chunk_delay: seconds between SSE chunks when streaming.
        max_lifetime: the server stops itself after this many seconds.
        port: 0 (default) picks a free port.
    """

    def __init__(
        self,
        script: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        *,
        faults: Iterable[Fault] = (),
        api_key: str | None = None,
        latency: float = 0.0,
        stream_chunk_delay: float = 0.0,
        max_lifetime: float = 300.0,
        port: int = 0,
    ) -> None:
        script = [] if script is None else script
        if isinstance(script, Mapping):
            self._queues: dict[str | None, deque] = {str(k): deque(v) for k, v in script.items()}
        else:
            self._queues = {None: deque(script)}
        self._faults: deque[Fault] = deque(faults)
        self.api_key = api_key
        self.latency = latency
        self.stream_chunk_delay = stream_chunk_delay
        self.max_lifetime = max_lifetime
        self._requested_port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._connections: set[socket.socket] = set()
        self._chat_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> OpenAIStubServer:
        if self._server is not None:
            raise RuntimeError("OpenAIStubServer already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()
        self._watchdog = threading.Timer(self.max_lifetime, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop serving: interrupt delays, close open connections, free the port. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            watchdog, self._watchdog = self._watchdog, None
            conns = list(self._connections)
        if server is None:
            return
        self._stopping.set()
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.cancel()
        server.shutdown()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OpenAIStubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OpenAIStubServer is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``base_url`` for OpenAI clients."""
        return f"http://{HOST}:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------------

    def add_replies(self, *items: Any, model: str | None = None) -> None:
        """Append script items (for requests naming ``model`` when the script is keyed)."""
        with self._lock:
            key = (model or DEFAULT_KEY) if None not in self._queues else None
            self._queues.setdefault(key, deque()).extend(items)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each is served to one upcoming chat request, before script items."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def model_names(self) -> list[str]:
        keys = [k for k in self._queues if k is not None and k != DEFAULT_KEY]
        return keys or ["stub"]

    def remaining(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values()) + len(self._faults)

    # -- records -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.split("?", 1)[0].rstrip("/").endswith("/chat/completions")]

    @property
    def errors(self) -> list[str]:
        """Requests the script could not answer, and unexpected server failures."""
        with self._lock:
            return list(self._errors)

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def _error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- serving -------------------------------------------------------------------------------------

    def _next(self, body: dict[str, Any]) -> tuple[int, Any, str | None]:
        """(request number, item or fault, error): the next fault, else the next script item."""
        with self._lock:
            self._chat_count += 1
            n = self._chat_count
            if self._faults:
                return n, self._faults.popleft(), None
            if None in self._queues:
                key: str | None = None
            else:
                model = str(body.get("model"))
                key = model if model in self._queues else DEFAULT_KEY
                if key not in self._queues:
                    return n, None, (
                        f"OpenAIStubServer: no script for model {model!r} (scripts: {sorted(self._queues)}) "
                        f"at chat request #{n}"
                    )
            queue = self._queues[key]
            if not queue:
                served = n - 1
                return n, None, (
                    f"OpenAIStubServer: script{'' if key is None else f' {key!r}'} exhausted at chat "
                    f"request #{n} ({served} chat requests served before it, faults included)"
                )
            return n, queue.popleft(), None

    def _serve_chat(self, handler: _Handler, record: RecordedRequest) -> None:
        body: dict[str, Any] = record.body
        n, item, error = self._next(body)
        if error is None and callable(item) and not isinstance(item, (Fault, BaseException)):
            try:
                item = item(body)
            except Exception as exc:  # noqa: BLE001 - reported to the client and in .errors
                error = f"OpenAIStubServer: script callable raised {exc!r} at chat request #{n}"
        if error is not None:
            self._error(error)
            handler._send_error(500, error, "server_error", headers={"x-should-retry": "false"})
            return
        if isinstance(item, BaseException):
            msg = f"{type(item).__name__}: {item}"
            handler._send_error(500, msg, "server_error", headers={"x-should-retry": "false"})
            return
        if isinstance(item, Fault):
            record.fault = item.kind
            self._serve_fault(handler, body, n, item)
            return
        if self.latency and self._stopping.wait(self.latency):
            return
        self._serve_reply(handler, body, n, item)

    def _serve_fault(self, handler: _Handler, body: dict[str, Any], n: int, fault: Fault) -> None:
        if fault.kind == "status":
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers.setdefault("Retry-After", str(max(0, math.ceil(fault.retry_after))))
                headers.setdefault("retry-after-ms", str(max(0, round(fault.retry_after * 1000))))
            kind = _ERROR_TYPES.get(fault.code, "server_error" if fault.code >= 500 else "invalid_request_error")
            message = fault.message or f"stub fault: HTTP {fault.code} on chat request #{n}"
            handler._send_error(fault.code, message, kind, code=kind, headers=headers)
        elif fault.kind == "delay":
            if self._stopping.wait(fault.seconds):
                handler.close_connection = True
                return
            try:
                if fault.reply is not None:
                    self._serve_reply(handler, body, n, fault.reply)
                else:
                    handler._send_error(504, f"stub delay of {fault.seconds}s elapsed", "timeout")
            except OSError:
                handler.close_connection = True  # the client gave up waiting: expected
        elif fault.kind == "malformed_json":
            if body.get("stream"):
                self._start_sse(handler)
                self._write_sse(handler, (fault.body or "{").encode())
                handler.close_connection = True
            else:
                handler._send_bytes(200, (fault.body or "{").encode(), "application/json")
        elif fault.kind == "invalid_tool_arguments":
            self._serve_reply(handler, body, n, fault.reply)
        elif fault.kind == "drop":
            if fault.partial:
                data = json.dumps(self._completion(body, n, to_ai_message("partial", call_index=n))).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[: len(data) // 2])
                handler.wfile.flush()
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:  # pragma: no cover - Fault is built by its classmethods
            handler._send_error(500, f"unknown fault kind {fault.kind!r}", "server_error")

    def _reply_message(self, body: dict[str, Any], n: int, item: Any) -> AIMessage:
        forced = forced_tool_name(body.get("tool_choice"), body.get("tools"))
        return to_ai_message(item, call_index=n, forced_tool=forced)

    def _serve_reply(self, handler: _Handler, body: dict[str, Any], n: int, item: Any) -> None:
        try:
            msg = self._reply_message(body, n, item)
        except (TypeError, ValueError) as exc:
            error = f"OpenAIStubServer: bad script item at chat request #{n}: {exc}"
            self._error(error)
            handler._send_error(500, error, "server_error", headers={"x-should-retry": "false"})
            return
        if body.get("stream"):
            self._stream_reply(handler, body, n, msg)
        else:
            handler._send_json(200, self._completion(body, n, msg))

    # -- OpenAI wire format ------------------------------------------------------------------------

    @staticmethod
    def _tool_calls(msg: AIMessage) -> list[dict[str, Any]]:
        calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
            for c in msg.tool_calls
        ]
        calls += [
            {
                "id": c.get("id"),
                "type": "function",
                "function": {"name": c.get("name"), "arguments": c.get("args") or ""},
            }
            for c in msg.invalid_tool_calls
        ]
        return calls

    @staticmethod
    def _content(msg: AIMessage) -> str:
        return msg.content if isinstance(msg.content, str) else message_text(AIMessage(content=msg.content))

    def _usage(self, body: dict[str, Any], msg: AIMessage) -> dict[str, int]:
        prompt = sum(count_tokens(message_text(m)) for m in body.get("messages") or [] if isinstance(m, dict))
        completion = count_tokens(self._content(msg)) + sum(
            count_tokens(c["function"]["arguments"]) + 1 for c in self._tool_calls(msg)
        )
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], n: int, msg: AIMessage) -> dict[str, Any]:
        calls = self._tool_calls(msg)
        message: dict[str, Any] = {"role": "assistant", "content": self._content(msg) or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": f"chatcmpl-stub-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or "stub"),
            "system_fingerprint": "fp_stub",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}
            ],
            "usage": self._usage(body, msg),
        }

    @staticmethod
    def _start_sse(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True

    @staticmethod
    def _write_sse(handler: _Handler, data: bytes) -> None:
        handler.wfile.write(b"data: " + data + b"\n\n")
        handler.wfile.flush()

    def _stream_reply(self, handler: _Handler, body: dict[str, Any], n: int, msg: AIMessage) -> None:
        base = {
            "id": f"chatcmpl-stub-{n}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(body.get("model") or "stub"),
            "system_fingerprint": "fp_stub",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return json.dumps(
                {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            ).encode()

        calls = self._tool_calls(msg)
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in _split_chunks(self._content(msg), None)]
        for i, call in enumerate(calls):
            events.append(chunk({"tool_calls": [{"index": i, **call}]}))
        events.append(chunk({}, "tool_calls" if calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(json.dumps({**base, "choices": [], "usage": self._usage(body, msg)}).encode())
        events.append(b"[DONE]")
        try:
            self._start_sse(handler)
            for i, data in enumerate(events):
                if i and self.stream_chunk_delay and self._stopping.wait(self.stream_chunk_delay):
                    return
                self._write_sse(handler, data)
        except OSError:
            pass  # the client disconnected mid-stream
