"""`langgraph dev` serves the graphs of langgraph.json offline, and langgraph-sdk drives them.

The server is a real `langgraph dev` process (in-memory runtime, no browser, no reload,
analytics and version check off); its models are real ChatOpenAI clients pointed at the
OpenAI-compatible stub in this process, configured through the run's ``configurable`` the
way Studio sets them. The server's blocking-call detector is on, so a node that blocks the
event loop fails the run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apigen_mt.testing import OpenAIStubServer

from phase1_oracle import PLAN, YES, blueprint_for_prompt

ROOT = Path(__file__).resolve().parent.parent
HAVE_DEV = importlib.util.find_spec("langgraph_api") is not None and importlib.util.find_spec("langgraph_sdk") is not None
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not HAVE_DEV, reason="langgraph-cli[inmem] is not installed (make setup)")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _generator(body: dict) -> dict:
    return blueprint_for_prompt(body["messages"][0]["content"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    cwd = tmp_path_factory.mktemp("langgraph-dev")
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"}
    cli = Path(sys.executable).with_name("langgraph")
    process = subprocess.Popen(
        [str(cli), "dev", "--config", str(ROOT / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port),
         "--no-browser", "--no-reload"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    import urllib.request

    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail("langgraph dev exited:\n" + process.stdout.read()[-4000:])
        try:
            with urllib.request.urlopen(url + "/ok", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("langgraph dev did not start within 90 s")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _configurable(stub: OpenAIStubServer) -> dict:
    return {
        "cache": False,
        "generator_model": "gen", "generator_base_url": stub.base_url,
        "reviewers_model": "rev,rev,rev", "reviewers_base_url": stub.base_url,
        "feedback_model": "fb", "feedback_base_url": stub.base_url,
    }


def test_the_server_lists_every_graph(server):
    from langgraph_sdk import get_client

    async def go():
        client = get_client(url=server)
        return sorted(a["graph_id"] for a in await client.assistants.search())

    assert asyncio.run(go()) == ["phase1", "phase2", "pipeline", "recombine"]


def test_phase1_through_threads_runs_wait_and_runs_stream(server):
    from langgraph_sdk import get_client

    with OpenAIStubServer({"gen": [_generator] * 4, "rev": [YES] * 12, "fb": [PLAN] * 4}, max_lifetime=120) as stub:

        async def go():
            client = get_client(url=server)
            thread = await client.threads.create()
            request = {"domain": "retail", "blueprint_id": "studio-1", "seed": 3, "mode": "llm"}
            config = {"configurable": _configurable(stub)}
            final = await client.runs.wait(thread["thread_id"], "phase1", input=request, config=config)
            state = await client.threads.get_state(thread["thread_id"])
            other = await client.threads.create()
            nodes = []
            async for part in client.runs.stream(
                other["thread_id"], "phase1", input={**request, "blueprint_id": "studio-2", "seed": 4},
                config=config, stream_mode="updates",
            ):
                if part.event == "updates" and isinstance(part.data, dict):
                    nodes += list(part.data)
            return final, state, nodes

        final, state, nodes = asyncio.run(go())
        assert stub.errors == []
    assert final.get("status") == "accepted", json.dumps(final)[:2000]
    assert final["blueprint"]["id"] == "studio-1" and state["values"]["status"] == "accepted"
    for node in ("prepare", "propose", "format_check", "execution_check", "policy_check", "dedup_check", "review", "aggregate", "accept"):
        assert node in nodes


def test_every_run_has_a_budget_of_its_own(server):
    """Two runs with a budget of 4 calls each (one generator call, three judges): each run gets a
    fresh context from the server, so the second is not stopped by the first one's spending."""
    from langgraph_sdk import get_client

    with OpenAIStubServer({"gen": [_generator] * 4, "rev": [YES] * 12, "fb": [PLAN] * 4}, max_lifetime=120) as stub:

        async def go():
            client = get_client(url=server)
            config = {"configurable": {**_configurable(stub), "budget_max_calls": 4}}
            finals = []
            for i in range(2):
                thread = await client.threads.create()
                request = {"domain": "retail", "blueprint_id": f"budget-{i}", "seed": 3 + i, "mode": "llm"}
                finals.append(await client.runs.wait(thread["thread_id"], "phase1", input=request, config=config))
            return finals

        finals = asyncio.run(go())
        assert stub.errors == [] and len(stub.chat_requests) == 8
    assert [f.get("status") for f in finals] == ["accepted", "accepted"], json.dumps(finals)[:2000]


BLUEPRINT = {
    "id": "studio-bp", "domain": "retail",
    "instruction": "You are Mia Moore in zip 94180. You want to know your user id.",
    "actions": [{"name": "find_user_id_by_name_zip", "arguments": {"first_name": "Mia", "last_name": "Moore", "zip": "94180"}}],
    "outputs": ["mia_moore_8366"],
}


def _assistant(body: dict) -> dict:
    if not any(m["role"] == "tool" for m in body["messages"]):
        action = BLUEPRINT["actions"][0]
        return {"content": "", "tool_calls": [{"name": action["name"], "args": action["arguments"], "id": "call_1"}]}
    return {"content": "Your user id is mia_moore_8366."}


def _user(body: dict) -> str:
    own = sum(1 for m in body["messages"] if m["role"] == "assistant")
    return BLUEPRINT["instruction"] if own == 0 else "###STOP###"


def test_phase2_through_runs_wait(server):
    from langgraph_sdk import get_client

    with OpenAIStubServer({"usr": [_user] * 4, "asst": [_assistant] * 4}, max_lifetime=120) as stub:
        configurable = {
            "cache": False, "phase2": {"best_of_n": 1},
            "user_model": "usr", "user_base_url": stub.base_url,
            "assistant_model": "asst", "assistant_base_url": stub.base_url,
        }

        async def go():
            client = get_client(url=server)
            thread = await client.threads.create()
            return await client.runs.wait(thread["thread_id"], "phase2", input={"blueprint": BLUEPRINT},
                                          config={"configurable": configurable})

        final = asyncio.run(go())
        assert stub.errors == []
    assert final.get("status") == "accepted", json.dumps(final)[:2000]
    [trajectory] = final["trajectories"]
    assert trajectory["reward"] == 1.0 and trajectory["tool_calls"] == 1
