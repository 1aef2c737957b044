"""events: index (session_ref, created_at, ref) instead of (session_ref)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The guest timeline reads every event of the guest's last 100 sessions, each session's in
    # (created_at, ref) order: this index hands them over in that order without a sort (a guest can have
    # thousands; SQLite walks it for `IN (…)`, PostgreSQL once per session). It serves everything the
    # single-column index did (session_ref leads).
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_session_created", ["session_ref", "created_at", "ref"], unique=False)
        batch_op.drop_index("ix_events_session_ref")


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_session_ref", ["session_ref"], unique=False)
        batch_op.drop_index("ix_events_session_created")
