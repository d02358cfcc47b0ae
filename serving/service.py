"""Nightdesk's prediction service (BentoML 1.4): ``bentoml serve serving.service:Nightdesk``.

One service, one worker process. ``Nightdesk`` holds each task's model
(``serving.models.ModelSet``: loaded from the MLflow registry at start, swapped
atomically when the alias moves) and answers every request in its own process:
validate, score, route, record, answer.

Where the time goes, and why this shape (measured, docs/benchmarks.md):

- An earlier version kept the models in a second BentoML service with a
  ``batchable`` scoring API, so that BentoML's adaptive batching could merge the
  tickets of concurrent ``/predict`` calls. The hop between the two processes
  (HTTP, JSON both ways, pydantic on both sides) cost more than scoring; BentoML's
  dispatcher waits to fill batches (up to seconds while it calibrates itself) and
  sheds requests with 503 once its latency estimate passes ``max_latency_ms``; and
  the internal client reused connections the scorer had closed (bentoml/BentoML#4971):
  hundreds of retries per load test, and now and then a request that hung until
  the 300 s request timeout, holding up shutdown just as long.
- So scoring happens here, on one scoring thread, and adaptive batching is
  ``serving.scoring.TicketBatcher``: while one model call runs, the requests that
  arrive queue up and are scored together in the next call. A lone ticket is
  scored at once; under load the batches grow with the queue (their sizes are the
  ``nightdesk_scoring_batch_size`` histogram on /metrics). BentoML 1.4's own
  adaptive batching only applies to ``batchable`` APIs, whose input is a list
  (not the one-ticket ``/predict`` contract) or which sit behind that process hop.
- For one ticket, ``predict_frame``'s per-call overhead (frames per block,
  scikit-learn validation, the text analysed once per task) was most of the time:
  ``features.online.OnlinePredictor`` runs the same fitted models without it and
  gives the same answers (tests pin them to the registered pyfunc's).
- Every request ends within ``REQUEST_TIMEOUT_S`` (504 past it), so a graceful
  shutdown, which waits for requests in flight, is bounded by it too.

Per-request hooks live in ``predict``/``predict_batch`` after ``_answer``: metrics
are counted, predictions are queued for the store (never awaited; the writes run in
the store writer process, serving.store_writer), pages are sent by a background
sender. Keep new per-request work off the request path likewise.
Handlers are thin; the work lives in serving.scoring, serving.routing and serving.models.
"""

from __future__ import annotations

import gc
import logging
import uuid
from typing import Annotated, Any

import bentoml
from pydantic import Field
from starlette.responses import Response

from serving import metrics
from serving.auth import ApiKeyAuth
from serving.limits import RequestSizeLimit
from serving.routing import RoutingPolicy, load_routing_policy, page_request, reassess_router, route_all
from serving.schemas import (
    BatchOut,
    ModelInfo,
    ModelsOut,
    PredictionOut,
    Routing,
    ScoredTicket,
    TicketIn,
    answer_json,
    batch_json,
)
from serving.scoring import TicketBatcher, check_limits, score_tickets
from serving.settings import ServingSettings

logger = logging.getLogger("nightdesk.serving")

#: Most tickets scored in one model call when concurrent requests are batched (a bigger
#: /predict_batch request is scored whole).
BATCH_MAX_TICKETS = 64
#: Seconds a request may take before it is answered 504. It also bounds how long a
#: graceful shutdown waits for requests in flight. A full /predict_batch (1,000
#: tickets) takes well under a second on two cores; override with
#: BENTOML_CONFIG_OPTIONS="services.nightdesk.traffic.timeout=N".
REQUEST_TIMEOUT_S = 20
#: What the handlers answer with: JSON they serialized themselves (``_answers_json``).
JSON = "application/json"
#: The collector's thresholds (``gc.set_threshold``): young collections every 50,000 allocations,
#: not 700 (bulk rate +3-9% in interleaved runs; the objects between collections are few MB).
GC_THRESHOLDS = (50_000, 20, 10)
#: Seconds a shutdown waits for queued on-call pages before recording the unsent ones as failed.
PAGER_SHUTDOWN_WAIT_S = 5.0


