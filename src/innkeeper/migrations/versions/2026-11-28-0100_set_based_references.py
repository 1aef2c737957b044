"""PostgreSQL: the foreign keys of the batch import's bulk tables become set-based triggers

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 01:00:00.000000

PostgreSQL checks a foreign key once per inserted row (a query, and a lock of the parent row): about 40% of a
large import went there. These seven references (``core.db.bulk_reference``) are checked instead by
statement-level triggers that read the statement's new rows as a whole (transition tables):

- on the referring table, after INSERT or UPDATE: the statement's distinct non-null references (for an UPDATE,
  the ones it introduced) are locked ``FOR KEY SHARE`` in one query, as the row-by-row check locks each; any
  that is missing fails the statement;
- on the referred table, after DELETE: a deleted key still referred to fails the statement; a referred key
  cannot change (``guests.ref`` / ``orders.ref`` never do).

Both raise SQLSTATE 23503 (``foreign_key_violation``) with PostgreSQL's own message shape, so callers see the
same error as before. Locking the parents first and checking them in a later statement of the function (a
fresh snapshot under READ COMMITTED) gives the foreign key's behaviour under concurrency: a parent deleted
concurrently is found missing, and a delete waits for the writer holding the lock, then sees its rows.
SQLite keeps its constraints (its check costs an index lookup per row).
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

CHECK_REFERENCES = """
CREATE FUNCTION innkeeper_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV: the constraint's name, the referring column, the referred table, its key column.
DECLARE
    wanted text[];
    locked integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('SELECT array(SELECT DISTINCT %1$I FROM new_rows WHERE %1$I IS NOT NULL)', TG_ARGV[1])
            INTO wanted;
    ELSE
        EXECUTE format('SELECT array(SELECT %1$I FROM new_rows WHERE %1$I IS NOT NULL'
                       ' EXCEPT SELECT %1$I FROM old_rows)', TG_ARGV[1])
            INTO wanted;
    END IF;
    IF cardinality(wanted) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %1$I p WHERE p.%2$I = ANY($1) FOR KEY SHARE OF p) k',
                   TG_ARGV[2], TG_ARGV[3])
        INTO locked USING wanted;
    IF locked < cardinality(wanted) THEN
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[0],
                  DETAIL = format('A key is not present in table "%s".', TG_ARGV[2]);
    END IF;
    RETURN NULL;
END
$$
"""

CHECK_REFERRERS = """
CREATE FUNCTION innkeeper_check_referrers() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV: the constraint's name, the referring table, its column, the key column of this table.
DECLARE
    gone text[];
    referred boolean;
BEGIN
    EXECUTE format('SELECT array(SELECT %1$I FROM old_rows)', TG_ARGV[3]) INTO gone;
    IF cardinality(gone) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I c WHERE c.%2$I = ANY($1))', TG_ARGV[1], TG_ARGV[2])
        INTO referred USING gone;
    IF referred THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
                TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1]
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_ARGV[1], CONSTRAINT = TG_ARGV[0],
                  DETAIL = format('A key is still referenced from table "%s".', TG_ARGV[1]);
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
    op.execute(CHECK_REFERENCES)
    op.execute(CHECK_REFERRERS)
    op.execute(FIXED_KEY)
    for table, column, parent in REFERENCES:
        name = _name(table, column, parent)
        op.drop_constraint(name, table, type_="foreignkey")
        args = f"'{name}', '{column}', '{parent}', 'ref'"
        op.execute(
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION innkeeper_check_references({args})"
        )
        op.execute(
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION innkeeper_check_references({args})"
        )
        op.execute(
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {parent} REFERENCING OLD TABLE AS old_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION innkeeper_check_referrers('{name}', '{table}', '{column}', 'ref')"
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
        op.create_foreign_key(name, table, parent, [column], ["ref"])
    for function in ("innkeeper_check_references", "innkeeper_check_referrers", "innkeeper_fixed_key"):
        op.execute(f"DROP FUNCTION {function}()")
