"""The LLM response cache: SQLite, keyed by everything that determines a reply.

The key is a SHA-256 over the model's identity (provider + model name, or base URL + name; the
embedded server's port is not part of it), the messages (role, content, tool calls; message
ids are left out because they differ between runs), and every request parameter: temperature,
max tokens, stop, tools, tool_choice, response_format, and whatever else was bound. The same
request gets the same key in every run, so a re-run is answered from disk and costs nothing.

Why not LangChain's ``set_llm_cache``: its key is the serialized model, which holds the base
URL (the embedded server gets a new port every run, so every key would change), and it has no
async-safe corrupt-file handling.

It is used only for deterministic requests (temperature 0, unless a spec says otherwise; see
:meth:`apigen_mt.configuration.ModelSpec.cache_enabled`): caching a sampling role would hand it
the same "sample" every time.

Robustness:
    * A file that is not a usable SQLite database raises :class:`CacheCorruptError` from
      :meth:`ResponseCache.open` / :meth:`check` (what a runner and ``apigen-mt doctor`` call
      before starting), naming the file and saying that deleting it is safe (it only holds
      cached replies). Met first during a call instead, the same message is logged and the
      run goes on uncached. The file is never deleted or rewritten behind the user's back.
    * A database error later in the run (disk full, file damaged meanwhile) switches the cache
      off with one warning: the run goes on uncached rather than failing.
    * Async callers use :meth:`aget` / :meth:`aput`, which run SQLite in a worker thread so
      the event loop never blocks (``langgraph dev`` rejects blocking calls).
    * One connection per cache object, guarded by a lock; WAL mode and a busy timeout let
      several processes share a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_openai_messages, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

__all__ = ["CacheCorruptError", "ResponseCache", "cache_key", "CACHE_HIT_METADATA"]

log = logging.getLogger(__name__)

KEY_VERSION = "apigen-mt-llm-cache-v1"
CACHE_HIT_METADATA = "apigen_mt_cache_hit"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    value TEXT NOT NULL
)
"""


class CacheCorruptError(RuntimeError):
    """The cache file cannot be used; deleting it is safe."""


