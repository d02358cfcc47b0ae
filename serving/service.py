"""Nightdesk's prediction service (BentoML 1.4): ``bentoml serve serving.service:Nightdesk``.

Two services, one process each:

- ``TicketScorer`` holds the models (loaded from the MLflow registry at start) and
  scores lists of tickets. Its ``score`` API is *batchable*: BentoML's adaptive
  batching merges the single tickets of concurrent ``/predict`` calls into one
  model call.
- ``Nightdesk`` is the public HTTP API. It validates, calls the scorer, adds the
  routing recommendation and a prediction id, and counts predictions for /metrics.

Handlers are thin; the work lives in serving.scoring, serving.routing and serving.models.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import bentoml
from pydantic import Field

from serving import metrics
from serving.limits import RequestSizeLimit
from serving.routing import DefaultRoutingPolicy, RoutingPolicy
from serving.schemas import (
    BatchOut,
    ModelInfo,
    ModelsOut,
    PredictionOut,
    ScoredTicket,
    TicketIn,
)
from serving.scoring import check_limits, score_tickets
from serving.settings import ServingSettings

logger = logging.getLogger("nightdesk.serving")

#: Adaptive batching of single tickets: at most this many per model call, and the
#: latency budget BentoML's dispatcher plans within (it answers 503 past it, so it
#: is generous; the dispatcher itself waits only as long as batching pays off).
ADAPTIVE_MAX_BATCH = 64
ADAPTIVE_MAX_LATENCY_MS = 5_000
#: Tries per call to the scorer when its connection drops (see Nightdesk._scorer_call).
SCORER_ATTEMPTS = 3


@bentoml.service(name="nightdesk_scorer", workers=1, threads=1, traffic={"timeout": 300})
class TicketScorer:
    """Holds each task's model and turns tickets into per-task predictions."""

    def __init__(self) -> None:
        from serving.models import load_model_set
        from training.settings import quiet_mlflow

        quiet_mlflow()
        self.settings = ServingSettings()
        self.models = load_model_set(self.settings)
        self.models.start_polling(self.settings.serving_reload_interval_s)
        loaded = self.models.loaded()
        logger.info("scorer ready: %d of %d tasks loaded", len(loaded), len(self.models.tasks))

    def __is_ready__(self) -> bool:
        return bool(self.models.loaded())

    @bentoml.on_shutdown
    def _stop_polling(self) -> None:
        self.models.stop_polling()

    @bentoml.api(batchable=True, max_batch_size=ADAPTIVE_MAX_BATCH, max_latency_ms=ADAPTIVE_MAX_LATENCY_MS)
    def score(self, tickets: list[TicketIn]) -> list[ScoredTicket]:
        """Adaptive-batched scoring of single tickets (internal: called by ``Nightdesk.predict``)."""
        return score_tickets(tickets, self.models.loaded(), self.models.tasks)

    @bentoml.api
    def score_bulk(self, tickets: list[TicketIn]) -> list[ScoredTicket]:
        """Scoring of an already large batch (internal: called by ``Nightdesk.predict_batch``)."""
        return score_tickets(tickets, self.models.loaded(), self.models.tasks)

    @bentoml.api
    async def describe(self) -> ModelsOut:
        """The held models (internal: called by ``Nightdesk.models``)."""
        return describe_models(self.models.snapshot(), self.models.tasks, self.settings)


@bentoml.service(name="nightdesk", workers=1, traffic={"timeout": 300})
class Nightdesk:
    """Ticket triage: urgency, category and sentiment with a routing recommendation."""

    scorer = bentoml.depends(TicketScorer)

    def __init__(self) -> None:
        self.settings = ServingSettings()
        self.routing: RoutingPolicy = DefaultRoutingPolicy(
            negative_confidence=self.settings.routing_negative_sentiment_confidence,
            priority_tiers=self.settings.routing_priority_tiers,
        )

    async def __is_ready__(self) -> bool:
        # Ready when at least one task can be answered (a missing task is reported, not fatal).
        models = await self._scorer_call("describe")
        return any(m.status == "loaded" for m in _as_models(models).models)

    @bentoml.api(route="/predict", input_spec=TicketIn, output_spec=PredictionOut)
    async def predict(self, **fields: Any) -> PredictionOut:
        """Triage one ticket: each task's label, probabilities, confidence, review flag and
        top features, the model versions, a prediction id and a routing recommendation."""
        ticket = TicketIn.model_construct(**fields)  # validated by BentoML against TicketIn already
        check_limits([ticket], self.settings.serving_max_field_chars)
        scored = await self._scorer_call("score", [ticket])
        answer = self._answer(ticket, _as_scored(scored[0]))
        metrics.record([answer])
        return answer

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, tickets: Annotated[list[TicketIn], Field(min_length=1)]) -> BatchOut:
        """Triage many tickets in one call (backfills, bulk rescoring); answers keep the input order."""
        check_limits(tickets, self.settings.serving_max_field_chars,
                     self.settings.serving_max_batch_size, prefix=("tickets",))
        scored = await self._scorer_call("score_bulk", tickets)
        answers = [self._answer(t, _as_scored(s)) for t, s in zip(tickets, scored)]
        metrics.record(answers)
        return BatchOut(predictions=answers)

    async def models(self) -> ModelsOut:
        """Served as ``GET /models`` by the mounted ``read_api`` (BentoML APIs are POST only)."""
        return _as_models(await self._scorer_call("describe"))

    async def _scorer_call(self, method: str, *args: Any) -> Any:
        """Call the scorer, retrying a dropped connection.

        BentoML's internal client can reuse a connection the scorer has already
        closed (bentoml/BentoML#4971) and surfaces it as a 500; scoring is pure,
        so trying again is safe.
        """
        import aiohttp

        call = getattr(self.scorer.to_async, method)
        for attempt in range(SCORER_ATTEMPTS):
            try:
                return await call(*args)
            except aiohttp.ClientConnectionError:
                if attempt == SCORER_ATTEMPTS - 1:
                    raise
                logger.warning("scorer connection dropped during %s; retrying", method)

    def _answer(self, ticket: TicketIn, scored: ScoredTicket) -> PredictionOut:
        return PredictionOut(
            prediction_id=uuid.uuid4().hex,
            ticket_id=ticket.id,
            predictions=scored.predictions,
            missing_tasks=scored.missing_tasks,
            routing=self.routing.route(ticket, scored.predictions),
        )


def read_api():
    """The GET endpoints BentoML's POST-only ``@bentoml.api`` cannot declare (they join the OpenAPI spec)."""
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/models", response_model=ModelsOut, tags=["Service APIs"],
             summary="Each task's model: name, version, alias, training date and headline metrics, "
                     "or why it is missing")
    async def models() -> ModelsOut:
        return await bentoml.get_current_service().models()

    return app


Nightdesk.mount_asgi_app(read_api(), path="/")
Nightdesk.add_asgi_middleware(RequestSizeLimit)


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


# Across the process boundary the scorer's answers arrive as plain data; in-process
# (to_asgi, tests) they are the models themselves.
def _as_scored(value: Any) -> ScoredTicket:
    return value if isinstance(value, ScoredTicket) else ScoredTicket.model_validate(value)


def _as_models(value: Any) -> ModelsOut:
    return value if isinstance(value, ModelsOut) else ModelsOut.model_validate(value)
