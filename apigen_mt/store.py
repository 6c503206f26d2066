"""The run store: one SQLite database per run directory (``store.sqlite``, via sqlite-utils).

Tables, each keyed so that writing the same result twice changes nothing (a resumed run
rewrites what it reuses):

- ``blueprints``: one row per Phase-1 request (id, domain, status, final stage, rounds,
  the blueprint JSON when accepted, the rejection when not, and why it looks like a
  benchmark test task when it does: such blueprints are left out of exports by default);
- ``attempts``: one row per round of a request (stage, reasons, proposer, votes, feedback);
- ``reviews``: one row per judge per committee round (its scores, reflection, suggested
  correction, or the error when it gave no valid review);
- ``trajectories``: one row per Phase-2 conversation (reward, stop cause, counts, the
  record in OpenAI message form);
- ``errors``: items that did not finish (to resume), by phase;
- ``llm_calls``: one row per model call (session, phase, blueprint, role, model, node,
  tokens, latency, cache hit, error): what the run cost, resumed sessions included (a
  call answered from the cache on resume is a cache hit, not paid twice);
- ``events``: what happened to the run (phase started/finished/interrupted, with counts).

Sessions: every ``generate`` / ``resume`` invocation is a session (an id); its call
records and events carry it, so rows of different sessions never overwrite each other.

The store is written by the runner after a phase, never by graph nodes (they stay pure).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

__all__ = ["STORE_FILE", "RunStore", "StoreError"]

STORE_FILE = "store.sqlite"
BUSY_TIMEOUT = 30.0
"""Seconds a write waits for another process's write (the run and a `report` share the file)."""
OPEN_ATTEMPTS = 10


TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...]]] = {
    "blueprints": ({"id": str, "domain": str, "status": str, "stage": str, "rounds": int, "blueprint": str,
                    "rejection": str, "contamination": str}, "id"),
    "attempts": ({"blueprint_id": str, "round": int, "stage": str, "proposer": str, "reasons": str, "data": str},
                 ("blueprint_id", "round")),
    "reviews": ({"blueprint_id": str, "round": int, "judge": int, "correctness": int, "completeness": int,
                 "satisfaction": int, "creativity": int, "reflection": str, "suggested_correction": str, "error": str},
                ("blueprint_id", "round", "judge")),
    "trajectories": ({"id": str, "blueprint_id": str, "attempt": int, "reward": float, "stop": str, "turns": int,
                      "tool_calls": int, "user_turns": int, "duplicate": int, "data": str}, "id"),
    "errors": ({"phase": str, "item": str, "error": str}, ("phase", "item")),
    "llm_calls": ({"session": str, "seq": int, "phase": str, "blueprint_id": str, "role": str, "model": str, "node": str,
                   "prompt_tokens": int, "completion_tokens": int, "latency_s": float, "retries": int, "cache_hit": int,
                   "tokens_estimated": int, "error": str, "started_at": float}, ("session", "seq")),
    "events": ({"session": str, "seq": int, "time": float, "kind": str, "phase": str, "data": str}, ("session", "seq")),
}
"""Each table's columns and primary key (the key that makes writing twice change nothing)."""


