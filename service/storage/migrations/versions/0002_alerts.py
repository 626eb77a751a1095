"""alerts and dashboard indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The ``alerts`` table (chart rules broken, nodes outside the funnel limits;
acknowledged with a comment, never deleted) and the covering indexes the
dashboard's aggregates read (``service/analytics.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_submissions_product_captured": ("submissions", ["product_id", "captured_at", "node_id", "verdict"]),
    "ix_submissions_product_node_captured": ("submissions", ["product_id", "node_id", "captured_at", "verdict"]),
    "ix_submissions_lot_captured": ("submissions", ["lot_id", "captured_at"]),
    "ix_check_results_check_seq": ("check_results", ["check_id", "submission_seq", "value"]),
    "ix_check_results_passed_seq": ("check_results", ["passed", "submission_seq", "check_id"]),
}


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.String(length=64), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('detail', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_alerts_key')
    )
    op.create_index('ix_alerts_status_created', 'alerts', ['status', 'created_at'], unique=False)
    for name, (table, columns) in _INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, (table, _columns) in _INDEXES.items():
        op.drop_index(name, table_name=table)
    op.drop_index('ix_alerts_status_created', table_name='alerts')
    op.drop_table('alerts')
