"""dashboard sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The ``dashboard_sessions`` table (issue 13, section 4): the dashboard's cookie holds a random session id
instead of the bearer token; a row keeps the id's SHA-256, the token it stands for, its idle and absolute
expiry and when (and why) it ended (``service/core/dashboard_sessions.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_sha256', sa.String(length=64), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['token_id'], ['access_tokens.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_sha256')
    )


def downgrade() -> None:
    op.drop_table('dashboard_sessions')