class StoreError(RuntimeError):
    """The run directory's store cannot be read (corrupt or not a store)."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class RunStore:
    """Read and write one run directory's results."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / STORE_FILE
        try:
            self.db = sqlite_utils.Database(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT))
            self._open()
        except Exception as error:  # sqlite3.DatabaseError and friends
            raise StoreError(
                f"{self.path} is not a readable run store ({type(error).__name__}: {error}); "
                "move it away to start the store afresh (checkpoints and the LLM cache are separate files)"
            ) from None

    def _open(self) -> None:
        """WAL (readers never block the writer), then the tables. Another process (a `report`
        during a run, a second command) may be opening the same new file: switching the
        journal mode then fails at once with "locked" instead of waiting, so it is retried."""
        for attempt in range(OPEN_ATTEMPTS):
            try:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.db.execute("PRAGMA journal_mode=WAL")
                self._create()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _create(self) -> None:
        for name, (columns, pk) in TABLES.items():
            # if_not_exists: another process (`report` during a run) may create them at the same moment
            self.db[name].create(columns, pk=pk, if_not_exists=True)

    # -- writing -------------------------------------------------------------------------------

    def save_phase1(self, result: Any, *, partial: bool = False) -> None:
        """Upsert a :class:`~apigen_mt.api.Phase1Result` (accepted, rejected, every attempt).
        A whole phase's result replaces the phase's errors; a ``partial`` one (some threads,
        as they finish) replaces only its own items' errors."""
        rows, attempts = [], []
        for blueprint in result.blueprints:
            rounds = result.attempts.get(blueprint["id"], [])
            rows.append({"id": blueprint["id"], "domain": blueprint["domain"], "status": "accepted", "stage": "accepted",
                         "rounds": len(rounds), "blueprint": _json(blueprint), "rejection": None,
                         "contamination": result.contamination.get(blueprint["id"])})
        for rejected in result.rejected:
            rounds = result.attempts.get(rejected["id"], [])
            domain = next((a["proposal"]["domain"] for a in rounds if a.get("proposal")), None)
            rows.append({"id": rejected["id"], "domain": domain, "status": "rejected",
                         "stage": rejected["rejection"].get("stage"), "rounds": len(rounds), "blueprint": None,
                         "rejection": _json(rejected["rejection"]), "contamination": None})
        reviews = []
        for blueprint_id, rounds in result.attempts.items():
            for attempt in rounds:
                attempts.append({"blueprint_id": blueprint_id, "round": attempt["round"], "stage": attempt["stage"],
                                 "proposer": attempt.get("proposer"), "reasons": _json(attempt.get("reasons") or []),
                                 "data": _json(attempt)})
                for entry in attempt.get("reviews") or []:
                    review = entry.get("review") or {}
                    reviews.append({"blueprint_id": blueprint_id, "round": attempt["round"], "judge": entry.get("judge"),
                                    **{k: review.get(k) for k in ("correctness", "completeness", "satisfaction", "creativity",
                                                                  "reflection", "suggested_correction")},
                                    "error": entry.get("error")})
        with self.db.conn:
            self.db["blueprints"].upsert_all(rows, pk="id")
            self.db["attempts"].upsert_all(attempts, pk=("blueprint_id", "round"))
            if reviews:
                self.db["reviews"].upsert_all(reviews, pk=("blueprint_id", "round", "judge"))
            self._save_errors("phase1", result.errors, [row["id"] for row in rows] if partial else None)

    def save_phase2(self, result: Any, *, partial: bool = False) -> None:
        """Upsert a :class:`~apigen_mt.api.Phase2Result` (verified and failed conversations);
        ``partial`` as in :meth:`save_phase1`."""
        rows = []
        for trajectory in [*result.trajectories, *result.failed]:
            rows.append({
                "id": f"{trajectory['blueprint_id']}#{trajectory['attempt']}", "blueprint_id": trajectory["blueprint_id"],
                "attempt": trajectory["attempt"], "reward": trajectory["reward"], "stop": trajectory["stop"],
                "turns": trajectory["turns"], "tool_calls": trajectory["tool_calls"], "user_turns": trajectory["user_turns"],
                "duplicate": int(bool(trajectory.get("duplicate"))), "data": _json(trajectory),
            })
        with self.db.conn:
            self.db["trajectories"].upsert_all(rows, pk="id")
            self._save_errors("phase2", result.errors, [row["blueprint_id"] for row in rows] if partial else None)

    def save_llm_calls(self, session: str, records: Sequence[Any], *, phase: str | None = None, start: int = 0) -> int:
        """Upsert call records (:class:`~apigen_mt.llm.accounting.CallRecord` or their JSON)
        of ``session`` as numbers ``start, start + 1, ...``: writing the same ones again
        changes nothing."""
        rows = []
        for seq, record in enumerate(records, start):
            data = record.to_json() if hasattr(record, "to_json") else dict(record)
            meta = data.get("metadata") or {}
            rows.append({
                "session": session, "seq": seq, "phase": meta.get("phase") or phase, "blueprint_id": meta.get("blueprint_id"),
                "role": data["role"], "model": data["model"], "node": meta.get("langgraph_node"),
                "prompt_tokens": data.get("prompt_tokens", 0), "completion_tokens": data.get("completion_tokens", 0),
                "latency_s": data.get("latency_s", 0.0), "retries": data.get("retries", 0),
                "cache_hit": int(bool(data.get("cache_hit"))), "tokens_estimated": int(bool(data.get("tokens_estimated"))),
                "error": data.get("error"), "started_at": data.get("started_at"),
            })
        if rows:
            with self.db.conn:
                self.db["llm_calls"].upsert_all(rows, pk=("session", "seq"))
        return len(rows)

    def add_event(self, session: str, kind: str, *, phase: str | None = None, **data: Any) -> None:
        """Append one event of ``session`` (e.g. ``finished`` with a phase and its summary)."""
        seq = self.db.execute("SELECT count(*) FROM events WHERE session = ?", [session]).fetchone()[0]
        with self.db.conn:
            self.db["events"].insert({"session": session, "seq": seq, "time": time.time(), "kind": kind, "phase": phase,
                                      "data": _json(data)}, pk=("session", "seq"))

    def events(self) -> list[dict[str, Any]]:
        return [{**row, "data": json.loads(row["data"] or "{}")} for row in self.db["events"].rows_where(order_by="time, seq")]

    def _save_errors(self, phase: str, errors: dict[str, str], finished: Sequence[str] | None = None) -> None:
        """The phase's errors become ``errors`` (``finished`` given: only those items' rows are
        cleared, and ``errors``' own)."""
        if finished is None:
            self.db.execute("DELETE FROM errors WHERE phase = ?", [phase])
        else:
            for item in {*finished, *errors}:
                self.db.execute("DELETE FROM errors WHERE phase = ? AND item = ?", [phase, item])
        if errors:
            self.db["errors"].insert_all([{"phase": phase, "item": k, "error": v} for k, v in errors.items()], pk=("phase", "item"))

    # -- reading -------------------------------------------------------------------------------

    def accepted_blueprints(self, *, include_contaminated: bool = True) -> list[dict[str, Any]]:
        """Accepted blueprints by id; ``include_contaminated=False`` leaves out those flagged
        as near-copies of benchmark test tasks."""
        where = "status = 'accepted'" + ("" if include_contaminated else " AND contamination IS NULL")
        return [json.loads(r["blueprint"]) for r in self.db["blueprints"].rows_where(where, order_by="id")]

    def trajectories(self, *, accepted: bool | None = True, include_contaminated: bool = False) -> Iterator[dict[str, Any]]:
        """Conversations in blueprint order: verified unique ones (default), failed ones
        (``accepted=False``) or all (``None``); those of blueprints flagged as test-set
        contamination only with ``include_contaminated``."""
        clauses = [{True: "reward = 1.0 AND duplicate = 0", False: "reward < 1.0", None: "1"}[accepted]]
        if not include_contaminated:
            clauses.append("blueprint_id NOT IN (SELECT id FROM blueprints WHERE contamination IS NOT NULL)")
        for row in self.db["trajectories"].rows_where(" AND ".join(clauses), order_by="blueprint_id, attempt"):
            yield json.loads(row["data"])

    def counts(self) -> dict[str, Any]:
        count = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "blueprints_accepted": count("SELECT count(*) FROM blueprints WHERE status = 'accepted'"),
            "blueprints_rejected": count("SELECT count(*) FROM blueprints WHERE status = 'rejected'"),
            "trajectories_accepted": count("SELECT count(*) FROM trajectories WHERE reward = 1.0 AND duplicate = 0"),
            "trajectories_failed": count("SELECT count(*) FROM trajectories WHERE reward < 1.0"),
            "errors": count("SELECT count(*) FROM errors"),
            "flagged_as_test_contamination": count("SELECT count(*) FROM blueprints WHERE contamination IS NOT NULL"),
        }
