"""Settings of the prediction service: one typed object from the environment or ``.env``.

Everything the training side knows (NIGHTDESK_HOME, MLFLOW_TRACKING_URI, the model
name prefix) is inherited, so the service reads the same registry the CLI writes.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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
    #: Routing policy YAML (teams, hours, SLA, on-call; docs/routing-policy.md); default: the shipped example.
    serving_policy_file: Path | None = None
    #: Help articles: index file written by `nightdesk kb index` (default: NIGHTDESK_HOME/kb/index.joblib).
    serving_kb_index: Path | None = None
    #: Paging: webhook that receives on-call pages (PagerDuty/Opsgenie-style events); unset = paging off.
    serving_paging_webhook_url: str | None = Field(None, pattern=r"^https?://")
    #: Paging: integration/routing key sent as ``routing_key`` in each event.
    serving_paging_routing_key: SecretStr | None = None
    #: Paging: seconds to wait for the webhook per attempt.
    serving_paging_timeout_s: float = Field(5.0, gt=0)
    #: Paging: attempts per page (retried on connection errors, 5xx and 429).
    serving_paging_max_attempts: int = Field(4, ge=1, le=20)
    #: Paging: first pause between attempts in seconds, doubled each retry (a Retry-After header wins).
    serving_paging_backoff_s: float = Field(1.0, ge=0)
    #: Paging: pages waiting for the background sender; beyond it a page fails (and is recorded).
    serving_paging_max_pending: int = Field(1000, ge=1)
    #: Store: record every served prediction (``NIGHTDESK_DATABASE_URL``, default SQLite in NIGHTDESK_HOME).
    store_record_predictions: bool = True
    #: Store: most predictions held in memory while the database is down; beyond it the oldest are dropped.
    store_buffer_size: int = Field(50_000, ge=1)
    #: Store: write recorded predictions from a process of its own (serving/store_writer.py), so masking,
    #: SQL and the database's work never hold the service's GIL; False writes from a thread of the service.
    store_writer_process: bool = True
    #: Store: predictions written per insert by the background writer.
    store_write_batch: int = Field(500, ge=1)
    #: Store: seconds a client is told to wait (``Retry-After``) when the store is down.
    store_retry_after_s: int = Field(5, ge=1)
    #: API keys: refuse requests without a key even while no key exists (otherwise enforced once one does).
    auth_required: bool = False
    #: API keys: seconds between reloads of the key list (new keys are also looked up on first sight).
    auth_refresh_s: float = Field(10.0, gt=0)

    @property
    def kb_index_path(self) -> Path:
        return self.serving_kb_index or self.home_dir / "kb" / "index.joblib"
