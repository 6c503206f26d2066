"""The run's job queue (procrastinate): one job per LangGraph thread.

A job's arguments are the thread: its phase, deterministic ``thread_id``, input, the phase's
settings, and the fingerprint of its domain as the coordinator loaded it. Jobs carry
``lock=thread_id`` (procrastinate never runs two jobs with one lock at once: two workers never
run the same thread together) and ``queueing_lock=thread_id`` (a thread waits in the queue at
most once). A worker that stops heartbeating has its running jobs retried by whoever watches
(the coordinator): the thread then resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["HEARTBEAT_S", "QUEUE", "TASK", "cancel_waiting", "defer_thread", "retry_jobs_of", "domain_fingerprint", "make_app", "retry_stalled"]

QUEUE = "apigen_mt"
TASK = "apigen_mt.run_thread"
HEARTBEAT_S = 2.0
"""How often a worker says it is alive; its jobs are retried after ``stalled_after`` seconds of silence."""


def make_app(url: str) -> Any:
    """A procrastinate app on ``url`` (a small pool: the queue's own traffic)."""
    from procrastinate import App, PsycopgConnector

    return App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=3))


def domain_fingerprint(domain: Any) -> str:
    """What a worker's copy of a domain must match: its tools (names, kinds, schemas), policy and
    the requests its users may state (what grounded walks draw)."""
    tools = [(t.name, str(getattr(t.kind, "value", t.kind)), t.parameters) for t in domain.tools]
    stated = dict(getattr(domain, "stated_arguments", None) or {})
    text = json.dumps([domain.name, sorted(tools, key=lambda t: t[0]), domain.policy, stated], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def defer_thread(app: Any, *, phase: int, thread_id: str, request: Any, settings: Any, domain: str,
                       fingerprint: str) -> bool:
    """Queue one thread; False when it already waits in the queue."""
    from procrastinate.exceptions import AlreadyEnqueued

    deferrer = app.configure_task(TASK, queue=QUEUE, lock=thread_id, queueing_lock=thread_id)
    try:
        await deferrer.defer_async(phase=phase, thread_id=thread_id, request=request, settings=settings,
                                   domain=domain, fingerprint=fingerprint)
    except AlreadyEnqueued:
        return False
    return True


async def cancel_waiting(app: Any) -> int:
    """Cancel the jobs still waiting (a previous coordinator's: they carry its settings and
    domain fingerprint); how many. The caller queues its unfinished threads again."""
    jobs = list(await app.job_manager.list_jobs_async(queue=QUEUE, status="todo"))
    cancelled = 0
    for job in jobs:
        cancelled += bool(await app.job_manager.cancel_job_by_id_async(job.id))
    return cancelled


async def retry_jobs_of(app: Any, url: str, worker: str) -> int:
    """Retry at once the running jobs of ``worker``, known to be dead (its attempts that never
    ended, ``apigen_attempts``); how many."""
    import asyncio

    from apigen_mt.cluster.database import connect

    def job_ids() -> list[int]:
        with connect(url) as connection:
            return [row[0] for row in connection.execute(
                "SELECT DISTINCT j.id FROM procrastinate_jobs j JOIN apigen_attempts a ON a.thread_id = j.args->>'thread_id'"
                " WHERE j.queue_name = %s AND j.status = 'doing' AND a.worker = %s AND a.ended IS NULL", (QUEUE, worker),
            )]

    retried = 0
    for job_id in await asyncio.to_thread(job_ids):
        for job in await app.job_manager.list_jobs_async(id=job_id, status="doing"):
            await app.job_manager.retry_job(job)
            retried += 1
    return retried


async def retry_stalled(app: Any, stalled_after: float) -> int:
    """Retry the running jobs of workers silent for ``stalled_after`` seconds; how many."""
    jobs = list(await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after))
    for job in jobs:
        await app.job_manager.retry_job(job)
    if jobs:
        await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=stalled_after)
    return len(jobs)
