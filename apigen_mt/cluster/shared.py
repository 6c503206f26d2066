"""What a run's threads share, shared cluster-wide in the run's database.

Each class has the interface of its single-process twin, so the graphs and the LLM layer
take either: :class:`SharedDedupIndex` (:class:`~apigen_mt.tools.dedup.DedupIndex`),
:class:`SharedBudget` (:class:`~apigen_mt.llm.budget.Budget`), :class:`SharedResponseCache`
(:class:`~apigen_mt.llm.cache.ResponseCache`), :func:`call_log_sink` (a
:class:`~apigen_mt.llm.accounting.CallRecorder` sink) and :class:`SharedCoverage`
(:class:`~apigen_mt.tools.coverage.WriteCoverage`).

Atomicity is the database's: budget reservations are one conditional ``UPDATE``; exact
duplicate claims hit a unique constraint; a near-duplicate claim holds a transaction-level
advisory lock while it compares the instruction with every blueprint claimed before (the
similarity is the single-process one, computed here on an incrementally synced copy: the
embedded server has no ``pg_trgm``, and the same measure keeps both modes' results equal);
a coverage pick locks the candidates' rows (``SELECT ... FOR UPDATE``) while it chooses.

Each object holds one connection, used under a lock (sync graph nodes run in worker
threads). A statement is a local round trip (well under a millisecond on one machine).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from apigen_mt.blueprint import blueprint_json
from apigen_mt.cluster.database import Connection, WriteBehind, connect
from apigen_mt.llm.accounting import CallRecord
from apigen_mt.llm.budget import BudgetExceeded, Reservation
from apigen_mt.llm.cache import _decode, _encode
from apigen_mt.runner import NullObserver
from apigen_mt.tools.coverage import GIVE_UP, WriteCoverage
from apigen_mt.tools.dedup import DEFAULT_THRESHOLD, DedupIndex, DuplicateMatch, action_signature

__all__ = ["NodeLog", "SharedBudget", "SharedCoverage", "SharedDedupIndex", "SharedResponseCache", "call_log_sink",
           "call_records", "unrelayed_calls", "unrelayed_nodes"]

DEDUP_LOCK = 7052


# --------------------------------------------------------------------------------- dedup


class SharedDedupIndex:
    """The run's dedup index in ``apigen_dedup``; ``claim`` is atomic across workers."""

    def __init__(self, url: str, threshold: float = DEFAULT_THRESHOLD) -> None:
        self._db = Connection(url)
        self._local = DedupIndex(threshold)  # a copy of the table, synced before each look
        self._seen = 0
        self.threshold = self._local.threshold

    def _sync(self, connection: Any) -> None:
        rows = connection.execute(
            "SELECT seq, blueprint_id, data FROM apigen_dedup WHERE seq > %s ORDER BY seq", (self._seen,)
        ).fetchall()
        for seq, blueprint_id, data in rows:
            self._local.add(blueprint_id, data)
            self._seen = seq

    def __len__(self) -> int:
        with self._db.use() as connection:
            return connection.execute("SELECT count(*) FROM apigen_dedup").fetchone()[0]

    def __contains__(self, blueprint_id: object) -> bool:
        with self._db.use() as connection:
            return connection.execute(
                "SELECT 1 FROM apigen_dedup WHERE blueprint_id = %s", (str(blueprint_id),)
            ).fetchone() is not None

    def find(self, blueprint: Any) -> DuplicateMatch | None:
        with self._db.use() as connection:
            self._sync(connection)
            return self._local.find(blueprint)

    def add(self, blueprint_id: str, blueprint: Any) -> None:
        self.claim(blueprint_id, blueprint)

    def claim(self, blueprint_id: str, blueprint: Any) -> DuplicateMatch | None:
        """The duplicate match (nothing added), else the blueprint is recorded and None."""
        data = dict(blueprint_json(blueprint))
        key = f"{data.get('domain') or ''}\x1f{action_signature(data)}" if data.get("actions") else None
        with self._db.use() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (DEDUP_LOCK,))
            self._sync(connection)
            if str(blueprint_id) in self._local:
                return None
            match = self._local.claim(str(blueprint_id), data)
            if match is not None:
                return match
            connection.execute(
                "INSERT INTO apigen_dedup (blueprint_id, action_key, data) VALUES (%s, %s, %s)",
                (str(blueprint_id), key, json.dumps(data, default=str)),
            )
        return None

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------------- budget


