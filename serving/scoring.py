"""Scoring tickets with the held models: the service's only path to a prediction.

Tickets are read as the registered pyfunc model reads a frame of them
(``features.predictor.to_model_input``) and scored by each task's
``features.online.OnlinePredictor`` — the same fitted model, with the per-call
overhead of ``predict_frame`` taken out, and the same answers (tests pin them to
the pyfunc's, value for value). A model without an online form is scored with its
own ``predict_frame``.

``TicketBatcher`` is the service's adaptive batching: the tickets of requests
that arrive while a model call runs are scored together in the next call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from serving.models import LoadedModel
from serving.schemas import ScoredTicket, TaskPrediction, TicketIn


def score_tickets(
    tickets: Sequence[TicketIn], models: Mapping[str, LoadedModel], tasks: Sequence[str]
) -> list[ScoredTicket]:
    """Every loaded task's prediction for each ticket; tasks without a model are listed as missing."""
    from features.online import predict_tasks_for_rows  # here: the supervisor process imports this module

    if not tickets:
        return []
    # The online form at every size: for the three default models it costs less than predict_frame
    # from one ticket to 2,000 (us/ticket, one run: 254 vs 258 at 64, 212 vs 265 at 500, 181 vs 203 at 2,000).
    predictors = {task: model.online or model.classifier for task, model in models.items()}
    answers = predict_tasks_for_rows(predictors, [ticket.as_row() for ticket in tickets])
    per_task = {
        task: [TaskPrediction(**record, model_name=models[task].name, model_version=models[task].version)
               for record in records]
        for task, records in answers.items()
    }
    missing = [task for task in tasks if task not in models]
    return [
        ScoredTicket(predictions={task: rows[i] for task, rows in per_task.items()}, missing_tasks=missing)
        for i in range(len(tickets))
    ]


class TicketBatcher:
    """Adaptive batching inside the service process: concurrent requests share model calls.

    One model call runs at a time, on a thread of its own (the event loop keeps
    accepting requests meanwhile). Requests that arrive while it runs wait in a
    queue, and the next call scores all of them together, up to ``max_tickets``
    tickets. A lone request is scored at once (no batching window to wait out);
    under load the batches grow with the queue, so throughput rises with
    concurrency instead of collapsing. Nothing is shed: a request waits its turn.
    A batch whose call fails is scored again request by request, so one bad
    request cannot fail the others.
    """

    def __init__(self, score: Callable[[list[TicketIn]], list[ScoredTicket]], max_tickets: int = 64,
                 on_batch: Callable[[int], None] | None = None):
        self._score = score
        self._max_tickets = max_tickets
        self._on_batch = on_batch
        self._waiting: deque[tuple[list[TicketIn], asyncio.Future]] = deque()
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nightdesk-scoring")
        self._closed = False

    async def score(self, tickets: Sequence[TicketIn]) -> list[ScoredTicket]:
        """The tickets' scores, in order (the tickets of one call are never split)."""
        if self._closed:
            raise RuntimeError("the service is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._waiting.append((list(tickets), future))
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain())
        return await future

    def close(self) -> None:
        """Refuse new work and stop the scoring thread; queued requests fail instead of hanging."""
        self._closed = True
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            jobs = self._next_batch()
            if not jobs:
                continue
            tickets = [ticket for job, _ in jobs for ticket in job]
            if self._on_batch is not None:
                self._on_batch(len(tickets))
            try:
                scored = await loop.run_in_executor(self._executor, self._score, tickets)
            except Exception as error:
                if len(jobs) == 1:
                    _settle(jobs[0][1], error=error)
                else:  # find the request that fails; the others still get their answers
                    self._waiting.extendleft(reversed([(job, future) for job, future in jobs]))
                    await self._score_one_by_one(len(jobs))
                continue
            start = 0
            for job, future in jobs:
                _settle(future, scored[start:start + len(job)])
                start += len(job)

    async def _score_one_by_one(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            job, future = self._waiting.popleft()
            try:
                _settle(future, await loop.run_in_executor(self._executor, self._score, job))
            except Exception as error:
                _settle(future, error=error)

    def _next_batch(self) -> list[tuple[list[TicketIn], asyncio.Future]]:
        """The oldest waiting requests, up to ``max_tickets`` tickets (at least one request)."""
        jobs, count = [], 0
        while self._waiting:
            job, future = self._waiting[0]
            if future.done():  # the caller gave up (timeout, disconnect): skip its work
                self._waiting.popleft()
                continue
            if jobs and count + len(job) > self._max_tickets:
                break
            jobs.append(self._waiting.popleft())
            count += len(job)
        return jobs


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def check_limits(tickets: Sequence[TicketIn], max_field_chars: int, max_tickets: int | None = None,
                 prefix: tuple = ()) -> None:
    """Refuse (as a validation error naming the field) what the settings do not allow.

    These limits are configurable, so they cannot live in the static schema.
    """
    errors: list[InitErrorDetails] = []
    if max_tickets is not None and len(tickets) > max_tickets:
        errors.append(_error(prefix, "too_many_tickets",
                             f"{len(tickets)} tickets in one call; the limit is {max_tickets}"))
    for index, ticket in enumerate(tickets):
        where = (*prefix, index) if prefix else ()
        for field in ("subject", "body"):
            length = len(getattr(ticket, field))
            if length > max_field_chars:
                errors.append(_error((*where, field), "text_too_long",
                                     f"{field} has {length} characters; the limit is {max_field_chars}"))
    if errors:
        raise ValidationError.from_exception_data("TicketIn", errors)


def _error(loc: tuple, kind: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)
