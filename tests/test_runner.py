"""The runner resumes a thread from whatever a kill left in the checkpointer."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from apigen_mt.runner import run_threads


class State(TypedDict, total=False):
    n: int
    status: str


def _graph() -> StateGraph:
    builder = StateGraph(State)
    builder.add_node("double", lambda state: {"n": state["n"] * 2})
    builder.add_node("finish", lambda state: {"status": "accepted"})
    builder.add_edge(START, "double")
    builder.add_edge("double", "finish")
    builder.add_edge("finish", END)
    return builder


class KilledAfterInput(InMemorySaver):
    """Keeps the input checkpoint and every task's writes, drops the later checkpoints: what
    a SIGKILL leaves when the first step's writes were saved but its checkpoint was not."""

    dropping = True

    async def aput(self, config, checkpoint, metadata, new_versions):
        if self.dropping and metadata.get("step", -1) >= 0:
            return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}
        return await super().aput(config, checkpoint, metadata, new_versions)


def test_a_thread_with_saved_writes_but_no_next_checkpoint_is_resumed_not_reused():
    saver = KilledAfterInput()
    compiled = _graph().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t1"}}

    async def scenario():
        await compiled.ainvoke({"n": 21}, config)  # the "killed" run: only the input checkpoint stays
        snapshot = await compiled.aget_state(config)
        assert snapshot.values.get("status") is None and not snapshot.next and snapshot.tasks
        saver.dropping = False
        return await run_threads(compiled, [("t1", {"n": 21})])

    [outcome] = asyncio.run(scenario())
    assert outcome.ok and outcome.resumed and not outcome.reused
    assert outcome.values == {"n": 42, "status": "accepted"}


def test_a_finished_thread_is_reused():
    compiled = _graph().compile(checkpointer=InMemorySaver())

    async def scenario():
        first = await run_threads(compiled, [("t1", {"n": 1})])
        again = await run_threads(compiled, [("t1", {"n": 1})])
        return first, again

    [first], [again] = asyncio.run(scenario())
    assert first.values == again.values == {"n": 2, "status": "accepted"}
    assert again.reused and not first.reused


class SlowCommits:
    """A connection stand-in whose commit takes a while; records which writes each commit covered."""

    def __init__(self):
        self.written, self.committed = [], []

    async def commit(self):
        covered = list(self.written)
        await asyncio.sleep(0.05)
        self.committed.append(covered)


def test_a_write_asking_for_its_commit_during_a_commit_gets_another_one():
    from apigen_mt.runner import _CoalescedCommits

    connection = SlowCommits()
    coalesced = _CoalescedCommits(connection)

    async def scenario():
        connection.written.append("a")
        await coalesced.commit()
        await asyncio.sleep(0.02)  # the first commit is under way
        connection.written.append("b")
        await coalesced.commit()
        await asyncio.sleep(0.2)  # no other write comes: "b" must not wait for one

    asyncio.run(scenario())
    assert connection.committed == [["a"], ["a", "b"]]
