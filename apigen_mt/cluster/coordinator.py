"""The coordinator: a phase's threads as jobs, run by workers, collected as they finish.

:func:`run_threads_on_cluster` is :func:`~apigen_mt.runner.run_threads` for cluster mode: the
same items in, the same :class:`~apigen_mt.runner.ThreadOutcome` s out (final states read
from the Postgres checkpoints), the same observer calls (``thread_finished``, and the model
calls and finished nodes the workers log, relayed; a node's update as the progress display
reads it). Threads already finished are reused, those running are left alone,
jobs a previous coordinator left waiting are cancelled (they carry its settings), the rest
are queued; so running it again after a crash of the coordinator, a worker
or the database finishes the phase without repeating a finished thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from apigen_mt.cluster.database import Connection, DatabaseError, refusals
from apigen_mt.cluster.jobs import (
    QUEUE, cancel_waiting, defer_thread, domain_fingerprint, make_app, retry_jobs_of, retry_stalled,
)
from apigen_mt.runner import RunObserver, ThreadOutcome

__all__ = ["LocalCluster", "LocalWorkers", "STALLED_AFTER_S", "arun_cluster_phase", "run_threads_on_cluster"]

STALLED_AFTER_S = 10.0
"""Seconds without a heartbeat (every ``HEARTBEAT_S``) after which a worker's running jobs are
retried elsewhere."""
POLL_S = 0.25
MAX_REPLACEMENTS = 3


class LocalWorkers:
    """``apigen-mt worker`` processes on this machine, given the coordinator's configuration
    through their environment (never a file: it names the key variables, not keys, but a base
    URL may carry credentials). They stop when the coordinator does, even when it is killed:
    each watches the pipe on its stdin. One killed by a signal (the OOM killer, a SIGKILL) is
    replaced at once, and the threads it was running are queued again without waiting for its
    heartbeat to go stale (up to ``MAX_REPLACEMENTS`` per worker slot)."""

    def __init__(self, url: str, count: int, concurrency: int, configuration: Any, log_dir: Path | None) -> None:
        self.url, self.count, self.concurrency = url, count, concurrency
        self.configuration = configuration
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        self.replaced = 0

    def start_one(self) -> subprocess.Popen[bytes]:
        from apigen_mt.cluster.worker import CONFIGURATION_ENV

        env = {**os.environ, CONFIGURATION_ENV: self.configuration.model_dump_json()}
        index = len(self.processes)
        name = f"local-{index}-{os.getpid()}"
        out = open(self.log_dir / f"worker-{index}.log", "ab") if self.log_dir is not None else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "apigen_mt", "worker", "--database-url", self.url,
             "--concurrency", str(self.concurrency), "--name", name, "--exit-with-parent"],
            env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        self.processes.append(process)
        self.names.append(name)
        return process

    def __enter__(self) -> LocalWorkers:
        for _ in range(self.count):
            self.start_one()
        return self

    def killed(self) -> list[str]:
        """The names of the workers killed by a signal since the last call, each replaced by a
        new one (while replacements are left)."""
        names = []
        for index, process in enumerate(self.processes):
            if process.returncode is None and process.poll() is not None and process.returncode < 0:
                names.append(self.names[index])
                if self.replaced < MAX_REPLACEMENTS * self.count:
                    self.replaced += 1
                    self.start_one()
        return names

    def failed(self) -> str | None:
        """Why every local worker is gone (when none is left running and one failed), else None."""
        if not self.processes or any(p.poll() is None for p in self.processes):
            return None
        codes = [p.returncode for p in self.processes]
        if all(code == 0 for code in codes):
            return None
        where = f"; their log: {self.log_dir}/worker-*.log" if self.log_dir is not None else ""
        return f"every local worker exited (status {codes}){where}"

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        deadline = time.monotonic() + 40
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            if process.poll() is None:
                process.kill()
                process.wait()


def _finished(db: Connection, thread_ids: Sequence[str]) -> dict[str, str | None]:
    with db.use() as connection:
        rows = connection.execute(
            "SELECT thread_id, error FROM apigen_outcomes WHERE thread_id = ANY(%s)", (list(thread_ids),)
        ).fetchall()
    return dict(rows)


def _queued(db: Connection, thread_ids: Sequence[str]) -> set[str]:
    """The threads with a job waiting or running."""
    with db.use() as connection:
        rows = connection.execute(
            "SELECT args->>'thread_id' FROM procrastinate_jobs WHERE queue_name = %s AND status IN ('todo', 'doing')"
            " AND args->>'thread_id' = ANY(%s)", (QUEUE, list(thread_ids)),
        ).fetchall()
    return {row[0] for row in rows}


def _domain_of(phase: int, request: Mapping[str, Any]) -> str:
    return str(request["domain"] if phase == 1 else request["blueprint"]["domain"])


async def run_threads_on_cluster(
    url: str,
    compiled: Any,
    phase: int,
    items: Sequence[tuple[str, Any]],
    settings: Mapping[str, Any],
    *,
    observer: RunObserver | None = None,
    workers: LocalWorkers | None = None,
    stalled_after: float | None = None,
) -> list[ThreadOutcome]:
    """Queue the unfinished items' threads and wait for all of them; outcomes in item order.

    Stops with :class:`DatabaseError` when a worker refuses the run (another configuration or
    domain: it would make other data) or every local worker died; finished threads are kept."""
    from apigen_mt.domains.registry import get_domain

    stalled_after = STALLED_AFTER_S if stalled_after is None else stalled_after

    thread_ids = [thread_id for thread_id, _ in items]
    fingerprints: dict[str, str] = {}
    outcomes: dict[str, ThreadOutcome] = {}
    app = make_app(url)
    db = Connection(url)  # the polls below, on one connection

    async def collect(done: Mapping[str, str | None]) -> None:
        new = [(thread_id, error) for thread_id, error in done.items() if thread_id not in outcomes]
        snapshots = await asyncio.gather(  # the saver's pool reads them side by side
            *(compiled.aget_state({"configurable": {"thread_id": thread_id}}) for thread_id, _ in new))
        for (thread_id, error), snapshot in zip(new, snapshots):
            values = dict(snapshot.values) if snapshot.values else None
            outcome = ThreadOutcome(thread_id, None if error else values, error, budget_spent=(error or "").startswith("budget: "))
            outcomes[thread_id] = outcome
            if observer is not None:
                observer.thread_finished(outcome)

    async def relay() -> None:
        """The workers' model calls and finished nodes, to the observer (progress, run store)."""
        from apigen_mt.cluster.shared import unrelayed_calls, unrelayed_nodes

        if observer is not None:
            for record in await asyncio.to_thread(unrelayed_calls, db):
                observer.llm_call(record)
            for thread_id, node, summary in await asyncio.to_thread(unrelayed_nodes, db):
                observer.node_finished(thread_id, node, summary)

    async def finished(ids: Sequence[str]) -> dict[str, str | None]:
        """The threads of ``ids`` that finished; what the workers logged up to then relayed first
        (a worker writes a thread's calls and nodes before its outcome)."""
        done = await asyncio.to_thread(_finished, db, ids)
        await relay()
        return done

    try:
        async with app.open_async():
            await cancel_waiting(app)
            await collect(await finished(thread_ids))
            last_check = 0.0
            while len(outcomes) < len(items):
                waiting = [(t, r) for t, r in items if t not in outcomes]
                queued = await asyncio.to_thread(_queued, db, [t for t, _ in waiting])
                # A worker writes a thread's outcome before its job leaves 'doing': asked after the
                # queue, the outcomes hold every thread that left it, so none is queued twice.
                await collect(await finished([t for t, _ in waiting if t not in queued]))
                for thread_id, request in waiting:
                    if thread_id in queued or thread_id in outcomes:
                        continue
                    domain = _domain_of(phase, request)
                    if domain not in fingerprints:
                        fingerprints[domain] = domain_fingerprint(get_domain(domain))
                    await defer_thread(app, phase=phase, thread_id=thread_id, request=request, settings=dict(settings),
                                       domain=domain, fingerprint=fingerprints[domain])
                    if observer is not None:
                        observer.thread_started(thread_id, resumed=False)
                await asyncio.sleep(POLL_S)
                await collect(await finished([t for t, _ in waiting]))
                if workers is not None:
                    for name in workers.killed():
                        await retry_jobs_of(app, url, name)
                if time.monotonic() - last_check > min(2.0, stalled_after / 2):
                    last_check = time.monotonic()
                    await retry_stalled(app, stalled_after)
                    refused = await asyncio.to_thread(refusals, db)
                    if refused:
                        worker, cause = refused[0]
                        raise DatabaseError(f"worker {worker} refused the run: {cause}\nfinished threads are kept: "
                                            "fix or stop that worker, then resume the run")
                    failure = workers.failed() if workers is not None else None
                    if failure is not None:
                        raise DatabaseError(f"{failure}; finished threads are kept: resume the run after fixing the cause")
    finally:
        db.close()
    return [outcomes[thread_id] for thread_id in thread_ids]


