"""sessions: the sweeper finds OPEN sessions by sweep_at, a column events do not change

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 05:00:00.000000

Every event moves its session's ``expires_at``. While ``expires_at`` was indexed (``ix_sessions_open_expiry``),
PostgreSQL could not update the session row in place: each event's UPDATE wrote a new row version with a new
entry in every index of ``sessions`` (five). ``sweep_at`` is a lower bound of the expiry that events leave
alone (they only ever bring it earlier, with an expiry that moves earlier); the sweeper closes the OPEN sessions
whose ``sweep_at`` and ``expires_at`` have both passed, and moves ``sweep_at`` up to ``expires_at`` for those
still active, once per timeout at most. PostgreSQL's per-event UPDATE is then a HOT update (no index entry),
which needs room on the row's page: ``sessions`` keeps a fifth of each page free (``fillfactor``). The new
index's predicate names ``sweep_at`` so that only the sweeper's query can use it: the expiry index, on
``status = 'OPEN'`` alone, was also taken for a browser's OPEN sessions (a walk over all of them, ~4 ms) while
the table was young and its statistics thin.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import innkeeper.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'OPEN'")
# Not "status = 'OPEN'" alone: a query for a browser's OPEN sessions could then walk this index whole
# (``Session.__table_args__``).
_DUE = sa.text("status = 'OPEN' AND sweep_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep_at", innkeeper.core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE sessions SET sweep_at = expires_at")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("sweep_at", existing_type=innkeeper.core.db.UTCDateTime(timezone=True), nullable=False)
        batch_op.drop_index("ix_sessions_open_expiry")
        batch_op.create_index(
            "ix_sessions_open_sweep", ["sweep_at"], unique=False, sqlite_where=_DUE, postgresql_where=_DUE
        )
    if op.get_bind().dialect.name == "postgresql":
        # Applies to pages written from now on; VACUUM FULL or CLUSTER would rewrite the existing ones.
        op.execute("ALTER TABLE sessions SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sessions RESET (fillfactor)")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_open_sweep", sqlite_where=_DUE, postgresql_where=_DUE)
        batch_op.create_index(
            "ix_sessions_open_expiry", ["expires_at"], unique=False, sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.drop_column("sweep_at")
