"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Tables for nodes, tokens, products, standards, models, lots, submissions,
photos, check results and the audit log. Triggers make records and the audit
log append-only and standards' content immutable, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# Records and the audit log are append-only; a published standard's content never changes.
_FROZEN = ("audit_events", "submissions", "photos", "check_results")
_STANDARD_FIELDS = ("product_id", "version", "content", "sha256", "released_at", "released_by")


def _create_guards() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION kipimo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'kipimo: % on % refused: rows are append-only', TG_OP, TG_TABLE_NAME;
            END $$
            """
        )
        for table in _FROZEN:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kipimo_refuse_change()"
            )
        op.execute(
            f"CREATE TRIGGER standards_immutable BEFORE UPDATE OF {', '.join(_STANDARD_FIELDS)} OR DELETE "
            "ON standards FOR EACH ROW EXECUTE FUNCTION kipimo_refuse_change()"
        )
        return
    for table in _FROZEN:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'kipimo: {verb} on {table} refused: rows are append-only'); END"
            )
    op.execute(
        f"CREATE TRIGGER standards_immutable BEFORE UPDATE OF {', '.join(_STANDARD_FIELDS)} ON standards "
        "BEGIN SELECT RAISE(ABORT, 'kipimo: a published standard cannot change'); END"
    )
    op.execute(
        "CREATE TRIGGER standards_no_delete BEFORE DELETE ON standards "
        "BEGIN SELECT RAISE(ABORT, 'kipimo: a published standard cannot be deleted'); END"
    )


def _drop_guards() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in _FROZEN:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP TRIGGER IF EXISTS standards_immutable ON standards")
        op.execute("DROP FUNCTION IF EXISTS kipimo_refuse_change()")
        return
    for table in _FROZEN:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.execute("DROP TRIGGER IF EXISTS standards_immutable")
    op.execute("DROP TRIGGER IF EXISTS standards_no_delete")


def upgrade() -> None:
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('task', sa.String(length=32), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_models_name_version')
    )
    op.create_table('nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('access_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=False),
    sa.Column('detail', JSON, nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_events_subject', 'audit_events', ['subject_type', 'subject_id'], unique=False)

    op.create_table('lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('node_id', 'product_id', 'code', name='uq_lots_node_product_code')
    )
    op.create_table('standards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('product_id', 'version', name='uq_standards_product_version')
    )
    op.create_table('submissions',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('standard_id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=True),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.Column('technician', sa.String(length=200), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('minor_defects', sa.Integer(), nullable=False),
    sa.Column('answers', JSON, nullable=False),
    sa.Column('record', JSON, nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('record_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], ),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.ForeignKeyConstraint(['standard_id'], ['standards.id'], ),
    sa.ForeignKeyConstraint(['token_id'], ['access_tokens.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    op.create_index('ix_submissions_node_seq', 'submissions', ['node_id', 'seq'], unique=False)
    op.create_index('ix_submissions_product_seq', 'submissions', ['product_id', 'seq'], unique=False)
    op.create_index('ix_submissions_received_at', 'submissions', ['received_at'], unique=False)

    op.create_table('check_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_seq', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('detail', JSON, nullable=False),
    sa.ForeignKeyConstraint(['submission_seq'], ['submissions.seq'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_seq', 'position', name='uq_results_submission_position')
    )
    op.create_table('photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_seq', sa.Integer(), nullable=False),
    sa.Column('slot', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('overlay_sha256', sa.String(length=64), nullable=True),
    sa.Column('findings', JSON, nullable=False),
    sa.ForeignKeyConstraint(['submission_seq'], ['submissions.seq'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_seq', 'slot', name='uq_photos_submission_slot')
    )
    op.create_index('ix_photos_overlay_sha256', 'photos', ['overlay_sha256'], unique=False)
    op.create_index('ix_photos_sha256', 'photos', ['sha256'], unique=False)
    _create_guards()


def downgrade() -> None:
    _drop_guards()
    op.drop_index('ix_photos_sha256', table_name='photos')
    op.drop_index('ix_photos_overlay_sha256', table_name='photos')

    op.drop_table('photos')
    op.drop_table('check_results')
    op.drop_index('ix_submissions_received_at', table_name='submissions')
    op.drop_index('ix_submissions_product_seq', table_name='submissions')
    op.drop_index('ix_submissions_node_seq', table_name='submissions')

    op.drop_table('submissions')
    op.drop_table('standards')
    op.drop_table('lots')
    op.drop_index('ix_audit_events_subject', table_name='audit_events')

    op.drop_table('audit_events')
    op.drop_table('access_tokens')
    op.drop_table('products')
    op.drop_table('nodes')
    op.drop_table('models')