@bentoml.service(name="nightdesk", workers=1, traffic={"timeout": REQUEST_TIMEOUT_S})
class Nightdesk:
    """Ticket triage: urgency, category and sentiment with a routing recommendation."""

    def __init__(self) -> None:
        from serving.feedback import connect_store
        from serving.models import load_model_set
        from serving.paging import pager_from_settings
        from training.settings import quiet_mlflow

        quiet_mlflow()
        self.settings = ServingSettings()
        self.models = load_model_set(self.settings)
        self.models.start_polling(self.settings.serving_reload_interval_s)
        self.batcher = TicketBatcher(self._score, max_tickets=BATCH_MAX_TICKETS, on_batch=metrics.record_batch)
        logger.info("models ready: %d of %d tasks loaded", len(self.models.loaded()), len(self.models.tasks))
        # The round-the-clock policy (NIGHTDESK_SERVING_POLICY_FILE, default the shipped example);
        # pages for page_on_call decisions go out on a background thread.
        self.routing: RoutingPolicy = load_routing_policy(self.settings.serving_policy_file,
                                                          self.settings.kb_index_path)
        self.pager = pager_from_settings(self.settings)
        # Predictions are recorded by a background writer; API keys are checked by ApiKeyAuth.
        self.store, self.recorder, self.keyring = connect_store(self.settings)
        # Last in __init__: what is loaded by now (models, libraries: ~400,000 objects) lives as
        # long as the process. Frozen, the collector's full passes skip it, instead of stalling
        # every request for ~300 ms whenever one runs.
        gc.freeze()
        # A bulk call allocates ~100 objects a ticket, nearly all freed by reference counting; at
        # the default threshold (700) the collector ran ~every 7 tickets and cost ~15 us a ticket.
        gc.set_threshold(*GC_THRESHOLDS)

    def __is_ready__(self) -> bool:
        # Ready when at least one task can be answered (a missing task is reported, not fatal).
        return bool(self.models.loaded())

    @bentoml.api(route="/predict", input_spec=TicketIn, output_spec=PredictionOut)
    async def predict(self, **fields: Any) -> Response:
        """Triage one ticket: each task's label, probabilities, confidence, review flag and
        top features, the model versions, a prediction id and a routing recommendation."""
        ticket = TicketIn.model_construct(**fields)  # validated by BentoML against TicketIn already
        check_limits([ticket], self.settings.serving_max_field_chars)
        (scored,) = await self.batcher.score([ticket])
        answer = self._answer(ticket, scored)
        metrics.record([answer])
        (body,) = self._answers_json([ticket], [answer])
        self.page_if_needed(ticket, answer.routing)
        return Response(body, media_type=JSON)

    @bentoml.api(route="/predict_batch", output_spec=BatchOut)
    async def predict_batch(self, tickets: Annotated[list[TicketIn], Field(min_length=1)]) -> Response:
        """Triage many tickets in one call (backfills, bulk rescoring); answers keep the input order."""
        check_limits(tickets, self.settings.serving_max_field_chars,
                     self.settings.serving_max_batch_size, prefix=("tickets",))
        scored = await self.batcher.score(tickets)
        # One routing call for the batch: one clock reading, the help articles searched together.
        routings = route_all(self.routing, tickets, [s.predictions for s in scored])
        answers = [self._answer(t, s, r) for t, s, r in zip(tickets, scored, routings)]
        metrics.record(answers)
        return Response(batch_json(self._answers_json(tickets, answers)), media_type=JSON)

    def models_info(self) -> ModelsOut:
        """Served as ``GET /models`` by the mounted ``read_api`` (BentoML APIs are POST only)."""
        return describe_models(self.models.snapshot(), self.models.tasks, self.settings)

    def _score(self, tickets: list[TicketIn]) -> list[ScoredTicket]:
        """One model call (on the batcher's scoring thread) with the models held right now."""
        return score_tickets(tickets, self.models.loaded(), self.models.tasks)

    def page_if_needed(self, ticket: TicketIn, routing) -> None:
        """Page on call for a ``page_on_call`` decision, off the request path (/predict and reassess only:
        a batch is a backfill, whose old tickets must not wake anyone)."""
        if self.pager is not None and routing.action == "page_on_call":
            self.pager.submit(page_request(ticket, routing))

    def _answer(self, ticket: TicketIn, scored: ScoredTicket, routing: Routing | None = None) -> PredictionOut:
        return PredictionOut(
            prediction_id=uuid.uuid4().hex,
            ticket_id=ticket.id,
            predictions=scored.predictions,
            missing_tasks=scored.missing_tasks,
            routing=routing if routing is not None else self.routing.route(ticket, scored.predictions),
        )

    def _answers_json(self, tickets: list[TicketIn], answers: list[PredictionOut]) -> list[bytes]:
        """Each answer's JSON, for the response, queued as it is for the store (never waits on it);
        flagged ``recorded: false`` while recording is failing. Serialized once: the handlers answer
        with these bytes rather than have BentoML serialize the answers again."""
        recorder = self.recorder
        if recorder is not None and recorder.failing:
            for answer in answers:
                answer.recorded = False
        answers_json = [answer_json(answer) for answer in answers]
        if recorder is not None:
            recorder.submit(tickets, answers_json)
        return answers_json

    # Shutdown: stop scoring, then flush what is queued for the store and the pager (each bounded).
    @bentoml.on_shutdown
    def _stop_scoring(self) -> None:
        self.models.stop_polling()
        self.batcher.close()

    @bentoml.on_shutdown
    def _close_store(self) -> None:
        if self.recorder is not None:
            self.recorder.stop(timeout_s=3.0)
            self.recorder.store.close()  # the writer process (serving.store_writer); in-process: nothing to close
        self.store.close()

    @bentoml.on_shutdown
    def _close_pager(self) -> None:
        if self.pager is not None:
            # Queued pages (and their retries) still go out, for at most PAGER_SHUTDOWN_WAIT_S: with the
            # webhook down, a page's retries alone could hold the shutdown for attempts x timeout. Pages
            # not sent by then are recorded as failed (failure log, nightdesk_page_failures).
            self.pager.close(wait=True, timeout_s=PAGER_SHUTDOWN_WAIT_S)


