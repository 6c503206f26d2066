"""The per-run LLM budget: a ceiling on calls and tokens that stops a run cleanly.

A call first *reserves* its share: one call, and its worst-case tokens (an estimate of the
prompt plus the completion cap ``max_tokens``). If that could take the run past a limit,
:class:`BudgetExceeded` is raised before any request is sent, so a limit is never overrun,
not even by calls running in parallel (their reservations count until they finish). When the
call ends its reservation is replaced by the tokens the provider reported.

Why not LangChain's rate limiter: it paces requests, it does not cap a run's calls and tokens,
and nothing in it reserves a call's worst case before the request is sent.

Once exceeded, the budget stays exhausted: every later call fails the same way, so a run
stops at a consistent point instead of letting small calls slip through. Cache hits never
touch the budget. Thread-safe; nothing here blocks beyond a short lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Budget", "BudgetExceeded", "Reservation"]


class BudgetExceeded(RuntimeError):
    """The run's LLM budget is spent; raised before the call that could exceed it.

    Not retryable. A runner should catch it, finish what it has, and report the run as
    stopped by its budget.
    """

    is_retryable = False

    def __init__(self, kind: str, limit: int, used: int, requested: int, role: str | None = None) -> None:
        self.kind = kind  # "calls" or "tokens"
        self.limit = limit
        self.used = used
        self.requested = requested
        self.role = role
        setting = "max_calls" if kind == "calls" else "max_tokens"
        flag = "--budget-calls" if kind == "calls" else "--budget-tokens"
        who = f" (next call: {role})" if role else ""
        if kind == "calls":
            what = f"{used} of {limit} LLM calls used"
        else:
            what = f"{used} of {limit} tokens used, the next call may need up to {requested}"
        super().__init__(
            f"LLM budget exhausted: {what}{who}. The run stops here; raise budget.{setting} "
            f"({flag} or APIGEN_MT_BUDGET_{setting.upper()}) to go further."
        )


@dataclass
class Reservation:
    """What one in-flight call holds until it settles."""

    tokens: int
    settled: bool = False


class Budget:
    """Limits on calls and tokens for one run (``None``: unlimited)."""

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None) -> None:
        if (max_calls is not None and max_calls < 0) or (max_tokens is not None and max_tokens < 0):
            raise ValueError("budget limits must be >= 0 (or None for unlimited)")
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self._lock = threading.Lock()
        self._calls = 0
        self._tokens = 0
        self._reserved_tokens = 0
        self._exceeded: BudgetExceeded | None = None

    @property
    def limited(self) -> bool:
        return self.max_calls is not None or self.max_tokens is not None

    def reserve(self, tokens: int, role: str | None = None) -> Reservation:
        """Count one call and hold ``tokens`` (its worst case), or raise :class:`BudgetExceeded`."""
        tokens = max(0, int(tokens))
        with self._lock:
            if self._exceeded is not None:
                raise BudgetExceeded(
                    self._exceeded.kind, self._exceeded.limit, self._used(self._exceeded.kind), tokens, role
                )
            if self.max_calls is not None and self._calls + 1 > self.max_calls:
                self._exceeded = BudgetExceeded("calls", self.max_calls, self._calls, 1, role)
                raise self._exceeded
            if self.max_tokens is not None and self._tokens + self._reserved_tokens + tokens > self.max_tokens:
                self._exceeded = BudgetExceeded(
                    "tokens", self.max_tokens, self._tokens + self._reserved_tokens, tokens, role
                )
                raise self._exceeded
            self._calls += 1
            self._reserved_tokens += tokens
            return Reservation(tokens)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Replace the reservation by what the call really used (0 for a failed call)."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._reserved_tokens -= reservation.tokens
            self._tokens += max(0, int(used_tokens))

    def _used(self, kind: str) -> int:
        return self._calls if kind == "calls" else self._tokens + self._reserved_tokens

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    @property
    def tokens(self) -> int:
        with self._lock:
            return self._tokens

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._exceeded is not None

    def snapshot(self) -> dict[str, int | bool | None]:
        """For the run report."""
        with self._lock:
            return {
                "max_calls": self.max_calls,
                "max_tokens": self.max_tokens,
                "calls": self._calls,
                "tokens": self._tokens,
                "in_flight_tokens": self._reserved_tokens,
                "exhausted": self._exceeded is not None,
            }

    def __repr__(self) -> str:
        return f"Budget(calls={self.calls}/{self.max_calls}, tokens={self.tokens}/{self.max_tokens})"
