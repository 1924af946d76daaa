"""leaders' summaries: per-request SLA figures stored at allocation

Revision ID: 0003
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.add_column(sa.Column("sla_hours_to_allocate", sa.Float(), nullable=True))
        batch.add_column(sa.Column("allocated_within_sla", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.drop_column("allocated_within_sla")
        batch.drop_column("sla_hours_to_allocate")
