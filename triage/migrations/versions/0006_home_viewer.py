"""home viewers: who opened the App Home, so their Home is published again when what they see changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:55:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import triage.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "home_viewer",
        sa.Column("slack_user", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sa_queues", sa.JSON(), nullable=False),
        sa.Column("opened_at", triage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slack_user"),
    )


def downgrade() -> None:
    op.drop_table("home_viewer")