def _default(value: Any) -> Any:
    """JSON for whatever a request may carry (pydantic classes as response_format, tools...)."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"pydantic": value.__name__, "schema": value.model_json_schema()}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.hex()
    if callable(value):
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            source = ""
        return {"callable": getattr(value, "__qualname__", repr(value)), "source": source}
    return repr(value)


def _messages_for_key(messages: Sequence[BaseMessage]) -> Any:
    try:
        return convert_to_openai_messages(list(messages))
    except Exception:  # noqa: BLE001 - exotic content: fall back to the full dump
        return [message_to_dict(m) for m in messages]


def cache_key(model_id: str, messages: Sequence[BaseMessage], params: Mapping[str, Any]) -> str:
    """The cache key of one request (see the module docstring for what goes in)."""
    payload = {
        "v": KEY_VERSION,
        "model": model_id,
        "messages": _messages_for_key(messages),
        "params": {k: v for k, v in params.items() if not k.startswith("ls_") and v is not None},
    }
    text = json.dumps(payload, sort_keys=True, default=_default, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encode(result: ChatResult) -> str:
    return json.dumps(
        {
            "generations": [
                {"message": message_to_dict(g.message), "generation_info": g.generation_info}
                for g in result.generations
            ],
            "llm_output": result.llm_output,
        },
        default=_default,
        ensure_ascii=False,
    )


def _decode(text: str) -> ChatResult:
    data = json.loads(text)
    generations = []
    for item in data["generations"]:
        message = messages_from_dict([item["message"]])[0]
        message.response_metadata = {**message.response_metadata, CACHE_HIT_METADATA: True}
        generations.append(ChatGeneration(message=message, generation_info=item.get("generation_info")))
    return ChatResult(generations=generations, llm_output=data.get("llm_output"))


class ResponseCache:
    """A SQLite file of model replies. Opened lazily (no I/O in the constructor)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._disabled: str | None = None
        self.hits = 0
        self.misses = 0
        self.writes = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def _corrupt(self, error: Exception) -> CacheCorruptError:
        return CacheCorruptError(
            f"The LLM response cache {self.path} cannot be used ({type(error).__name__}: {error}). "
            f"It only holds cached model replies: delete it (rm '{self.path}') and run again, or "
            "turn the cache off (--no-cache / APIGEN_MT_CACHE=0) or point it elsewhere "
            "(--cache-path / APIGEN_MT_CACHE_PATH)."
        )

    def _connect(self) -> sqlite3.Connection:
        # Called with the lock held.
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CacheCorruptError(
                f"cannot create the directory of the LLM response cache {self.path}: {error}"
            ) from error
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # "not a database" shows here
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # e.g. a file system without shared memory: the default journal works too
            conn.execute(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
            if not {"key", "model", "created", "value"} <= columns:
                raise sqlite3.DatabaseError("table 'responses' has an unexpected layout")
        except sqlite3.DatabaseError as error:
            if conn is not None:
                conn.close()
            raise self._corrupt(error) from error
        self._conn = conn
        return conn

    def open(self) -> ResponseCache:
        """Open (and check) the file now instead of at the first lookup."""
        with self._lock:
            self._connect()
        return self

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> ResponseCache:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def disabled(self) -> str | None:
        """Why the cache switched itself off during the run (None while it works)."""
        return self._disabled

    def _disable(self, error: Exception) -> None:
        if self._disabled is None:
            self._disabled = f"{type(error).__name__}: {error}"
            if isinstance(error, CacheCorruptError):
                log.error("%s The run continues without the cache.", error)
            else:
                log.warning(
                    "LLM response cache %s failed (%s); the run continues without it. If the file "
                    "is damaged, delete it: it only holds cached replies.", self.path, self._disabled,
                )

    # -- sync API ----------------------------------------------------------------------------

    def get(self, key: str) -> ChatResult | None:
        """The cached reply for ``key``, or None. Raises :class:`CacheCorruptError` only when the
        file is unusable from the start."""
        if self._disabled is not None:
            return None
        with self._lock:
            try:
                conn = self._connect()
                row = conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            except CacheCorruptError as error:
                self._disable(error)
                return None
            except sqlite3.DatabaseError as error:
                self._disable(error)
                return None
        if row is None:
            self.misses += 1
            return None
        try:
            result = _decode(row[0])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("ignoring an unreadable cache entry %s… in %s: %s", key[:12], self.path, error)
            self.misses += 1
            return None
        self.hits += 1
        return result

    def put(self, key: str, model_id: str, result: ChatResult) -> None:
        """Store a reply (errors switch the cache off, never fail the call)."""
        if self._disabled is not None:
            return
        try:
            value = _encode(result)
        except (TypeError, ValueError) as error:
            log.warning("not caching a reply of %s: %s", model_id, error)
            return
        with self._lock:
            try:
                conn = self._connect()
                conn.execute(
                    "INSERT OR REPLACE INTO responses (key, model, created, value) VALUES (?, ?, ?, ?)",
                    (key, model_id, time.time(), value),
                )
            except (sqlite3.DatabaseError, CacheCorruptError) as error:
                self._disable(error)
                return
        self.writes += 1

    def __len__(self) -> int:
        with self._lock:
            conn = self._connect()
            return conn.execute("SELECT count(*) FROM responses").fetchone()[0]

    def clear(self) -> None:
        with self._lock:
            self._connect().execute("DELETE FROM responses")

    def check(self) -> str:
        """Integrity check for ``apigen-mt doctor``: a short description, or CacheCorruptError."""
        with self._lock:
            conn = self._connect()
            try:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                count = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
            except sqlite3.DatabaseError as error:
                raise self._corrupt(error) from error
        if verdict != "ok":
            raise self._corrupt(sqlite3.DatabaseError(f"integrity check: {verdict}"))
        return f"{count} cached replies"

    # -- async API: SQLite in a worker thread ------------------------------------------------

    async def aget(self, key: str) -> ChatResult | None:
        if self._disabled is not None:
            return None
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, model_id: str, result: ChatResult) -> None:
        if self._disabled is not None:
            return
        await asyncio.to_thread(self.put, key, model_id, result)

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "disabled": self._disabled,
        }

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, hits={self.hits}, misses={self.misses})"
