"""standard identities from their input bytes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Owned by the standards-identity work (issue 12, section 1): standards are identified by the SHA-256 of the RFC 8785nbytes of their resolved input document; existing rows are re-identified from their stored bytes.
(A placeholder until that work lands: it changes nothing yet.)
"""

from __future__ import annotations

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
