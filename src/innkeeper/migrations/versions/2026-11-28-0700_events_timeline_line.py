"""events: each event's line of the guest timeline, stored with it

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 07:00:00.000000

A guest timeline shows every event of the guest's last 100 sessions (5,000 in the reads benchmark). Reading six
columns of each and building its line in Python took most of the timeline's time; ``events.line`` holds the line
as JSON (``sessions.repository.timeline_line``, written with the row: an event never changes), so the timeline
reads one column of each and decodes them together. Existing rows are filled here by the database itself, with
the same JSON as ``timeline_line`` writes (key order and spacing aside).

SQLite adds the column with an empty default (``ALTER TABLE ... ADD COLUMN ... NOT NULL`` needs one; dropping it
would copy the whole table); every insert of the application names the column. PostgreSQL adds it as nullable,
fills it, then makes it NOT NULL. Filling rewrites every event row: on a large PostgreSQL database, run it at a
quiet time (``VACUUM events`` afterwards gives the old row versions' room back).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMMARY = (
    "CASE WHEN processing_status = 'FAILED' AND failure_reason IS NOT NULL AND failure_reason <> ''"
    " THEN type || ' failed: ' || failure_reason WHEN processing_status = 'FAILED' THEN type || ' failed'"
    " WHEN page IS NOT NULL AND page <> '' THEN type || ' on ' || page ELSE type END"
)
# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (sessions.repository.iso_text).
_SQLITE_FILL = (
    "UPDATE events SET line = json_object('ref', ref, 'type', type,"
    " 'createdAt', replace(substr(created_at, 1, 23), ' ', 'T') || 'Z', 'page', page,"
    f" 'processingStatus', processing_status, 'summary', {_SUMMARY})"
)
_POSTGRES_FILL = (
    "UPDATE events SET line = json_build_object('ref', ref, 'type', type,"
    """ 'createdAt', to_char(timezone('UTC', created_at), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'page', page,"""
    f" 'processingStatus', processing_status, 'summary', {_SUMMARY})::text"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("events", sa.Column("line", sa.Text(), nullable=True))
        op.execute(_POSTGRES_FILL)
        op.alter_column("events", "line", existing_type=sa.Text(), nullable=False)
        return
    op.add_column("events", sa.Column("line", sa.Text(), nullable=False, server_default=""))
    op.execute(_SQLITE_FILL)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("line")
