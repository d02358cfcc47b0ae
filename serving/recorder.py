"""Records every served prediction in the store without making a request wait for the database.

``PredictionRecorder.submit`` only appends ``ServedPrediction``s (the ticket's stored fields
and the answer's JSON, the very bytes the client received) to a bounded in-memory buffer;
one background thread hands them in batches to the store writer, which turns them into
table rows (``prediction_rows``) and writes them: in a process of its own
(``serving.store_writer``) or, with ``InProcessWriter``, on the recorder's thread. Masking
happens in the store, off the request path. While the database is down the predictions
stay buffered and the write is retried with backoff; ``failing`` tells handlers to answer
``recorded: false``. A full buffer drops its oldest entries (counted), so an outage can
never exhaust the service's memory.

Batches are made by time and size: once a prediction waits, the writer gives others
``linger_s`` to arrive (or until ``batch_size`` are waiting) and writes them in one
transaction, one multi-row insert per table. A commit costs far more than a row (SQLite:
~5 ms for one prediction alone against ~0.12 ms a row in a batch of 500), so at a
trickle of ``/predict`` calls this turns one transaction per prediction into one per
``linger_s``; ``flush`` and ``stop`` skip the wait.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from serving.schemas import TicketIn
from store import PredictionRows, Store, StoreUnavailable

logger = logging.getLogger("nightdesk.serving.recorder")


#: What the store keeps of a ticket, in the order of ``ServedPrediction.ticket``.
STORED_TICKET_FIELDS = ("id", "subject", "body", "channel", "customer_tier", "language", "created_at",
                        "customer_timezone")


class ServedPrediction(NamedTuple):
    """One served prediction as the recorder queues it: cheap to make on the request path (a tuple
    and bytes the response needed anyway) and to send to the store writer's process."""

    ticket: tuple  # the ticket's STORED_TICKET_FIELDS
    answer_json: bytes  # the ``PredictionOut`` exactly as the client received it
    served_at: float


def served_predictions(tickets: Sequence[TicketIn], answers_json: Sequence[bytes],
                       served_at: float) -> list[ServedPrediction]:
    return [ServedPrediction(tuple(getattr(ticket, name) for name in STORED_TICKET_FIELDS), answer, served_at)
            for ticket, answer in zip(tickets, answers_json)]


def prediction_rows(served: ServedPrediction) -> PredictionRows:
    """What the store keeps of one served prediction, as its table rows (text still unmasked: the store
    masks it), read from the answer's JSON by the store writer, off the request path. Tests pin what is
    stored to a ``store.PredictionRecord`` built from the validated request and answer."""
    ticket_id, subject, body, channel, customer_tier, language, ticket_created_at, customer_timezone = served.ticket
    answer = json.loads(served.answer_json)
    prediction_id = answer["prediction_id"]
    routing = _without_none(answer["routing"])
    row = {
        "id": prediction_id, "ticket_id": ticket_id, "created_at": datetime.fromtimestamp(served.served_at, UTC),
        "subject": subject or "", "body": body or "", "channel": channel, "customer_tier": customer_tier,
        "language": language, "ticket_created_at": ticket_created_at, "customer_timezone": customer_timezone,
        "queue": routing["queue"], "routing": routing,
    }
    tasks = [{"prediction_id": prediction_id, "task": task, "label": p["label"], "probabilities": p["probabilities"],
              "confidence": p["confidence"], "needs_review": p["needs_review"], "model_name": p["model_name"],
              "model_version": p["model_version"]}
             for task, p in answer["predictions"].items()]
    return PredictionRows(row, tasks)


def rows_of(served: Sequence[ServedPrediction]) -> list[PredictionRows]:
    """``prediction_rows`` of each; one that cannot be read is logged and left out, not the whole batch."""
    rows = []
    for item in served:
        try:
            rows.append(prediction_rows(item))
        except Exception:
            logger.exception("could not read the served prediction of ticket %r for the store; dropped",
                             item.ticket[0] if item.ticket else None)
    return rows


