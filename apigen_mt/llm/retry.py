"""Retries for model calls, and the clear errors a call ends with when retrying cannot help.

Why our own loop instead of the provider client's ``max_retries``: the client's retries are
invisible (accounting must count them), and their policy differs per provider. Managed models
are built with the client's retries off; :func:`call_with_retries` / :func:`acall_with_retries`
retry on 408, 409, 429, 5xx, timeouts and connection errors, with exponential backoff and
jitter, honouring ``Retry-After`` / ``retry-after-ms`` (capped) and ``x-should-retry``.

When retries are exhausted (or the failure is not retryable) :func:`clear_error` turns the
provider's exception into one that says what is wrong and what to do: an unreachable endpoint
(naming the URL), a timeout (naming the limit and the setting that raises it), an unknown model
name (HTTP 404), a rejected API key (naming the variable it came from, never the key). Each
also subclasses the matching ``langchain_core.exceptions`` type, and keeps the original as
``__cause__``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelTimeoutError,
)

__all__ = [
    "RetryPolicy",
    "Failure",
    "classify",
    "call_with_retries",
    "acall_with_retries",
    "clear_error",
    "LLMError",
    "LLMEndpointUnreachable",
    "LLMTimeout",
    "LLMModelNotFound",
    "LLMAuthError",
    "LLMRateLimited",
    "LLMServerError",
    "LLMConfigError",
]

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class LLMError(RuntimeError):
    """A model call failed for a reason retrying did not fix. ``role`` and ``model`` say which."""

    is_retryable = False  # our retries are done

    def __init__(self, message: str, *, role: str | None = None, model: str | None = None,
                 endpoint: str | None = None, attempts: int = 1, status_code: int | None = None) -> None:
        super().__init__(message)
        self.role = role
        self.model = model
        self.endpoint = endpoint
        self.attempts = attempts
        self.status_code = status_code  # the HTTP status, like the provider's own exceptions


class LLMEndpointUnreachable(LLMError, ModelConnectionError):
    """Nothing answers at the endpoint (connection refused, DNS failure, dropped connection)."""

    is_retryable = False


class LLMTimeout(LLMError, ModelTimeoutError):
    is_retryable = False


class LLMModelNotFound(LLMError, ModelNotFoundError):
    """HTTP 404: the server does not know the model name (or the URL path is wrong)."""


class LLMAuthError(LLMError, ModelAuthenticationError):
    """HTTP 401/403: the API key is missing, wrong, or lacks permission."""


class LLMRateLimited(LLMError, ModelRateLimitError):
    is_retryable = False


class LLMServerError(LLMError, ModelAPIError):
    is_retryable = False


class LLMConfigError(LLMError):
    """A model cannot even be built: missing package, missing API key variable, bad spec."""


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt."""

    kind: str  # rate_limit, server, timeout, connection, not_found, auth, bad_request, other
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    message: str = ""


def _headers_of(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_of(exc: BaseException) -> int | None:
    for candidate in (getattr(exc, "status_code", None), getattr(getattr(exc, "response", None), "status_code", None)):
        if isinstance(candidate, int):
            return candidate
    return None


def _api_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", None) or exc)


def _is_timeout(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout",
                         "WriteTimeout", "PoolTimeout", "ModelTimeoutError"}) or isinstance(exc, TimeoutError)


def _is_connection(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"APIConnectionError", "ConnectError", "TransportError", "RemoteProtocolError",
                         "NetworkError", "ModelConnectionError"}) or isinstance(exc, ConnectionError)


def classify(exc: BaseException) -> Failure:
    """Sort an exception from any provider client into a :class:`Failure`."""
    from apigen_mt.llm.budget import BudgetExceeded  # local: budget must not import retry

    if isinstance(exc, (BudgetExceeded, LLMError)):
        return Failure("other", False, message=str(exc))
    if _is_timeout(exc):
        return Failure("timeout", True, message=str(exc))
    status = _status_of(exc)
    if status is not None:
        headers = _headers_of(exc)
        retry_after = _retry_after(headers)
        should = headers.get("x-should-retry") if headers else None
        message = _api_message(exc)
        if status == 429:
            kind = "rate_limit"
        elif status >= 500:
            kind = "server"
        elif status == 404:
            kind = "not_found"
        elif status in (401, 403):
            kind = "auth"
        elif status in (408, 409, 425):
            kind = "server"
        else:
            kind = "bad_request"
        retryable = status in RETRYABLE_STATUS  # not 501/505: retrying cannot change those
        if should == "true":
            retryable = True
        elif should == "false":
            retryable = False
        return Failure(kind, retryable, status, retry_after, message)
    if _is_connection(exc):
        return Failure("connection", True, message=str(exc))
    if isinstance(exc, ModelError):
        return Failure("other", bool(getattr(exc, "is_retryable", False)), message=str(exc))
    return Failure("other", False, message=str(exc))


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n (0-based) waits about
    ``initial_delay * multiplier**n``, scaled by a random factor in [1 - jitter, 1], capped at
    ``max_delay``. A server's Retry-After wins (capped at ``max_retry_after``)."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def delay(self, retry: int, failure: Failure | None = None, rng: random.Random | None = None) -> float:
        rand = (rng or random).random()
        if failure is not None and failure.retry_after is not None:
            # A small jitter on top, so a crowd of clients does not come back in lockstep.
            return min(self.max_retry_after, failure.retry_after) * (1.0 + 0.1 * rand)
        base = min(self.max_delay, self.initial_delay * self.multiplier ** retry)
        return base * (1.0 - self.jitter * rand)


