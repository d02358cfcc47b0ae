"""Point the running in-process service at a store of the test's own (and back afterwards), and the
reference record of a served prediction that the store writer's rows are pinned to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from serving.auth import KeyRing
from serving.recorder import InProcessWriter, PredictionRecorder
from serving.schemas import PredictionOut, TicketIn
from store import PredictionRecord, Store, TaskOutcome

#: Nothing listens on port 1: connecting is refused at once, like a database that is down.
UNREACHABLE = "postgresql+psycopg://nightdesk:x@127.0.0.1:1/nightdesk"


def prediction_record(ticket: TicketIn, answer: PredictionOut, served_at: float) -> PredictionRecord:
    """What the store should keep of one served prediction (text still unmasked: the store masks it),
    from the validated request and answer: the reference ``serving.recorder.prediction_rows`` is pinned to.

    Built with ``model_construct`` from models validated already; a test pins it to the validated record.
    """
    outcomes = {task: TaskOutcome.model_construct(label=p.label, probabilities=p.probabilities,
                                                  confidence=p.confidence, needs_review=p.needs_review,
                                                  model_name=p.model_name, model_version=p.model_version)
                for task, p in answer.predictions.items()}
    return PredictionRecord.model_construct(
        prediction_id=answer.prediction_id, ticket_id=ticket.id,
        created_at=datetime.fromtimestamp(served_at, UTC),
        subject=ticket.subject or "", body=ticket.body or "", channel=ticket.channel,
        customer_tier=ticket.customer_tier, language=ticket.language, ticket_created_at=ticket.created_at,
        customer_timezone=ticket.customer_timezone, outcomes=outcomes,
        routing=answer.routing.model_dump(mode="json", exclude_none=True),
    )


@contextmanager
def service_store(service, url: str) -> Iterator[Store]:
    """The service's store, recorder and key ring replaced by fresh ones on ``url``."""
    store = Store(url)
    recorder = PredictionRecorder(InProcessWriter(store), retry_min_s=0.02, retry_max_s=0.1).start()
    keyring = KeyRing(store, refresh_s=3600)
    keyring.reload()
    keyring.miss_reload_s = 0.0
    saved = service.store, service.recorder, service.keyring
    service.store, service.recorder, service.keyring = store, recorder, keyring
    try:
        yield store
    finally:
        recorder.stop(timeout_s=2.0)
        service.store, service.recorder, service.keyring = saved
        store.close()


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
