"""The run store kept current while a phase runs: every model call, and every blueprint or
conversation as soon as its thread ends, so a long run can be inspected (``apigen-mt
report``) while it goes, and a killed one still holds what it finished and what it cost.

Observers are called on the event loop, where no blocking I/O may happen, so
:class:`LiveStoreWriter` only queues; a daemon thread writes in small batches with its own
store connection. On a clean end (or Ctrl-C) :meth:`close` drains the queue; a SIGKILL
loses at most the last ``interval`` seconds, which a resume writes again (every write is
an idempotent upsert). The runner's own save at the end of a phase stays authoritative.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from apigen_mt.runner import NullObserver, ThreadOutcome

__all__ = ["LiveStoreWriter"]

log = logging.getLogger(__name__)

SaveOutcomes = Callable[[Any, Sequence[ThreadOutcome]], None]
"""``(store, outcomes)``: write some finished threads of a phase (e.g. ``save_phase1(partial=True)``)."""


class LiveStoreWriter(NullObserver):
    """A run observer that writes one session's model calls and finished threads to the store."""

    def __init__(self, run_dir: str | Path, session: str, phase: str, save_outcomes: SaveOutcomes | None = None,
                 *, interval: float = 0.1) -> None:
        self.run_dir = Path(run_dir)
        self.session = session
        self.phase = phase
        self.save_outcomes = save_outcomes
        self.interval = interval
        self.written_calls = 0
        self.failed = False
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outcomes: queue.SimpleQueue[ThreadOutcome] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-store-{phase}", daemon=True)
        self._thread.start()

    def llm_call(self, record: Any) -> None:
        self._calls.put(record)

    def thread_finished(self, outcome: ThreadOutcome) -> None:
        if self.save_outcomes is not None and not outcome.reused:  # a reused thread is stored already
            self._outcomes.put(outcome)

    def _run(self) -> None:
        from apigen_mt.store import RunStore

        store = RunStore(self.run_dir)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                calls, outcomes = _drain(self._calls), _drain(self._outcomes)
                try:
                    if calls:
                        store.save_llm_calls(self.session, calls, phase=self.phase, start=self.written_calls)
                        self.written_calls += len(calls)
                    if outcomes and self.save_outcomes is not None:
                        self.save_outcomes(store, outcomes)
                except Exception as error:  # noqa: BLE001 - the phase's own save at its end still holds
                    if not self.failed:
                        log.warning("live store writes failed (%s: %s); the results are saved when the phase ends",
                                    type(error).__name__, error)
                    self.failed = True
                if stopping:
                    return
        finally:
            store.db.close()

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> LiveStoreWriter:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _drain(items: queue.SimpleQueue[Any]) -> list[Any]:
    drained = []
    while True:
        try:
            drained.append(items.get_nowait())
        except queue.Empty:
            return drained