OnRetry = Callable[[int, BaseException, Failure, float], None]


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """``(fn(), retries it took)``; re-raises the last exception with ``.retries`` and
    ``.failure`` attached when attempts run out or the failure is not retryable."""
    retries = 0
    while True:
        try:
            return fn(), retries
        except Exception as exc:
            failure = classify(exc)
            if not failure.retryable or retries >= policy.max_retries:
                _annotate(exc, retries, failure)
                raise
            wait = policy.delay(retries, failure, rng)
            if on_retry is not None:
                on_retry(retries + 1, exc, failure, wait)
            sleep(wait)
            retries += 1


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """The async :func:`call_with_retries` (waits with ``asyncio.sleep``)."""
    retries = 0
    while True:
        try:
            return await fn(), retries
        except Exception as exc:
            failure = classify(exc)
            if not failure.retryable or retries >= policy.max_retries:
                _annotate(exc, retries, failure)
                raise
            wait = policy.delay(retries, failure, rng)
            if on_retry is not None:
                on_retry(retries + 1, exc, failure, wait)
            await asyncio.sleep(wait)
            retries += 1


def _annotate(exc: BaseException, retries: int, failure: Failure) -> None:
    try:
        exc.apigen_retries = retries  # type: ignore[attr-defined]
        exc.apigen_failure = failure  # type: ignore[attr-defined]
    except AttributeError:
        pass


def retries_of(exc: BaseException) -> int:
    return int(getattr(exc, "apigen_retries", 0) or 0)


# ---------------------------------------------------------------------------------------------
# Clear errors
# ---------------------------------------------------------------------------------------------


def clear_error(
    exc: BaseException,
    *,
    role: str,
    model: str,
    endpoint: str,
    timeout: float | None = None,
    key_env: str | None = None,
    local: bool = False,
) -> BaseException:
    """The exception to raise for ``exc`` after retrying: an :class:`LLMError` for the failures
    a user can fix (endpoint, timeout, model name, key, persistent 429/5xx), else ``exc`` itself
    (a bad request, a context overflow, a parsing error keep their own types)."""
    failure = getattr(exc, "apigen_failure", None) or classify(exc)
    attempts = retries_of(exc) + 1
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    who = f"role {role} (model {model!r})"
    where = "the embedded local model server" if local else endpoint
    common = {"role": role, "model": model, "endpoint": endpoint, "attempts": attempts, "status_code": failure.status}
    role_env = f"APIGEN_MT_{role.split('[')[0].upper()}S" if role.startswith("reviewer") else f"APIGEN_MT_{role.upper()}"
    if failure.kind == "connection":
        hint = (
            "It may have crashed; `apigen-mt doctor` starts it and shows its log."
            if local else
            "Is the server running, and is the URL right (host, port, usually ending in /v1)? "
            "`apigen-mt doctor` checks every role."
        )
        return LLMEndpointUnreachable(f"{who}: cannot reach {where} ({tries}: {_root(exc)}). {hint}", **common)
    if failure.kind == "timeout":
        limit = f"within {timeout:g} s" if timeout else "in time"
        return LLMTimeout(
            f"{who}: {where} did not answer {limit} ({tries}). Raise the role's timeout "
            f"({role_env}_TIMEOUT or timeout = ... in the config) or check the server's load.",
            **common,
        )
    if failure.kind == "not_found":
        return LLMModelNotFound(
            f"{who}: {where} does not know this model (HTTP 404: {failure.message}). Check the model "
            f"name (the server lists them at {endpoint.rstrip('/')}/models) and that the URL is the "
            "OpenAI-compatible root (usually ending in /v1).",
            **common,
        )
    if failure.kind == "auth":
        source = f"${key_env}" if key_env else "no API key (none configured: set api_key_env)"
        return LLMAuthError(
            f"{who}: {where} rejected the credentials (HTTP {failure.status}: {failure.message}). "
            f"The key came from {source}; check it is set and valid for this endpoint.",
            **common,
        )
    if failure.kind in ("rate_limit", "server") and not failure.retryable:
        return exc  # e.g. 501 or x-should-retry: false: the server's own error says it best
    if failure.kind == "rate_limit":
        return LLMRateLimited(
            f"{who}: {where} kept answering 429 Too Many Requests ({tries}): {failure.message}. "
            f"Lower the run's concurrency or raise {role_env}_MAX_RETRIES.",
            **common,
        )
    if failure.kind == "server" and failure.status is not None:
        return LLMServerError(
            f"{who}: {where} failed with HTTP {failure.status} ({tries}): {failure.message}",
            **common,
        )
    return exc


def _root(exc: BaseException) -> str:
    """The innermost cause's message (``Connection refused`` rather than ``Connection error.``)."""
    seen = set()
    current: BaseException | None = exc
    last = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        last = current
        current = current.__cause__ or current.__context__
    text = str(last) or type(last).__name__
    return text if last is exc else f"{exc}: {text}"