def default_workers() -> int:
    """One local worker per core."""
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def cluster_database(run_dir: str | Path | None, database_url: str | None) -> Any:
    """The run's database URL: the one given, else an embedded server in ``run_dir``."""
    from apigen_mt.cluster.database import embedded_database

    if database_url:
        yield database_url
        return
    if run_dir is None:
        raise ValueError("local workers without a database URL need a run directory (its embedded Postgres lives there)")
    with embedded_database(run_dir) as url:
        yield url


def llm_report(url: str) -> dict[str, Any]:
    """The run's model calls, budget and cache, as every worker logged them."""
    from apigen_mt.cluster.shared import SharedBudget, SharedResponseCache, call_records
    from apigen_mt.llm.accounting import CallRecorder

    recorder = CallRecorder()
    for record in call_records(url):
        recorder.record(record)
    budget, cache = SharedBudget(url), SharedResponseCache(url)
    try:
        return {"calls": recorder.summary(), "budget": budget.snapshot(), "cache": {**cache.stats(), "entries": len(cache)}}
    finally:
        budget.close()
        cache.close()


class LocalCluster:
    """The run's database (the URL given, else an embedded server in ``run_dir``), prepared for
    the run, and ``workers`` local workers (default one per core; 0: remote ones only) sharing
    ``concurrency``: opened once for every phase of a run, so a two-phase run starts its
    workers and its embedded server once. The workers start as soon as the run is recorded
    and load while the coordinator prepares its first phase."""

    def __init__(self, configuration: Any, *, run_dir: str | Path | None, database_url: str | None,
                 workers: int | None, concurrency: int) -> None:
        self.count = default_workers() if workers is None else int(workers)
        if self.count < 0:
            raise ValueError(f"workers must be >= 0, not {workers}")
        self.configuration, self.run_dir, self.database_url = configuration, run_dir, database_url
        self.concurrency = concurrency
        self.url = ""
        self.workers: LocalWorkers | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LocalCluster:
        from apigen_mt.cluster.database import prepare_database, run_identity

        with contextlib.ExitStack() as stack:
            self.url = stack.enter_context(cluster_database(self.run_dir, self.database_url))
            identity = run_identity(self.run_dir, self.configuration.public_dict())
            prepare_database(self.url, identity, budget=self.configuration.budget.model_dump())
            log_dir = Path(self.run_dir) / "workers" if self.run_dir is not None else None
            if log_dir is not None:
                log_dir.mkdir(parents=True, exist_ok=True)
            local = LocalWorkers(self.url, self.count, max(1, -(-self.concurrency // max(1, self.count))),
                                 self.configuration, log_dir)
            self.workers = stack.enter_context(local) if self.count else None
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


async def arun_cluster_phase(
    builder: Any,
    phase: int,
    items: Sequence[tuple[str, Any]],
    settings: Mapping[str, Any],
    configuration: Any,
    *,
    run_dir: str | Path | None,
    database_url: str | None,
    workers: int | None,
    concurrency: int,
    observer: RunObserver | None = None,
    stalled_after: float | None = None,
    cluster: LocalCluster | None = None,
) -> tuple[list[ThreadOutcome], dict[str, Any]]:
    """One phase in cluster mode, on ``cluster`` (open, e.g. for both phases of a run) or on a
    :class:`LocalCluster` of its own made from the other arguments; the outcomes and the LLM report."""
    from apigen_mt.cluster.checkpointer import open_postgres_checkpointer

    async with contextlib.AsyncExitStack() as stack:
        if cluster is None:
            made = LocalCluster(configuration, run_dir=run_dir, database_url=database_url, workers=workers,
                                concurrency=concurrency)
            cluster = await asyncio.to_thread(stack.enter_context, made)
        saver = await stack.enter_async_context(open_postgres_checkpointer(cluster.url, setup=True))
        outcomes = await run_threads_on_cluster(
            cluster.url, builder.compile(checkpointer=saver), phase, items, settings, observer=observer,
            workers=cluster.workers, stalled_after=stalled_after,
        )
        return outcomes, await asyncio.to_thread(llm_report, cluster.url)
