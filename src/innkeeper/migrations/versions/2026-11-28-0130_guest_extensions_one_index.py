"""guest_extensions: drop ix_guest_extensions_guest_ref (uq_guest_extensions_guest_name leads with guest_ref)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 01:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every read of a guest's extensions (by guest_ref, by guest_ref and name, ordered by both) and the
    # reference check of a guest's delete use the unique index on (guest_ref, name); the second index only cost
    # its upkeep on every write (one index entry per imported guest).
    with op.batch_alter_table("guest_extensions", schema=None) as batch_op:
        batch_op.drop_index("ix_guest_extensions_guest_ref")


def downgrade() -> None:
    with op.batch_alter_table("guest_extensions", schema=None) as batch_op:
        batch_op.create_index("ix_guest_extensions_guest_ref", ["guest_ref"], unique=False)
