"""leaders' summaries: per-request SLA figures stored at allocation

Revision ID: 0003
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import triage.models

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.add_column(sa.Column("sla_hours_to_allocate", sa.Float(), nullable=True))
        batch.add_column(sa.Column("allocated_within_sla", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("needs_info_at", triage.models.UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_request_status_owner", ["status", "owner"], unique=False)
    # Requests asked for more information before this revision: the first such event says when.
    op.execute("UPDATE request SET needs_info_at = (SELECT min(e.at) FROM request_event e "
               "WHERE e.request_id = request.id AND e.kind = 'needs_info')")


def downgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.drop_index("ix_request_status_owner")
        batch.drop_column("needs_info_at")
        batch.drop_column("allocated_within_sla")
        batch.drop_column("sla_hours_to_allocate")
