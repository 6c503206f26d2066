"""Accounting: one :class:`CallRecord` per model call, for the run report.

Every call a managed model makes (see :mod:`apigen_mt.llm.factory`) lands here: its role,
model, prompt and completion tokens (from the reply's ``usage_metadata``; estimated, and
flagged, when a server reports none), latency, how many retries it took, whether the cache
answered it, and the error if it failed. Records hold no message text and no credentials, so a
run may write them out as they are.

The recorder is shared by every model of a run and by many threads and asyncio tasks at once;
appending is one short lock. An optional ``sink`` sees each record as it is made (a runner may
stream them to a JSONL file); a failing sink is reported once and never breaks a call. The sink
runs inline, also on the event loop for async calls: keep it cheap (append to a list or a
queue, write from elsewhere), never blocking file or network I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CallRecord", "CallRecorder", "usage_of"]

log = logging.getLogger(__name__)

# Run-level metadata copied from a call's RunnableConfig into its record (see tracing.py).
RECORDED_METADATA = ("run_id", "blueprint_id", "phase", "attempt", "langgraph_node")


@dataclass(frozen=True)
class CallRecord:
    """One logical model call (its retries included)."""

    role: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    retries: int = 0
    cache_hit: bool = False
    error: str | None = None
    tokens_estimated: bool = False
    streamed: bool = False
    started_at: float = field(default_factory=time.time)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metadata"] = dict(self.metadata)
        data["total_tokens"] = self.total_tokens
        return data


def usage_of(message: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens from a message's ``usage_metadata``, or None."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


class CallRecorder:
    """Collects :class:`CallRecord` s; thread- and asyncio-safe."""

    def __init__(self, sink: Callable[[CallRecord], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []
        self._sink = sink
        self._sink_failed = False

    def record(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)
        if self._sink is not None:
            try:
                self._sink(record)
            except Exception as error:  # noqa: BLE001 - accounting must never fail a call
                if not self._sink_failed:
                    self._sink_failed = True
                    log.warning("call-record sink failed (%s: %s); records stay in memory", type(error).__name__, error)

    @property
    def records(self) -> list[CallRecord]:
        """A copy of every record so far, in completion order."""
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def summary(self) -> dict[str, Any]:
        """Totals overall and per role and per model: calls, cache hits, errors, retries,
        tokens actually spent (cache hits excluded; their tokens are listed apart), latency."""

        def empty() -> dict[str, Any]:
            return {
                "calls": 0, "cache_hits": 0, "errors": 0, "retries": 0,
                "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
                "latency_s": 0.0, "max_latency_s": 0.0,
            }

        total = empty()
        by_role: dict[str, dict[str, Any]] = {}
        by_model: dict[str, dict[str, Any]] = {}
        for rec in self.records:
            for bucket in (total, by_role.setdefault(rec.role, empty()), by_model.setdefault(rec.model, empty())):
                bucket["calls"] += 1
                bucket["retries"] += rec.retries
                bucket["errors"] += 0 if rec.ok else 1
                if rec.cache_hit:
                    bucket["cache_hits"] += 1
                    bucket["cached_tokens"] += rec.total_tokens
                else:
                    bucket["prompt_tokens"] += rec.prompt_tokens
                    bucket["completion_tokens"] += rec.completion_tokens
                    bucket["latency_s"] += rec.latency_s
                    bucket["max_latency_s"] = max(bucket["max_latency_s"], rec.latency_s)
        for bucket in (total, *by_role.values(), *by_model.values()):
            bucket["latency_s"] = round(bucket["latency_s"], 3)
            bucket["max_latency_s"] = round(bucket["max_latency_s"], 3)
        return {"total": total, "by_role": by_role, "by_model": by_model}
