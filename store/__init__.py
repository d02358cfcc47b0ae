"""Nightdesk's store of served predictions, agents' corrections and API keys.

Written by the prediction service, read by retraining and the CLI (it never imports
BentoML). SQLAlchemy 2 over SQLite (default: ``$NIGHTDESK_HOME/nightdesk.db``) or
PostgreSQL (``postgresql+psycopg://...``), chosen by ``NIGHTDESK_DATABASE_URL``. The schema is
owned by the Alembic migrations in ``store/migrations``; opening a store migrates it to head.

Interface (pydantic models in ``store.schemas``, errors in ``store.errors``)::

    store = Store(url)                                  # or Store.open(url); Store(url, migrate=False) is lazy
    store.record_predictions([PredictionRecord, ...])   # masks the text; existing ids are skipped
        # (or PredictionRows: the same as plain table rows, for bulk writers)
    store.add_corrections([CorrectionIn, ...]) -> [CorrectionResult, ...]
        # one transaction; label checked against the predicting model's classes;
        # idempotent per (ticket, task, agent): a repeat updates or leaves the stored one;
        # raises PredictionNotFound (404), InvalidCorrection (422), StoreUnavailable (503)
    store.corrections_frame(task=None) -> DataFrame      # columns: store.CORRECTION_COLUMNS
    store.recent_predictions(task=None, queue=None, only_review=False, max_confidence=None, limit=100)
        -> [RecentPrediction, ...]                      # newest first, for the agent console
    store.feedback_stats() -> FeedbackStats             # override rate per task, class, model version, hour
    store.create_key(role, name=None) -> token          # printed once; only its SHA-256 is stored
    store.authenticate(token) -> role | None ; store.has_keys() ; store.active_keys() ; store.revoke_key(id)

``corrections_frame`` has one row per (ticket, task, agent): ``correction_id, ticket_id, task,
label, original_label, agent_id, reason, misrouted, created_at, updated_at, prediction_id,
model_name, model_version`` and the masked ticket as recorded with the prediction:
``subject, body, channel, customer_tier, language, ticket_created_at, customer_timezone``.
``updated_at`` is when the row's current label was set: the latest correction wins by it.
"""

from store.errors import InvalidCorrection, PredictionNotFound, StoreError, StoreUnavailable
from store.schemas import (
    ROLES,
    ApiKeyInfo,
    CorrectionIn,
    CorrectionResult,
    FeedbackStats,
    OverrideRate,
    PredictionRecord,
    RecentPrediction,
    TaskOutcome,
)
from store.store import CORRECTION_COLUMNS, PredictionRows, Store

__all__ = [
    "CORRECTION_COLUMNS", "ROLES", "ApiKeyInfo", "CorrectionIn", "CorrectionResult", "FeedbackStats",
    "InvalidCorrection", "OverrideRate", "PredictionNotFound", "PredictionRecord", "PredictionRows", "RecentPrediction",
    "Store",
    "StoreError", "StoreUnavailable", "TaskOutcome",
]
