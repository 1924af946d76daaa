"""Salesforce: verification flag and technical outcome on requests, Salesforce user id on user links

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import triage.models

revision: str = '0005'
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('request', sa.Column('salesforce_verified', sa.Boolean(), nullable=True))
    op.add_column('request', sa.Column('technical_outcome', sqlmodel.sql.sqltypes.AutoString(length=32),
                                       nullable=True))
    op.add_column('request', sa.Column('outcome_evidence', sqlmodel.sql.sqltypes.AutoString(length=3000),
                                       nullable=True))
    op.add_column('request', sa.Column('outcome_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.add_column('request', sa.Column('outcome_at', triage.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_request_technical_outcome'), 'request', ['technical_outcome'], unique=False)
    op.add_column('user_link', sa.Column('salesforce_user_id', sqlmodel.sql.sqltypes.AutoString(length=18),
                                         nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user_link') as batch:
        batch.drop_column('salesforce_user_id')
    op.drop_index(op.f('ix_request_technical_outcome'), table_name='request')
    with op.batch_alter_table('request') as batch:
        for name in ('outcome_at', 'outcome_by', 'outcome_evidence', 'technical_outcome', 'salesforce_verified'):
            batch.drop_column(name)
