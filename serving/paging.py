"""Page the on-call engineer: post an incident event to a PagerDuty/Opsgenie-style webhook.

``Pager.page`` sends one event and retries with exponential backoff when the
receiver cannot take it right now (connection errors, timeouts, 5xx, 429 with
its ``Retry-After`` honoured); any other 4xx means the event itself is wrong, so
it is not retried. A page that never got through is recorded (one line in an
append-only JSONL log and the ``nightdesk_page_failures`` counter) and returned
as a ``PageResult``: paging never raises into the request that asked for it.

``BackgroundPager`` runs the same on one worker thread, so a request that
decides to page answers at once; its queue is bounded, and a page refused
because the queue is full is recorded like any other failure.

The event (PagerDuty Events API v2 shape; Opsgenie and most incident tools
accept it through their generic webhook integrations)::

    {"routing_key": "...", "event_action": "trigger", "dedup_key": "<ticket id>",
     "payload": {"summary": "...", "severity": "critical", "source": "nightdesk",
                 "custom_details": {...}}}

``dedup_key`` is the ticket id, so paging again for the same ticket (a reassessment,
a retry after a timeout whose first attempt did arrive) updates one incident
instead of opening a second.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

__all__ = ["BackgroundPager", "PageRequest", "PageResult", "Pager", "build_event", "pager_from_settings"]

logger = logging.getLogger(__name__)

#: Where failed pages are logged, relative to NIGHTDESK_HOME.
FAILURE_LOG_IN_HOME: Final[str] = "paging/failures.jsonl"
_RETRY_STATUSES: Final[frozenset[int]] = frozenset({429})  # plus every 5xx
_MAX_SUMMARY_CHARS: Final[int] = 1024  # PagerDuty truncates longer summaries


class PageRequest(BaseModel):
    """What to page about: one ticket."""

    ticket_id: str = Field(min_length=1, max_length=255)
    summary: str = Field(min_length=1)
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    source: str = "nightdesk"
    custom_details: dict[str, Any] = Field(default_factory=dict)


class PageAttempt(BaseModel):
    status_code: int | None = None  # None: no HTTP answer (connection error, timeout)
    error: str | None = None
    waited_s: float = 0.0  # pause before this attempt


class PageResult(BaseModel):
    """How a page went: ``delivered`` once the receiver accepted it (2xx)."""

    dedup_key: str
    delivered: bool
    attempts: list[PageAttempt]
    status_code: int | None = None  # of the last attempt
    error: str | None = None  # why it failed, None when delivered
    elapsed_s: float = 0.0


def build_event(request: PageRequest, routing_key: str | None) -> dict[str, Any]:
    """The webhook body for ``request``."""
    return {
        "routing_key": routing_key or "",
        "event_action": "trigger",
        "dedup_key": request.ticket_id,
        "payload": {
            "summary": request.summary[:_MAX_SUMMARY_CHARS],
            "severity": request.severity,
            "source": request.source,
            "custom_details": request.custom_details,
        },
    }


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Pager:
    """Posts page events to ``webhook_url`` with retries; thread-safe.

    ``backoff`` is the first pause; each retry doubles it, up to ``max_delay``
    (which also caps a receiver's ``Retry-After``). ``failure_log`` (JSONL) gets one
    line per page that was never delivered; None keeps failures in metrics only.
    """

    def __init__(self, webhook_url: str, timeout: float = 5.0, max_attempts: int = 4, backoff: float = 0.5, *,
                 routing_key: str | None = None, max_delay: float = 30.0, failure_log: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep, headers: dict[str, str] | None = None):
        import httpx

        if not webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"paging webhook URL must start with http:// or https://, got {webhook_url[:40]!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if timeout <= 0 or backoff < 0 or max_delay < 0:
            raise ValueError("timeout must be positive; backoff and max_delay must not be negative")
        self.webhook_url = webhook_url
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.routing_key = routing_key
        self.max_delay = max_delay
        self.failure_log = Path(failure_log) if failure_log else None
        self._aborted = threading.Event()  # set by abort(): no further attempts
        # The pause between attempts ends early on abort() (a shutdown must not wait out a backoff).
        self._sleep = self._aborted.wait if sleep is time.sleep else sleep
        self._client = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json", **(headers or {})})
        self._log_lock = threading.Lock()

    def page(self, request: PageRequest) -> PageResult:
        """Send the page; never raises (a failure is recorded and returned)."""
        started = time.monotonic()
        try:
            result = self._deliver(request, started)
        except Exception as error:  # a bug or an odd payload must not break the request that paged
            logger.exception("paging %s failed unexpectedly", request.ticket_id)
            result = PageResult(dedup_key=request.ticket_id, delivered=False, attempts=[],
                                error=f"{type(error).__name__}: {error}", elapsed_s=time.monotonic() - started)
        if not result.delivered:
            self.record_failure(request, result)
        _count(result)
        return result

    def _deliver(self, request: PageRequest, started: float) -> PageResult:
        import httpx

        body = json.dumps(build_event(request, self.routing_key), default=str).encode()
        attempts: list[PageAttempt] = []
        wait = 0.0
        for number in range(1, self.max_attempts + 1):
            if wait:
                self._sleep(wait)
            if self._aborted.is_set() and attempts:
                attempts[-1].error = f"{attempts[-1].error}; not retried: the service is shutting down"
                break
            attempt = PageAttempt(waited_s=round(wait, 3))
            attempts.append(attempt)
            retry_after = None
            try:
                response = self._client.post(self.webhook_url, content=body)
            except httpx.HTTPError as error:  # connection refused, DNS, timeouts, broken responses
                attempt.error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                retryable = True
            else:
                attempt.status_code = response.status_code
                if response.is_success:
                    return PageResult(dedup_key=request.ticket_id, delivered=True, attempts=attempts,
                                      status_code=response.status_code, elapsed_s=time.monotonic() - started)
                attempt.error = f"HTTP {response.status_code}: {response.text[:200]}"
                retryable = response.status_code >= 500 or response.status_code in _RETRY_STATUSES
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if not retryable:
                break
            exponential = self.backoff * 2 ** (number - 1)
            wait = min(self.max_delay, retry_after if retry_after is not None else exponential)
        last = attempts[-1]
        give_up = "not retried" if last.status_code is not None and not (
            last.status_code >= 500 or last.status_code in _RETRY_STATUSES) else f"after {len(attempts)} attempts"
        return PageResult(dedup_key=request.ticket_id, delivered=False, attempts=attempts,
                          status_code=last.status_code, error=f"{last.error} ({give_up})",
                          elapsed_s=time.monotonic() - started)

    def record_failure(self, request: PageRequest, result: PageResult) -> None:
        """Append the failed page to the JSONL log (the event itself, so it can be replayed by hand)."""
        logger.warning("page for ticket %s not delivered: %s", request.ticket_id, result.error)
        if self.failure_log is None:
            return
        line = json.dumps({
            "at": datetime.now(UTC).isoformat(),
            "ticket_id": request.ticket_id,
            "error": result.error,
            "attempts": [a.model_dump() for a in result.attempts],
            "event": build_event(request, None),  # without the routing key: the log is not a secret store
        }, default=str)
        try:
            with self._log_lock:
                self.failure_log.parent.mkdir(parents=True, exist_ok=True)
                with self.failure_log.open("a", encoding="utf-8") as log:
                    log.write(line + "\n")
        except OSError:
            logger.exception("could not write the paging failure log %s", self.failure_log)

    def abort(self) -> None:
        """Make pages in progress give up after their current attempt (recorded as failed)."""
        self._aborted.set()

    def close(self) -> None:
        self._client.close()


class BackgroundPager:
    """``Pager`` off the request path: ``submit`` queues the page and returns a future at once."""

    def __init__(self, pager: Pager, max_pending: int = 1000):
        self.pager = pager
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None  # started on first use, not at construction
        self._queued: dict[Future, PageRequest] = {}  # submitted and not finished

    def submit(self, request: PageRequest) -> Future[PageResult]:
        """Queue a page. When ``max_pending`` pages already wait, it fails (recorded) instead of queueing."""
        with self._lock:
            if self._pending >= self.max_pending:
                return self._refuse(request)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nightdesk-pager")
            self._pending += 1
            future = self._executor.submit(self.pager.page, request)
            self._queued[future] = request
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending -= 1
            self._queued.pop(future, None)

    def _refuse(self, request: PageRequest) -> Future[PageResult]:
        result = PageResult(dedup_key=request.ticket_id, delivered=False, attempts=[],
                            error=f"paging queue full ({self.max_pending} pages waiting)")
        self.pager.record_failure(request, result)
        _count(result)
        future: Future[PageResult] = Future()
        future.set_result(result)
        return future

    @property
    def pending(self) -> int:
        return self._pending

    def close(self, wait: bool = True, timeout_s: float | None = None) -> None:
        """Stop the worker; ``wait`` lets queued pages finish (their retries included).

        ``timeout_s`` caps that wait (a shutdown while the webhook is down would otherwise
        last up to attempts x timeout per page): then the page in progress gives up after its
        current attempt, and the pages still queued are not sent. Every such page is recorded
        as failed (failure log and metric), never silently dropped.
        """
        with self._lock:
            executor, self._executor = self._executor, None
            queued = dict(self._queued)
        if executor is not None:
            if wait and queued:
                futures_wait(list(queued), timeout=timeout_s)
            if not wait or timeout_s is not None:
                self.pager.abort()
            executor.shutdown(wait=wait and timeout_s is None, cancel_futures=True)
            for future, request in queued.items():
                if future.cancel() or future.cancelled():
                    result = PageResult(dedup_key=request.ticket_id, delivered=False, attempts=[],
                                        error="not sent: the service shut down before its turn")
                    self.pager.record_failure(request, result)
                    _count(result)
        self.pager.close()


def pager_from_settings(settings) -> BackgroundPager | None:
    """The service's pager from ``ServingSettings``; None when no webhook is configured (paging off)."""
    url = settings.serving_paging_webhook_url
    if not url:
        return None
    key = settings.serving_paging_routing_key
    return BackgroundPager(
        Pager(url, timeout=settings.serving_paging_timeout_s, max_attempts=settings.serving_paging_max_attempts,
              backoff=settings.serving_paging_backoff_s, routing_key=key.get_secret_value() if key else None,
              failure_log=settings.home_dir / FAILURE_LOG_IN_HOME),
        max_pending=settings.serving_paging_max_pending,
    )


def _count(result: PageResult) -> None:
    try:
        from serving import metrics

        metrics.record_page(result)
    except Exception:  # metrics must never turn a page (or its failure) into an error
        logger.debug("could not record the paging metric", exc_info=True)
