"""hardening: service holds (a 429 holds back a whole service), view submissions already applied, and who
linked a Slack user to a GitLab user

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 11:25:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import triage.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('linked_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.create_table('service_hold',
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('until', triage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('service')
    )
    op.create_table('view_submission',
    sa.Column('view_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('callback_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', triage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('view_id')
    )


def downgrade() -> None:
    op.drop_table('view_submission')
    op.drop_table('service_hold')
    with op.batch_alter_table('user_link', schema=None) as batch_op:
        batch_op.drop_column('linked_by')