def read_api():
    """Routes ``@bentoml.api`` cannot declare (GET, path parameters, pages): /models, /feedback,
    /feedback/stats, /tickets/{id}/reassess and the agent console. They join the OpenAPI spec."""
    from fastapi import FastAPI

    from serving.console import router as console_router
    from serving.feedback import router as feedback_router

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(feedback_router)
    app.include_router(console_router)
    app.include_router(reassess_router())

    @app.get("/models", response_model=ModelsOut, tags=["Service APIs"],
             summary="Each task's model: name, version, alias, training date and headline metrics, "
                     "or why it is missing")
    async def models() -> ModelsOut:
        return bentoml.get_current_service().models_info()

    return app


Nightdesk.mount_asgi_app(read_api(), path="/")
Nightdesk.add_asgi_middleware(RequestSizeLimit)
Nightdesk.add_asgi_middleware(ApiKeyAuth)


def describe_models(snapshot, tasks, settings: ServingSettings) -> ModelsOut:
    from serving.models import LoadedModel

    infos = []
    for task in tasks:
        slot = snapshot.get(task)
        if isinstance(slot, LoadedModel):
            infos.append(ModelInfo(task=task, status="loaded", model_name=slot.name, alias=slot.alias,
                                   version=slot.version, created_at=slot.created_at, trained_at=slot.trained_at,
                                   run_id=slot.run_id, metrics=dict(slot.metrics)))
        else:
            infos.append(ModelInfo(task=task, status=getattr(slot, "status", "missing"),
                                   model_name=settings.model_name(task), alias=settings.serving_alias,
                                   reason=getattr(slot, "reason", "not loaded")))
    return ModelsOut(tracking_uri=_redacted(settings.tracking_uri), models=infos)


def _redacted(uri: str) -> str:
    """The URI without a password (``postgresql://user:secret@host`` -> ``postgresql://user:***@host``)."""
    import re

    return re.sub(r"(//[^:/@]+:)[^@/]+@", r"\1***@", uri)
