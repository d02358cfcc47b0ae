"""Predictions, their per-task answers, corrections and API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(200)),
        sa.Column("customer_tier", sa.String(200)),
        sa.Column("language", sa.String(200)),
        sa.Column("ticket_created_at", UTCDateTime()),
        sa.Column("customer_timezone", sa.String(200)),
        sa.Column("queue", sa.String(200)),
        sa.Column("routing", sa.JSON()),
    )
    op.create_index("ix_predictions_ticket_id", "predictions", ["ticket_id"])
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_index("ix_predictions_queue", "predictions", ["queue"])
    op.create_table(
        "prediction_tasks",
        sa.Column("prediction_id", sa.String(64), sa.ForeignKey("predictions.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("task", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
    )
    op.create_index("ix_prediction_tasks_task_review", "prediction_tasks", ["task", "needs_review"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(64), sa.ForeignKey("predictions.id"), nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("original_label", sa.String(200), nullable=False),
        sa.Column("agent_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("misrouted", sa.Boolean(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("ticket_id", "task", "agent_id", name="uq_corrections_ticket_task_agent"),
    )
    op.create_index("ix_corrections_prediction_id", "corrections", ["prediction_id"])
    op.create_index("ix_corrections_updated_at", "corrections", ["updated_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("corrections")
    op.drop_table("prediction_tasks")
    op.drop_table("predictions")
