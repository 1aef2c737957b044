"""PostgreSQL: the foreign keys of the batch import's bulk tables become set-based triggers

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 01:00:00.000000

PostgreSQL checks a foreign key once per inserted row (a query, and a lock of the parent row): about 40% of a
large import went there. These seven references (``core.db.bulk_reference``) are checked instead by triggers,
one set of three per reference, with the constraint's name:

- ``<name>_insert``, after INSERT, per statement: the statement's distinct non-null references (read from its new
  rows, a transition table) are locked ``FOR KEY SHARE`` in one query, as the row-by-row check locks each; any
  that is missing fails the statement;
- ``<name>_update``, after an UPDATE that changes the reference, per row (``WHEN``: other updates cost nothing):
  the new parent locked and checked, as the foreign key does;
- ``<name>_delete``, after DELETE on the referred table, per statement: a deleted key still referred to fails
  the statement. A referred key cannot change (``<table>_fixed_ref``: ``guests.ref`` / ``orders.ref`` never do).

All raise SQLSTATE 23503 (``foreign_key_violation``) with PostgreSQL's own message shape, so callers see the
same error as before. Locking the parents first and checking them in a later statement of the function (a
fresh snapshot under READ COMMITTED) gives the foreign key's behaviour under concurrency: a parent deleted
concurrently is found missing, and a delete waits for the writer holding the lock, then sees its rows. The
functions are written per reference with static SQL, so PL/pgSQL keeps their plans. SQLite keeps its
constraints (its check costs an index lookup per row).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (referring table, column, referred table): the references the batch import writes in bulk.
REFERENCES = (
    ("guest_identifiers", "guest_ref", "guests"),
    ("guest_extensions", "guest_ref", "guests"),
    ("orders", "guest_ref", "guests"),
    ("order_contacts", "guest_ref", "guests"),
    ("order_contacts", "order_ref", "orders"),
    ("order_items", "order_ref", "orders"),
    ("order_extensions", "order_ref", "orders"),
)
PARENTS = ("guests", "orders")

# A reference to no row: the foreign key's error.
REFUSED = """        RAISE EXCEPTION 'insert or update on table "{table}" violates foreign key constraint "{name}"'
            USING ERRCODE = 'foreign_key_violation', TABLE = '{table}', CONSTRAINT = '{name}',
                  DETAIL = 'A key is not present in table "{parent}".';
"""

INSERTED = """
CREATE FUNCTION {name}_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted text[] := array(SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL);
    locked integer;
BEGIN
    IF cardinality(wanted) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO locked FROM (SELECT 1 FROM {parent} p WHERE p.ref = ANY(wanted) FOR KEY SHARE OF p) k;
    IF locked < cardinality(wanted) THEN
{refused}    END IF;
    RETURN NULL;
END
$$
"""

UPDATED = """
CREATE FUNCTION {name}_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {parent} p WHERE p.ref = NEW.{column} FOR KEY SHARE OF p;
    IF NOT FOUND THEN
{refused}    END IF;
    RETURN NULL;
END
$$
"""

DELETED = """
CREATE FUNCTION {name}_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {table} c WHERE c.{column} = ANY(array(SELECT ref FROM old_rows))) THEN
        RAISE EXCEPTION
            'update or delete on table "{parent}" violates foreign key constraint "{name}" on table "{table}"'
            USING ERRCODE = 'foreign_key_violation', TABLE = '{table}', CONSTRAINT = '{name}',
                  DETAIL = 'A key is still referenced from table "{table}".';
    END IF;
    RETURN NULL;
END
$$
"""

FIXED_KEY = """
CREATE FUNCTION innkeeper_fixed_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update on table "%" changes a key other tables refer to', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END
$$
"""


def _name(table: str, column: str, parent: str) -> str:
    return f"fk_{table}_{column}_{parent}"  # the naming convention's (core.db.NAMING_CONVENTION)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FIXED_KEY)
    for table, column, parent in REFERENCES:
        name = _name(table, column, parent)
        op.drop_constraint(name, table, type_="foreignkey")
        names = {"name": name, "table": table, "column": column, "parent": parent}
        for function in (INSERTED, UPDATED, DELETED):
            op.execute(function.format(refused=REFUSED.format(**names), **names))
        op.execute(
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}_insert()"
        )
        op.execute(
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {column} ON {table} FOR EACH ROW"
            f" WHEN (NEW.{column} IS NOT NULL AND NEW.{column} IS DISTINCT FROM OLD.{column})"
            f" EXECUTE FUNCTION {name}_update()"
        )
        op.execute(
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {parent} REFERENCING OLD TABLE AS old_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}_delete()"
        )
    for parent in PARENTS:
        op.execute(
            f"CREATE TRIGGER {parent}_fixed_ref BEFORE UPDATE OF ref ON {parent}"
            " FOR EACH ROW WHEN (OLD.ref IS DISTINCT FROM NEW.ref) EXECUTE FUNCTION innkeeper_fixed_key()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for parent in PARENTS:
        op.execute(f"DROP TRIGGER {parent}_fixed_ref ON {parent}")
    for table, column, parent in REFERENCES:
        name = _name(table, column, parent)
        for suffix, on in (("insert", table), ("update", table), ("delete", parent)):
            op.execute(f"DROP TRIGGER {name}_{suffix} ON {on}")
            op.execute(f"DROP FUNCTION {name}_{suffix}()")
        op.create_foreign_key(name, table, parent, [column], ["ref"])
    op.execute("DROP FUNCTION innkeeper_fixed_key()")
