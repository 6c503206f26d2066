"""LangGraph checkpoints in Postgres (``langgraph-checkpoint-postgres``) on a connection pool.

``AsyncPostgresSaver`` guards every statement with one instance-wide ``asyncio.Lock``
(langchain-ai/langgraph#7259), needed when it is given a single connection but not with a
pool, where each statement takes its own connection: the lock then only serialises a
worker's threads behind one another's round trips. :func:`open_postgres_checkpointer`
replaces it by a semaphore as wide as the pool. ``benchmarks/saver_lock.py`` measures both on
a worker's Phase-1 load (64 threads on one loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["POOL_SIZE", "open_postgres_checkpointer"]

POOL_SIZE = 8


@contextlib.asynccontextmanager
async def open_postgres_checkpointer(url: str, *, pool_size: int = POOL_SIZE, instance_lock: bool = False,
                                     setup: bool = False) -> AsyncIterator[Any]:
    """An ``AsyncPostgresSaver`` on a pool of ``pool_size`` connections (``setup``: create its tables).
    ``instance_lock`` keeps the library's own lock (for measuring what it costs)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        url, min_size=1, max_size=pool_size, open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open(wait=True, timeout=10)
    try:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        if not instance_lock:
            saver.lock = asyncio.Semaphore(pool_size)  # type: ignore[assignment]
        if setup:
            await saver.setup()
        yield saver
    finally:
        await pool.close()
