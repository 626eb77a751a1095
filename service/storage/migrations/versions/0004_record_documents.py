"""record documents: the whole record under its hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Owned by the record-hash work (issue 12, section 1): the exact canonical document each record's hash covers.
(A placeholder until that work lands: it changes nothing yet.)
"""

from __future__ import annotations

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
