"""A worker: takes the run's jobs and runs each one's LangGraph thread, until told to stop.

It runs on any machine that has the run's domains and configuration (checked: the run's
models and budget against this worker's, each job's domain against the coordinator's
fingerprint). Everything it shares with the other workers lives in the database: the
checkpoints, and the run context's dedup index, coverage, budget, answer cache and call log.
A finished thread (kept, rejected, or stopped by an error) leaves a row in
``apigen_outcomes``; a thread whose worker dies is retried elsewhere and resumes from its
last checkpoint. SIGTERM or Ctrl-C: no new job is taken, running ones get
``GRACE_S`` to finish, then stop (the coordinator queues them again).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from apigen_mt.cluster.database import (
    Connection, DatabaseError, NoRunYet, check_run, public_database_url, record_refusal, run_identity,
)
from apigen_mt.cluster.jobs import HEARTBEAT_S, QUEUE, TASK, domain_fingerprint, make_app
from apigen_mt.configuration import Configuration

__all__ = ["CONFIGURATION_ENV", "GRACE_S", "WorkerUnfit", "aserve"]

CONFIGURATION_ENV = "APIGEN_MT_WORKER_CONFIGURATION"
"""A local worker's configuration, as its coordinator resolved it (JSON, in the environment only)."""
GRACE_S = 30.0
FETCH_POLL_S = 0.5
"""How often an idle worker also looks for jobs: a notification sent while it was still starting
to listen is not waited for the default 5 s."""
RUN_POLL_S = 1.0

log = logging.getLogger(__name__)


class WorkerUnfit(RuntimeError):
    """This worker's domain differs from the run's: it stops rather than make other data."""


class _Worker:
    """The live objects of one worker process, made once and shared by its jobs."""

    def __init__(self, url: str, configuration: Configuration, saver: Any, name: str) -> None:
        from apigen_mt.cluster.shared import NodeLog, SharedBudget, SharedCoverage, SharedResponseCache, call_log_sink
        from apigen_mt.graphs.phase1 import build_phase1_graph
        from apigen_mt.graphs.phase2 import build_phase2_graph
        from apigen_mt.llm.accounting import CallRecorder
        from apigen_mt.llm.factory import LLMRuntime

        self.url, self.configuration, self.name = url, configuration, name
        self.call_log, self.budget, self.nodes = call_log_sink(url), SharedBudget(url), NodeLog(url)
        self.runtime = LLMRuntime.from_configuration(
            configuration, recorder=CallRecorder(sink=self.call_log), budget=self.budget,
            cache=SharedResponseCache(url) if configuration.cache.enabled else None,
        )
        self.coverage = SharedCoverage(url)
        self._db = Connection(url)  # the attempts and outcomes
        self.graphs = {1: build_phase1_graph().compile(checkpointer=saver), 2: build_phase2_graph().compile(checkpointer=saver)}
        self._contexts: dict[float, Any] = {}
        self._domains: dict[str, str] = {}

    def context(self, phase: int, settings: dict[str, Any]) -> Any:
        from apigen_mt.cluster.shared import SharedDedupIndex
        from apigen_mt.graphs.context import RunContext
        from apigen_mt.tools.dedup import DEFAULT_THRESHOLD

        threshold = float(settings.get("dedup_threshold") or DEFAULT_THRESHOLD) if phase == 1 else 0.0
        if threshold not in self._contexts:
            index = SharedDedupIndex(self.url, threshold) if phase == 1 else None
            self._contexts[threshold] = RunContext(llm=self.runtime, dedup_index=index, coverage=self.coverage)
        return self._contexts[threshold]

    def check_domain(self, name: str, fingerprint: str) -> None:
        from apigen_mt.domains.registry import get_domain

        if name not in self._domains:
            self._domains[name] = domain_fingerprint(get_domain(name))
        if self._domains[name] != fingerprint:
            raise WorkerUnfit(
                f"worker {self.name}: domain {name!r} here differs from the run's (tools or policy; fingerprint "
                f"{self._domains[name]} here, {fingerprint} in the run): install the run's version of the domain"
            )

    async def run(self, phase: int, thread_id: str, request: Any, settings: dict[str, Any]) -> None:
        from apigen_mt.runner import run_thread

        config = {"configurable": {"apigen_mt": self.configuration, f"phase{phase}": settings},
                  "recursion_limit": 200 if phase == 1 else 1000}
        attempt = await asyncio.to_thread(self._attempt, thread_id)
        outcome = await run_thread(self.graphs[phase], thread_id, request, config, self.context(phase, settings),
                                   self.nodes)
        await asyncio.to_thread(self._record, attempt, thread_id, outcome.error)

    def close(self) -> None:
        """Write what is still behind, then let the connections go."""
        self.call_log.close()
        self.nodes.close()
        self.budget.close()
        self.coverage.close()
        self._db.close()

    def _attempt(self, thread_id: str) -> int:
        """Note who runs ``thread_id`` since when (``apigen_attempts``: which worker ran what)."""
        with self._db.use() as connection:
            return connection.execute("INSERT INTO apigen_attempts (thread_id, worker) VALUES (%s, %s) RETURNING seq",
                                      (thread_id, self.name)).fetchone()[0]

    def _record(self, attempt: int, thread_id: str, error: str | None) -> None:
        # the thread's calls, nodes and settled tokens (written behind) are in before its outcome
        self.call_log.flush()
        self.nodes.flush()
        self.budget.flush()
        with self._db.use() as connection, connection.transaction():
            connection.execute("UPDATE apigen_attempts SET ended = clock_timestamp() WHERE seq = %s", (attempt,))
            connection.execute(
                "INSERT INTO apigen_outcomes (thread_id, error, worker) VALUES (%s, %s, %s) ON CONFLICT (thread_id)"
                " DO UPDATE SET error = EXCLUDED.error, worker = EXCLUDED.worker, finished = now()",
                (thread_id, error, self.name),
            )


