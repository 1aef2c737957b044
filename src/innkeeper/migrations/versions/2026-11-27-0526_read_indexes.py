"""read indexes: case-insensitive guest email lookups

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 05:26:00.321538
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The REST search (?email=) and personalization's find-by-email match lower(email) = lower(:value);
    # without an index on the expression that is a full scan of the guests. NB SQLite cannot reflect
    # expression indexes: a later batch migration that re-creates `guests` must create this one again.
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.create_index("ix_guests_email_lower", [sa.text("lower(email)")], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guests", schema=None) as batch_op:
        batch_op.drop_index("ix_guests_email_lower")