def _without_none(value: Any) -> Any:
    """``value`` with every ``None`` entry left out, at every depth: the routing as
    ``model_dump(exclude_none=True)`` gives it (its only plain mapping, ``confidence_levels``,
    never holds None, so dropping None entries of every mapping is the same)."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value


class PredictionWriter(Protocol):
    """Where the recorder sends its batches: ``StoreWriterProcess`` or ``InProcessWriter``."""

    def record_predictions(self, served: Sequence[ServedPrediction]) -> int: ...


class InProcessWriter:
    """The store writer's work on the recorder's own thread (``store_writer_process`` off, tests)."""

    def __init__(self, store: Store):
        self.store = store

    def record_predictions(self, served: Sequence[ServedPrediction]) -> int:
        return self.store.record_predictions(rows_of(served))

    def close(self) -> None:
        """Nothing of its own to close: the store belongs to its caller."""


class PredictionRecorder:
    """A background writer of served predictions into ``store``."""

    def __init__(self, store: PredictionWriter, *, buffer_size: int = 50_000, batch_size: int = 500,
                 linger_s: float = 0.05, retry_min_s: float = 0.5, retry_max_s: float = 10.0,
                 report: Callable[[PredictionRecorder], None] | None = None):
        self.store = store
        self.report = report  # called by the writer after each attempt (e.g. to set /metrics gauges)
        self.batch_size = batch_size
        self.linger_s = linger_s  # how long a waiting prediction waits for others to share its transaction
        self._hurry = 0  # flush() calls in progress: no lingering meanwhile
        self.retry_min_s, self.retry_max_s = retry_min_s, retry_max_s
        self._buffer: deque[ServedPrediction] = deque()
        self._buffer_size = buffer_size
        self._pending: list[ServedPrediction] = []  # taken from the buffer, not yet written
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failing = False
        self.written = 0
        self.dropped = 0

    # ------------------------------------------------------------ request side (never blocks on I/O)

    def submit(self, tickets: Sequence[TicketIn], answers_json: Sequence[bytes]) -> bool:
        """Queue the answers (as the JSON the clients received) for writing; False when the store is known
        to be failing."""
        served = served_predictions(tickets, answers_json, time.time())
        with self._cond:
            was_empty = not self._buffer
            for item in served:
                if len(self._buffer) >= self._buffer_size:
                    self._buffer.popleft()
                    self.dropped += 1
                self._buffer.append(item)
            if was_empty or len(self._buffer) >= self.batch_size:  # wake the writer: work, or a full batch
                self._cond.notify()
        return not self.failing

    @property
    def backlog(self) -> int:
        """Predictions not yet written."""
        with self._cond:
            return len(self._buffer) + len(self._pending)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> PredictionRecorder:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nightdesk-recorder", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what can be written within ``timeout_s``, then stop; what is left is logged as lost."""
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self.backlog:
            logger.warning("stopped with %d predictions not recorded (store unavailable)", self.backlog)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (True) or the time is up (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._hurry += 1
            try:
                while self._buffer or self._pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.notify_all()
                    self._cond.wait(min(remaining, 0.05))
            finally:
                self._hurry -= 1
        return True

    # ------------------------------------------------------------ writer thread

    def _run(self) -> None:
        delay = self.retry_min_s
        while True:
            with self._cond:
                while not self._buffer and not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    self._linger()
                if self._stopping:
                    return
                self._pending.extend(self._buffer.popleft() for _ in range(min(self.batch_size - len(self._pending),
                                                                               len(self._buffer))))
                batch = list(self._pending)
            if not batch:
                continue
            written = len(batch)
            try:
                self.store.record_predictions(batch)
            except StoreUnavailable as error:
                if not self.failing:
                    logger.warning("prediction store unavailable, buffering (%s)", error)
                self.failing = True
                self._report()
                with self._cond:
                    self._cond.wait(delay)  # a stop() wakes it early
                delay = min(delay * 2, self.retry_max_s)
                continue
            except Exception:
                logger.exception("recording %d predictions failed; dropped", len(batch))
                self.dropped += len(batch)
                written = 0
            if self.failing:
                logger.warning("prediction store is back; buffered predictions written")
            with self._cond:
                del self._pending[:len(batch)]
                self.written += written
                self.failing = False
                self._cond.notify_all()
            self._report()
            delay = self.retry_min_s

    def _linger(self) -> None:
        """Give more predictions ``linger_s`` to join the batch (called holding the lock)."""
        deadline = time.monotonic() + self.linger_s
        while len(self._buffer) < self.batch_size and not self._stopping and not self._hurry:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _report(self) -> None:
        if self.report is not None:
            try:
                self.report(self)
            except Exception:  # reporting must never stop the writer
                logger.exception("reporting the recorder's state failed")


@functools.cache
def _gauges():
    import bentoml

    return (
        bentoml.metrics.Gauge(name="nightdesk_store_backlog",
                              documentation="Served predictions not yet written to the store"),
        bentoml.metrics.Gauge(name="nightdesk_store_failing",
                              documentation="1 while the prediction store cannot be written"),
        bentoml.metrics.Gauge(name="nightdesk_store_dropped",
                              documentation="Predictions never recorded (buffer full or refused by the store)"),
    )


def report_to_metrics(recorder: PredictionRecorder) -> None:
    """The recorder's state as /metrics gauges (``report`` callback of the service's recorder)."""
    backlog, failing, dropped = _gauges()
    backlog.set(recorder.backlog)
    failing.set(1 if recorder.failing else 0)
    dropped.set(recorder.dropped)
