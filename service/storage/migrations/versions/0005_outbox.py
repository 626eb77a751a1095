"""outbox for post-commit work

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Owned by the outbox work (issue 12, section 4): post-commit work (alerts, webhook) written in the submission'sntransaction and drained with retries.
(A placeholder until that work lands: it changes nothing yet.)
"""

from __future__ import annotations

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
