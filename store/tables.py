"""The store's tables (SQLAlchemy 2). Their shape is created and changed only by the Alembic
migrations in ``store/migrations``; a change here needs a new migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on every backend (SQLite keeps no offset: it is added back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Prediction(Base):
    """One served prediction of one ticket (all tasks); the text is PII-masked."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str | None] = mapped_column(String(200))
    customer_tier: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(200))
    ticket_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customer_timezone: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str | None] = mapped_column(String(200), index=True)
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class PredictionTask(Base):
    """One task's answer within a prediction."""

    __tablename__ = "prediction_tasks"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True)
    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_prediction_tasks_task_review", "task", "needs_review"),)


class Correction(Base):
    """An agent's corrected label for one task of a ticket; one per (ticket, task, agent)."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), index=True)
    ticket_id: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    original_label: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    misrouted: Mapped[bool] = mapped_column(Boolean, default=False)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (UniqueConstraint("ticket_id", "task", "agent_id", name="uq_corrections_ticket_task_agent"),)


class ApiKey(Base):
    """An API key: only the SHA-256 of the token is kept, never the token."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
