"""Model calls into the run store while the run goes on, so a killed run still says what
it cost.

Call records arrive on the event loop (see :mod:`apigen_mt.llm.accounting`), where no
blocking I/O may happen, so :class:`CallLogWriter` only queues them; a daemon thread
writes them in small batches with its own store connection. On a clean end (or Ctrl-C)
:meth:`close` drains the queue; a SIGKILL loses at most the last ``interval`` seconds.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

from apigen_mt.runner import NullObserver

__all__ = ["CallLogWriter"]


class CallLogWriter(NullObserver):
    """A run observer that appends every model call of one session and phase to the store."""

    def __init__(self, run_dir: str | Path, session: str, phase: str, *, interval: float = 0.1) -> None:
        self.run_dir = Path(run_dir)
        self.session = session
        self.phase = phase
        self.interval = interval
        self.written = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"call-log-{phase}", daemon=True)
        self._thread.start()

    def llm_call(self, record: Any) -> None:
        self._queue.put(record)

    def _run(self) -> None:
        from apigen_mt.store import RunStore

        store = RunStore(self.run_dir)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                batch = []
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if batch:
                    store.save_llm_calls(self.session, batch, phase=self.phase, start=self.written)
                    self.written += len(batch)
                if stopping:
                    return
        finally:
            store.db.close()

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> CallLogWriter:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