class SharedBudget:
    """The run's call and token limits in ``apigen_budget`` (one row), reserved atomically."""

    def __init__(self, url: str) -> None:
        self._db = Connection(url)
        self._settles = WriteBehind(url, "apigen-budget-settles")
        with self._db.use() as connection:
            self.max_calls, self.max_tokens = connection.execute("SELECT max_calls, max_tokens FROM apigen_budget").fetchone()

    @property
    def limited(self) -> bool:
        return self.max_calls is not None or self.max_tokens is not None

    def reserve(self, tokens: int, role: str | None = None) -> Reservation:
        tokens = max(0, int(tokens))
        if self._take(tokens):  # one statement, atomic by itself
            return Reservation(tokens)
        self._settles.flush()  # this worker's settled calls may free enough: count them first
        with self._db.use() as connection, connection.transaction():
            if self._take(tokens):
                return Reservation(tokens)
            calls, used, exceeded = connection.execute(
                "SELECT calls, tokens + reserved, exceeded FROM apigen_budget FOR UPDATE"
            ).fetchone()
            if exceeded is None:
                over_calls = self.max_calls is not None and calls + 1 > self.max_calls
                exceeded = {"kind": "calls", "limit": self.max_calls} if over_calls else {"kind": "tokens", "limit": self.max_tokens}
                connection.execute("UPDATE apigen_budget SET exceeded = %s", (json.dumps(exceeded),))
        kind = exceeded["kind"]
        raise BudgetExceeded(kind, exceeded["limit"], calls if kind == "calls" else used, 1 if kind == "calls" else tokens, role)

    def _take(self, tokens: int) -> bool:
        with self._db.use() as connection:
            return connection.execute(
                "UPDATE apigen_budget SET calls = calls + 1, reserved = reserved + %(t)s WHERE exceeded IS NULL"
                " AND (max_calls IS NULL OR calls + 1 <= max_calls)"
                " AND (max_tokens IS NULL OR tokens + reserved + %(t)s <= max_tokens) RETURNING calls",
                {"t": tokens},
            ).fetchone() is not None

    async def areserve(self, tokens: int, role: str | None = None) -> Reservation:
        """:meth:`reserve` off the event loop (its round trip would stall every thread of the loop)."""
        import asyncio

        return await asyncio.to_thread(self.reserve, tokens, role)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Written behind (the caller does not wait): until then the worst case stays reserved."""
        if reservation.settled:
            return
        reservation.settled = True
        self._settles.execute(
            "UPDATE apigen_budget SET reserved = reserved - %s, tokens = tokens + %s",
            (reservation.tokens, max(0, int(used_tokens))),
        )

    def flush(self) -> None:
        self._settles.flush()

    def _row(self) -> tuple[int, int, int, Any]:
        self._settles.flush()
        with self._db.use() as connection:
            return connection.execute("SELECT calls, tokens, reserved, exceeded FROM apigen_budget").fetchone()

    @property
    def calls(self) -> int:
        return self._row()[0]

    @property
    def tokens(self) -> int:
        return self._row()[1]

    @property
    def exhausted(self) -> bool:
        return self._row()[3] is not None

    def snapshot(self) -> dict[str, Any]:
        calls, tokens, reserved, exceeded = self._row()
        return {"max_calls": self.max_calls, "max_tokens": self.max_tokens, "calls": calls, "tokens": tokens,
                "in_flight_tokens": reserved, "exhausted": exceeded is not None}

    def close(self) -> None:
        self._settles.close()
        self._db.close()


# --------------------------------------------------------------------------------- cache


class SharedResponseCache:
    """Model replies in ``apigen_cache``: a reply one worker paid for is a hit for every other."""

    def __init__(self, url: str) -> None:
        self._db = Connection(url)
        self.path = "postgres:apigen_cache"
        self.hits = self.misses = self.writes = 0
        self.disabled: str | None = None

    def open(self) -> SharedResponseCache:
        with self._db.use() as connection:
            connection.execute("SELECT 1 FROM apigen_cache LIMIT 1")
        return self

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> Any:
        with self._db.use() as connection:
            row = connection.execute("SELECT value FROM apigen_cache WHERE key = %s", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return _decode(row[0])

    def put(self, key: str, model_id: str, result: Any) -> None:
        with self._db.use() as connection:
            connection.execute(
                "INSERT INTO apigen_cache (key, model, created, value) VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, model_id, time.time(), _encode(result)),
            )
        self.writes += 1

    async def aget(self, key: str) -> Any:
        import asyncio

        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, model_id: str, result: Any) -> None:
        import asyncio

        await asyncio.to_thread(self.put, key, model_id, result)

    def __len__(self) -> int:
        with self._db.use() as connection:
            return connection.execute("SELECT count(*) FROM apigen_cache").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        return {"path": self.path, "hits": self.hits, "misses": self.misses, "writes": self.writes, "disabled": self.disabled}


# --------------------------------------------------------------------------------- call log


def call_log_sink(url: str) -> Any:
    """A :class:`~apigen_mt.llm.accounting.CallRecorder` sink writing each record to ``apigen_calls``,
    behind the call (``sink.flush()`` waits for them; ``sink.close()`` flushes and stops)."""
    writes = WriteBehind(url, "apigen-call-log")

    def sink(record: CallRecord) -> None:
        writes.execute("INSERT INTO apigen_calls (record) VALUES (%s)", (json.dumps(record.to_json(), default=str),))

    sink.flush = writes.flush  # type: ignore[attr-defined]
    sink.close = writes.close  # type: ignore[attr-defined]
    return sink


class NodeLog(NullObserver):
    """A worker's observer: each node a thread finishes, as the progress display reads it
    (:func:`~apigen_mt.progress.progress_summary`), written behind to ``apigen_nodes`` for the
    coordinator to relay."""

    def __init__(self, url: str) -> None:
        self._writes = WriteBehind(url, "apigen-node-log")

    def node_finished(self, thread_id: str, node: str, update: Any) -> None:
        from apigen_mt.progress import progress_summary

        self._writes.execute("INSERT INTO apigen_nodes (thread_id, node, summary) VALUES (%s, %s, %s)",
                             (thread_id, node, json.dumps(progress_summary(node, update), default=str)))

    def flush(self) -> None:
        self._writes.flush()

    def close(self) -> None:
        self._writes.close()


def unrelayed_nodes(db: Connection) -> list[tuple[str, str, dict[str, Any]]]:
    """``(thread_id, node, summary)`` of the nodes no coordinator has relayed yet (marked now), in order."""
    with db.use() as connection:
        rows = connection.execute(
            "UPDATE apigen_nodes SET relayed = true WHERE NOT relayed RETURNING seq, thread_id, node, summary"
        ).fetchall()
    return [(thread_id, node, summary) for _, thread_id, node, summary in sorted(rows, key=lambda row: row[0])]


def _call_record(data: dict[str, Any]) -> CallRecord:
    return CallRecord(**{k: v for k, v in data.items() if k in CallRecord.__dataclass_fields__})


def call_records(url: str) -> list[CallRecord]:
    """Every model call the run's workers logged, in order."""
    with connect(url) as connection:
        rows = connection.execute("SELECT record FROM apigen_calls ORDER BY seq").fetchall()
    return [_call_record(row[0]) for row in rows]


