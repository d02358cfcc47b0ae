"""Settings of the prediction service: one typed object from the environment or ``.env``.

Everything the training side knows (NIGHTDESK_HOME, MLFLOW_TRACKING_URI, the model
name prefix) is inherited, so the service reads the same registry the CLI writes.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from features.schema import TASKS
from training.settings import NightdeskSettings


class ServingSettings(NightdeskSettings):
    """``NIGHTDESK_SERVING_*`` variables (plus the inherited ``NIGHTDESK_*`` ones)."""

    model_config = SettingsConfigDict(env_prefix="NIGHTDESK_", env_file=".env", extra="ignore")

    #: Tasks the service loads; a task without a model under ``alias`` is reported, not fatal.
    serving_tasks: tuple[str, ...] = TASKS
    #: Which registry alias is served.
    serving_alias: str = "champion"
    #: Most tickets accepted by ``/predict_batch`` in one call.
    serving_max_batch_size: int = Field(1000, ge=1, le=100_000)
    #: A subject or body longer than this (characters) is refused with the field named.
    #: Text between the model's own limit and this one is truncated and flagged instead.
    serving_max_field_chars: int = Field(200_000, ge=1)
    #: Largest request body in bytes; larger ones get 413 before any parsing.
    serving_max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    #: Seconds between checks of the alias for a new model version; 0 turns polling off.
    serving_reload_interval_s: float = Field(0.0, ge=0.0)
    #: Routing: a negative sentiment at or above this confidence raises the priority one level.
    routing_negative_sentiment_confidence: float = Field(0.7, ge=0.0, le=1.0)
    #: Routing: customer tiers whose tickets are raised one priority level.
    routing_priority_tiers: tuple[str, ...] = ("enterprise",)
