"""Drive many graph threads concurrently, with persisted checkpoints, and resume them.

Graphs stay pure (state in, state out); this module owns what is around them: the
checkpointer (SQLite in a run directory, or in memory), one LangGraph thread per work item,
bounded asyncio concurrency, resuming a thread interrupted by Ctrl-C or SIGKILL (only its
unfinished nodes run again), and errors that stop one item, not the run.

    async with open_checkpointer(run_dir) as saver:
        compiled = build_phase1_graph().compile(checkpointer=saver)
        outcomes = await run_threads(compiled, items, config, context=RunContext(...), concurrency=8)

Each item is ``(thread_id, input)``. A thread that already finished is not run again: its
final state is returned as is, so a re-run of the same items costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from apigen_mt.llm.budget import BudgetExceeded
from apigen_mt.llm.tracing import run_config

__all__ = ["CHECKPOINT_FILE", "NullObserver", "Observers", "RunObserver", "ThreadOutcome", "open_checkpointer", "run_thread", "run_threads"]

CHECKPOINT_FILE = "checkpoints.sqlite"
DURABILITY = "async"
"""Checkpoints are written while the next step runs; like "sync", they survive SIGKILL
(a step finished before the kill is kept), at a fraction of the wall time."""


@dataclass
class ThreadOutcome:
    """One thread's end: its final state values, or the error that stopped it."""

    thread_id: str
    values: dict[str, Any] | None
    error: str | None = None
    resumed: bool = False
    reused: bool = False
    budget_spent: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.values is not None


@contextlib.asynccontextmanager
async def open_checkpointer(run_dir: str | Path | None) -> AsyncIterator[Any]:
    """An async SQLite checkpointer in ``run_dir`` (created), or an in-memory one for None."""
    if run_dir is None:
        yield InMemorySaver()
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(run_dir)
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path / CHECKPOINT_FILE)) as connection:
        # WAL with synchronous=NORMAL: a commit no longer waits for fsync, so checkpoints
        # stop dominating the run (measured: 5x less wall time), and a killed process still
        # loses nothing committed; only a power cut may drop the last few checkpoints.
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        coalesced = _CoalescedCommits(connection)
        saver = AsyncSqliteSaver(coalesced)  # type: ignore[arg-type]
        await saver.setup()
        try:
            yield saver
        finally:
            await asyncio.shield(coalesced.flush())


class _CoalescedCommits:
    """An aiosqlite connection whose ``commit()`` returns at once and commits, with every
    checkpoint written meanwhile, a moment later (``COMMIT_DELAY``): many threads' checkpoints
    share one commit instead of each waiting its turn for its own. A SIGKILL may lose the
    last few milliseconds of checkpoints; those steps then run again on resume (their model
    answers come from the cache), which the resume logic already allows for."""

    COMMIT_DELAY = 0.005

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._pending: asyncio.Task[None] | None = None
        self._dirty = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def commit(self) -> None:
        self._dirty = True
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._commit_while_dirty())

    async def _commit_while_dirty(self) -> None:
        # A write that asks for its commit while one is under way is not in that one: the
        # flag makes the loop commit again, so no write waits for the next thread's commit.
        while self._dirty:
            await asyncio.sleep(self.COMMIT_DELAY)
            self._dirty = False
            await self._connection.commit()

    async def flush(self) -> None:
        """Commit everything written so far (at the end of a run, or when it is interrupted)."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending
        await self._connection.commit()


def thread_config(config: RunnableConfig | Mapping[str, Any] | None, thread_id: str) -> RunnableConfig:
    return run_config(base=config, configurable={"thread_id": thread_id})


class RunObserver(Protocol):
    """What a runner tells the world while it runs (progress displays, accounting). Every
    method is called on the event loop: keep them cheap, never blocking I/O."""

    def thread_started(self, thread_id: str, *, resumed: bool) -> None: ...

    def node_finished(self, thread_id: str, node: str, update: Mapping[str, Any]) -> None: ...

    def thread_finished(self, outcome: ThreadOutcome) -> None: ...

    def llm_call(self, record: Any) -> None: ...


class NullObserver:
    """A :class:`RunObserver` that ignores everything: subclass it and override what you need."""

    def thread_started(self, thread_id: str, *, resumed: bool) -> None:
        pass

    def node_finished(self, thread_id: str, node: str, update: Mapping[str, Any]) -> None:
        pass

    def thread_finished(self, outcome: ThreadOutcome) -> None:
        pass

    def llm_call(self, record: Any) -> None:
        pass


class Observers(NullObserver):
    """Several observers as one (e.g. the progress display and the live store)."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def thread_started(self, thread_id: str, *, resumed: bool) -> None:
        for observer in self.observers:
            observer.thread_started(thread_id, resumed=resumed)

    def node_finished(self, thread_id: str, node: str, update: Mapping[str, Any]) -> None:
        for observer in self.observers:
            observer.node_finished(thread_id, node, update)

    def thread_finished(self, outcome: ThreadOutcome) -> None:
        for observer in self.observers:
            observer.thread_finished(outcome)

    def llm_call(self, record: Any) -> None:
        for observer in self.observers:
            observer.llm_call(record)