def unrelayed_calls(db: Connection) -> list[CallRecord]:
    """The calls no coordinator has passed on to its run store yet (marked passed on now)."""
    with db.use() as connection:
        rows = connection.execute(
            "UPDATE apigen_calls SET relayed = true WHERE NOT relayed RETURNING seq, record"
        ).fetchall()
    return [_call_record(data) for _, data in sorted(rows, key=lambda row: row[0])]


# --------------------------------------------------------------------------------- coverage


class SharedCoverage:
    """Write-tool coverage counts in ``apigen_coverage``; a claimed pick is atomic across workers."""

    def __init__(self, url: str) -> None:
        self._db = Connection(url)

    def pick(self, rng: random.Random, candidates: Sequence[str], exclude: Iterable[str] = (), *,
             claim: bool = False) -> str | None:
        excluded = set(exclude)
        names = [c for c in dict.fromkeys(candidates) if c not in excluded]
        if not names:
            return None
        with self._db.use() as connection, connection.transaction():
            connection.execute(
                "INSERT INTO apigen_coverage (write) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (names,)
            )
            rows = dict((w, (n, m)) for w, n, m in connection.execute(
                "SELECT write, count, misses FROM apigen_coverage WHERE write = ANY(%s) ORDER BY write FOR UPDATE", (names,)
            ).fetchall())
            left = [c for c in names if not (rows[c][1] >= GIVE_UP and not rows[c][0])]
            if not left:
                return None
            least = min(rows[c][0] for c in left)
            tied = [c for c in left if rows[c][0] == least]
            choice = tied[rng.randrange(len(tied))]
            if claim:
                connection.execute("UPDATE apigen_coverage SET count = count + 1 WHERE write = %s", (choice,))
        return choice

    pick_many = WriteCoverage.pick_many  # k distinct picks, each through this class's pick

    def add(self, writes: Iterable[str]) -> None:
        names = list(writes)
        if names:
            with self._db.use() as connection:
                connection.execute(
                    "INSERT INTO apigen_coverage (write, count) SELECT w, count(*) FROM unnest(%s::text[]) AS w GROUP BY w"
                    " ON CONFLICT (write) DO UPDATE SET count = apigen_coverage.count + EXCLUDED.count", (names,)
                )

    def release(self, write: str) -> None:
        with self._db.use() as connection:
            connection.execute("UPDATE apigen_coverage SET count = count - 1 WHERE write = %s AND count > 0", (write,))

    def missed(self, write: str) -> None:
        with self._db.use() as connection:
            connection.execute(
                "INSERT INTO apigen_coverage (write, misses) VALUES (%s, 1)"
                " ON CONFLICT (write) DO UPDATE SET misses = apigen_coverage.misses + 1", (write,)
            )

    def count(self, write: str) -> int:
        with self._db.use() as connection:
            row = connection.execute("SELECT count FROM apigen_coverage WHERE write = %s", (write,)).fetchone()
        return row[0] if row else 0

    def counts(self) -> dict[str, int]:
        with self._db.use() as connection:
            return dict(connection.execute("SELECT write, count FROM apigen_coverage WHERE count > 0").fetchall())

    def close(self) -> None:
        self._db.close()
