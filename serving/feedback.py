"""``POST /feedback``, ``GET /feedback/stats`` and the console's data, ``GET /console/api/predictions``.

Thin handlers over the service's ``store.Store``: they parse, call one store method (one
transaction) and map the store's errors to answers: unknown prediction 404, a label the
predicting model does not know 422 with the allowed values, database down 503 with
``Retry-After``. Handlers are plain functions, so FastAPI runs them in its thread pool and
the database never blocks the event loop.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from features.schema import TASKS
from serving.auth import KeyRing
from serving.recorder import InProcessWriter, PredictionRecorder, report_to_metrics
from serving.store_writer import StoreWriterProcess
from store import (
    CorrectionIn,
    CorrectionResult,
    FeedbackStats,
    InvalidCorrection,
    PredictionNotFound,
    RecentPrediction,
    Store,
    StoreUnavailable,
)

logger = logging.getLogger("nightdesk.serving.feedback")

#: Most corrections accepted in one request.
MAX_CORRECTIONS = 1000


class CorrectionsIn(BaseModel):
    corrections: Annotated[list[CorrectionIn], Field(min_length=1, max_length=MAX_CORRECTIONS)]


class FeedbackOut(BaseModel):
    corrections: list[CorrectionResult] = Field(description="In the order sent; status created, updated or unchanged.")


class RecentPredictionsOut(BaseModel):
    predictions: list[RecentPrediction]


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


_ERRORS = {
    404: {"model": ErrorOut, "description": "A prediction_id (or ticket_id) the store has no record of."},
    422: {"model": ErrorOut, "description": "A bad field, or a label outside the predicting model's classes "
                                            "(the allowed values are listed)."},
    503: {"model": ErrorOut, "description": "The store is unavailable; nothing was written. Retry after "
                                            "the Retry-After header's seconds."},
}



def _feedback_body() -> dict:
    """The OpenAPI request body of /feedback (parsed by hand, so FastAPI cannot derive it): inline
    schemas, as the spec's components only hold models that handlers declare."""
    one = CorrectionIn.model_json_schema()
    many = {"title": "CorrectionsIn", "type": "object", "required": ["corrections"], "additionalProperties": False,
            "properties": {"corrections": {"type": "array", "items": one, "minItems": 1,
                                           "maxItems": MAX_CORRECTIONS}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [one, many]}}}}}


router = APIRouter(tags=["Feedback"])


def _service():
    import bentoml

    return bentoml.get_current_service()


def _unavailable(error: StoreUnavailable) -> JSONResponse:
    # The cause (host, port, driver message) goes to the log, not to the client.
    logger.warning("store unavailable: %s", error)
    retry = str(_service().settings.store_retry_after_s)
    return JSONResponse({"detail": f"the store is unavailable, nothing was written; retry in {retry} s"},
                        status_code=503, headers={"Retry-After": retry})


def parse_corrections(payload: Any) -> list[CorrectionIn]:
    """One correction, or ``{"corrections": [...]}``; raises ``ValidationError`` naming the field."""
    if isinstance(payload, dict) and "corrections" in payload:
        return CorrectionsIn.model_validate(payload).corrections
    return [CorrectionIn.model_validate(payload)]


@router.post("/feedback", response_model=FeedbackOut, responses=_ERRORS, openapi_extra=_feedback_body(),
             summary="Record agents' corrections: one correction, or {\"corrections\": [...]}. Safe to repeat: "
                     "one correction per ticket, task and agent, a repeat updates it")
async def feedback(request: Request) -> Any:
    from starlette.concurrency import run_in_threadpool

    try:
        payload = json.loads(await request.body())
    except ValueError as error:
        return JSONResponse({"detail": [{"loc": ["body"], "type": "json_invalid", "msg": f"invalid JSON: {error}"}]},
                            status_code=422)
    try:
        corrections = parse_corrections(payload)
    except ValidationError as error:
        return JSONResponse({"detail": _field_errors(error)}, status_code=422)
    try:
        results = await run_in_threadpool(_service().store.add_corrections, corrections)
    except StoreUnavailable as error:
        return _unavailable(error)
    except PredictionNotFound as error:
        return JSONResponse({"detail": str(error), "errors": error.missing}, status_code=404)
    except InvalidCorrection as error:
        return JSONResponse({"detail": str(error), "errors": error.problems}, status_code=422)
    return FeedbackOut(corrections=results)


def _field_errors(error: ValidationError) -> list[dict]:
    """Pydantic's errors as FastAPI words them (``loc`` starts with "body"), without echoing input."""
    return [{"loc": ["body", *e["loc"]], "type": e["type"], "msg": e["msg"]} for e in error.errors()]


@router.get("/feedback/stats", response_model=FeedbackStats, responses={503: _ERRORS[503]},
            summary="Override rate (agents' corrections to another label) per task, class, model version "
                    "and hour of day (UTC)")
def feedback_stats() -> Any:
    try:
        return _service().store.feedback_stats()
    except StoreUnavailable as error:
        return _unavailable(error)


@router.get("/console/api/predictions", response_model=RecentPredictionsOut, responses={503: _ERRORS[503]},
            summary="Recent predictions for the agent console, newest first")
def console_predictions(
    task: Annotated[str | None, Query(description=f"Only predictions with an answer for this task: "
                                                  f"{', '.join(TASKS)}.")] = None,
    queue: Annotated[str | None, Query(max_length=200, description="Only tickets routed to this queue.")] = None,
    only_review: Annotated[bool, Query(description="Only predictions flagged for review (for the task, "
                                                   "else any task).")] = False,
    max_confidence: Annotated[float | None, Query(ge=0, le=1, description="Only predictions at most this "
                                                  "confident; with only_review: flagged or low confidence.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    if task is not None and task not in TASKS:
        return JSONResponse({"detail": [{"loc": ["query", "task"], "type": "enum",
                                         "msg": f"task must be one of {', '.join(TASKS)}"}]}, status_code=422)
    try:
        found = _service().store.recent_predictions(task=task, queue=queue or None, only_review=only_review,
                                                    max_confidence=max_confidence, limit=limit)
    except StoreUnavailable as error:
        return _unavailable(error)
    return RecentPredictionsOut(predictions=found)


def connect_store(settings) -> tuple[Store, PredictionRecorder | None, KeyRing]:
    """The service's store, its background prediction recorder and its API key ring.

    Nothing here needs the database to be up: the schema is migrated now if it can be,
    else on first use, and the recorder buffers until the store answers.
    """
    store = Store(settings.database_url, migrate=False)
    try:
        store.ensure_schema()
    except StoreUnavailable as error:
        logger.warning("store unavailable at start (predictions are buffered until it answers): %s", error)
    recorder = None
    if settings.store_record_predictions:
        # The writes themselves run in a process of their own (serving.store_writer) unless turned off.
        writer = (StoreWriterProcess(settings.database_url).start() if settings.store_writer_process
                  else InProcessWriter(store))
        recorder = PredictionRecorder(writer, buffer_size=settings.store_buffer_size,
                                      batch_size=settings.store_write_batch, report=report_to_metrics).start()
    keyring = KeyRing(store, refresh_s=settings.auth_refresh_s, required=settings.auth_required)
    keyring.reload()
    return store, recorder, keyring