async def _run_one(
    compiled: Any, thread_id: str, request: Any, config: RunnableConfig | Mapping[str, Any] | None, context: Any,
    observer: RunObserver | None,
) -> ThreadOutcome:
    cfg = thread_config(config, thread_id)
    snapshot = await compiled.aget_state(cfg) if compiled.checkpointer is not None else None
    started = snapshot is not None and bool(snapshot.values)
    # Finished: nothing left to run. A killed step may have saved its writes but not the next
    # checkpoint: then ``next`` is empty too, but its task is still listed (and is resumed).
    if started and not snapshot.next and not snapshot.tasks:
        return ThreadOutcome(thread_id, dict(snapshot.values), reused=True)
    payload = None if started else request
    if observer is None:
        values = await compiled.ainvoke(payload, cfg, context=context, durability=DURABILITY)
        return ThreadOutcome(thread_id, dict(values), resumed=started)
    observer.thread_started(thread_id, resumed=started)
    values = {}
    async for mode, data in compiled.astream(
        payload, cfg, context=context, stream_mode=["updates", "values"], durability=DURABILITY
    ):
        if mode == "values":
            values = data
            continue
        for node, update in (data or {}).items():
            observer.node_finished(thread_id, node, update if isinstance(update, Mapping) else {})
    return ThreadOutcome(thread_id, dict(values), resumed=started)


async def run_thread(
    compiled: Any, thread_id: str, request: Any, config: RunnableConfig | Mapping[str, Any] | None, context: Any,
    observer: RunObserver | None = None,
) -> ThreadOutcome:
    """Run (or resume, or reuse) one thread; an exception becomes the outcome's ``error``."""
    try:
        return await _run_one(compiled, thread_id, request, config, context, observer)
    except BudgetExceeded as exc:
        return ThreadOutcome(thread_id, None, f"budget: {exc}", budget_spent=True)
    except Exception as exc:  # one item's failure must not lose the others
        return ThreadOutcome(thread_id, None, f"{type(exc).__name__}: {exc}")


async def run_threads(
    compiled: Any,
    items: Iterable[tuple[str, Any]],
    config: RunnableConfig | Mapping[str, Any] | None = None,
    *,
    context: Any = None,
    concurrency: int = 8,
    observer: RunObserver | None = None,
) -> list[ThreadOutcome]:
    """Run (or resume, or reuse) one thread per item, at most ``concurrency`` at once.

    An exception in a thread becomes that thread's ``error`` and the others go on; once
    the LLM budget is spent, threads not yet started are not started (their outcome says
    so) and can be resumed later with a larger budget. ``observer`` sees threads start and
    end and every node they finish (e.g. a progress display). ``context`` is the graphs'
    runtime context (live objects: see :mod:`apigen_mt.graphs.context`), or a function
    ``(thread_id, input) -> context`` when items need their own (e.g. models per blueprint).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    gate = asyncio.Semaphore(concurrency)
    stop: list[str] = []

    async def one(thread_id: str, request: Any) -> ThreadOutcome:
        async with gate:
            if stop:
                outcome = ThreadOutcome(thread_id, None, f"not started: {stop[0]}")
            else:
                outcome = await guarded(thread_id, request)
        if observer is not None:
            observer.thread_finished(outcome)
        return outcome

    async def guarded(thread_id: str, request: Any) -> ThreadOutcome:
        try:
            item_context = context(thread_id, request) if callable(context) else context
        except Exception as exc:  # e.g. models that cannot be built for this item
            return ThreadOutcome(thread_id, None, f"{type(exc).__name__}: {exc}")
        outcome = await run_thread(compiled, thread_id, request, config, item_context, observer)
        if outcome.budget_spent:
            stop.append(outcome.error.removeprefix("budget: "))
        return outcome

    return list(await asyncio.gather(*(one(thread_id, request) for thread_id, request in items)))