def worker_configuration(given: Configuration | None) -> Configuration:
    """A local worker's configuration comes from its coordinator; a remote one resolves its own."""
    text = os.environ.get(CONFIGURATION_ENV)
    if text:
        return Configuration.model_validate_json(text)
    return given if given is not None else Configuration.load()


async def _wait_for_run(url: str, configuration: Configuration, name: str) -> None:
    """Return once the database holds a run this worker fits (workers may start first); refuse
    (recorded for the coordinator, then :class:`DatabaseError`) a run it does not fit."""
    identity = run_identity(None, configuration.public_dict())
    waiting = False
    while True:
        try:
            await asyncio.to_thread(check_run, url, identity)
            return
        except NoRunYet as error:
            if not waiting:
                log.warning("%s; waiting for one", error)
                waiting = True
            await asyncio.sleep(RUN_POLL_S)
        except DatabaseError as error:
            await asyncio.to_thread(record_refusal, url, name, str(error))
            raise


async def aserve(url: str, *, concurrency: int = 8, configuration: Configuration | None = None,
                 name: str | None = None, install_signal_handlers: bool = True) -> None:
    """Take and run the run's jobs until stopped (SIGTERM, Ctrl-C, or a cancelled task)."""
    from apigen_mt.cluster.checkpointer import open_postgres_checkpointer

    configuration = worker_configuration(configuration)
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    await _wait_for_run(url, configuration, name)
    async with open_postgres_checkpointer(url, pool_size=max(2, min(concurrency, 16))) as saver:
        worker = _Worker(url, configuration, saver, name)
        await worker.runtime.aopen()  # the embedded model, if a role uses it, starts at its first call:
        # a worker serves both phases, and a Phase-1 job must not wait for the Phase-2 roles' server
        app = make_app(url)
        unfit: list[WorkerUnfit] = []
        log.info("worker %s: taking jobs from %s (concurrency %d)", name, public_database_url(url), concurrency)

        @app.task(name=TASK, queue=QUEUE)
        async def run_thread_job(*, phase: int, thread_id: str, request: Any, settings: dict[str, Any],
                                 domain: str, fingerprint: str) -> None:
            try:
                worker.check_domain(domain, fingerprint)
            except WorkerUnfit as error:
                if not unfit:
                    await asyncio.to_thread(record_refusal, url, name, str(error))
                unfit.append(error)
                stopping.set()
                raise
            await worker.run(phase, thread_id, request, settings)

        stopping = asyncio.Event()
        try:
            async with app.open_async():
                serving = asyncio.ensure_future(app.run_worker_async(
                    queues=[QUEUE], concurrency=concurrency, name=name, wait=True, delete_jobs="never",
                    install_signal_handlers=install_signal_handlers, update_heartbeat_interval=HEARTBEAT_S,
                    shutdown_graceful_timeout=GRACE_S, listen_notify=True, fetch_job_polling_interval=FETCH_POLL_S,
                ))
                stopper = asyncio.ensure_future(stopping.wait())
                await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not serving.done():
                    serving.cancel()
                    await asyncio.gather(serving, return_exceptions=True)
                stopper.cancel()
                serving.result() if not serving.cancelled() else None
        finally:
            await worker.runtime.aclose()
            await asyncio.to_thread(worker.close)
        if unfit:
            raise DatabaseError(str(unfit[0]))
