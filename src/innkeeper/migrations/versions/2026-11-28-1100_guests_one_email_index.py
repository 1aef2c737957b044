"""guests: drop ix_guests_email (ix_guests_email_lower serves the exact lookups too)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The two exact lookups by email (the REST search's email_exact, the batch import's email fallback) now say
    # `lower(email) = lower(:email) AND coalesce(email, '') = :email` and walk ix_guests_email_lower like every email
    # lookup; the plain index only cost its upkeep on every guest written (a random page of it per imported guest).
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.drop_index("ix_guests_email")


def downgrade() -> None:
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.create_index("ix_guests_email", ["email"], unique=False)
