"""review decisions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The ``review_decisions`` table (issue 14, section 1): a person settles a ``review`` record as pass or fail
with a reason; the decision is a new append-only row (its own RFC 8785 document and SHA-256, naming the
record's ``record_sha256``) and the record keeps its automatic verdict (``service/core/reviews.py``). A
later decision on the same record takes the next ``revision``; the unique pair makes two people deciding
at once a conflict for one of them instead of two decisions that both claim to supersede the same one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_TABLE = "review_decisions"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(_TABLE,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_seq', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document', JSON, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['submission_seq'], ['submissions.seq'], ),
    sa.ForeignKeyConstraint(['token_id'], ['access_tokens.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_seq', 'revision', name='uq_review_decisions_submission_revision')
    )
    # Append-only, as 0001 guards the records: the function kipimo_refuse_change() is 0001's.
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {_TABLE}_append_only BEFORE UPDATE OR DELETE ON {_TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION kipimo_refuse_change()")
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {_TABLE}_no_{verb.lower()} BEFORE {verb} ON {_TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, 'kipimo: {verb} on {_TABLE} refused: rows are append-only'); END")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_TABLE}_append_only ON {_TABLE}")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {_TABLE}_no_{verb}")
    op.drop_table(_TABLE)
