"""numbers and stored folding: every record's `number`, unique server-wide, taken at insert
by the database from one allocator (crm.db.next_numbers's, which lead sources' ids and
users' numbers now come from too); each column unique whatever its case stored folded and
its unique index on that copy, so that the index holds in the data itself and not in the
lower() that only the app installs on SQLite (SQLite's own tools check and rebuild an index
on lower(email) with their ASCII lower())

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NUMBERS = "numbers"  # crm.db.NUMBERS
RECORDS = ("leads", "contacts", "accounts", "opportunities", "tasks")
# Each table's column unique whatever its case, and whether the rule is among live records.
FOLDED = {"leads": "email", "contacts": "email", "accounts": "name", "lead_sources": "name"}
LIVE = {"leads": True, "contacts": True, "accounts": True, "lead_sources": False}
ICU = '"und-x-icu"'  # crm.db.ICU_ROOT
OLD_SEQUENCES = ("users_number_seq", "lead_sources_id_seq")


def unique_index(table: str, indexed: str) -> None:
    column = FOLDED[table]
    where = " WHERE deleted_at IS NULL" if LIVE[table] else ""
    op.execute(f"DROP INDEX uq_{table}_org_id_{column}")
    op.execute(
        f"CREATE UNIQUE INDEX uq_{table}_org_id_{column} ON {table} (org_id, {indexed}){where}"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        upgrade_postgresql()
    else:
        upgrade_sqlite()


def upgrade_postgresql() -> None:
    # One sequence past every number given so far, by either of the two it replaces.
    op.execute(f"CREATE SEQUENCE {NUMBERS}")
    op.execute(
        f"SELECT setval('{NUMBERS}', greatest("
        "(SELECT coalesce(max(number), 0) FROM users),"
        "(SELECT coalesce(max(id), 0) FROM lead_sources),"
        "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM users_number_seq),"
        "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lead_sources_id_seq)"
        ") + 1, false)"
    )
    for sequence in OLD_SEQUENCES:
        op.execute(f"DROP SEQUENCE {sequence}")
    for table in RECORDS:
        # The volatile default numbers the existing rows too, as the table is rewritten.
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN number bigint NOT NULL DEFAULT nextval('{NUMBERS}')"
        )
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_number ON {table} (number)")
    for table, column in FOLDED.items():
        # Generated: whatever writes the row (the app, a COPY), its folded copy follows;
        # folded as crm.db.folded folds on PostgreSQL, and in its collation, which the
        # comparisons with folded values use (so they can use the index).
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column}_folded text COLLATE {ICU}"
            f" GENERATED ALWAYS AS (lower(({column}) COLLATE {ICU})) STORED"
        )
        unique_index(table, f"{column}_folded")


def upgrade_sqlite() -> None:
    # Migrations run on the app's engine, whose connections fold with Python's str.lower
    # (crm.db.create_engine): the backfill and the triggers fold as the app does.
    op.execute(f"CREATE TABLE {NUMBERS} (last BIGINT NOT NULL)")
    op.execute(
        f"INSERT INTO {NUMBERS} (last) SELECT max("
        "(SELECT coalesce(max(number), 0) FROM users),"
        "(SELECT coalesce(max(id), 0) FROM lead_sources))"
    )
    for table in RECORDS:
        # 0 until the trigger below numbers the row, in the same statement.
        op.execute(f"ALTER TABLE {table} ADD COLUMN number BIGINT NOT NULL DEFAULT 0")
        op.execute(
            f"UPDATE {table} SET number = ranked.number FROM (SELECT rowid AS row,"
            f" (SELECT last FROM {NUMBERS}) + row_number() OVER (ORDER BY rowid) AS number"
            f" FROM {table}) AS ranked WHERE {table}.rowid = ranked.row"
        )
        op.execute(f"UPDATE {NUMBERS} SET last = last + (SELECT count(*) FROM {table})")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_number ON {table} (number)")
    for table, column in FOLDED.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column}_folded TEXT")
        op.execute(f"UPDATE {table} SET {column}_folded = lower({column})")
        unique_index(table, f"{column}_folded")
        op.execute(
            f"CREATE TRIGGER {table}_{column}_changed AFTER UPDATE OF {column} ON {table}"
            f" BEGIN UPDATE {table} SET {column}_folded = lower(NEW.{column})"
            " WHERE rowid = NEW.rowid; END"
        )
    # A new row: its number (a record's) and its folded copy, in one write of the row.
    for table in (*RECORDS, *(table for table in FOLDED if table not in RECORDS)):
        sets = [f"number = (SELECT last FROM {NUMBERS})"] if table in RECORDS else []
        if table in FOLDED:
            sets.append(f"{FOLDED[table]}_folded = lower(NEW.{FOLDED[table]})")
        numbered = f"UPDATE {NUMBERS} SET last = last + 1; " if table in RECORDS else ""
        op.execute(
            f"CREATE TRIGGER {table}_inserted AFTER INSERT ON {table} BEGIN {numbered}"
            f"UPDATE {table} SET {', '.join(sets)} WHERE rowid = NEW.rowid; END"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, column in FOLDED.items():
        if not postgresql:
            op.execute(f"DROP TRIGGER {table}_inserted")
            op.execute(f"DROP TRIGGER {table}_{column}_changed")
        folding = f"lower(({column}) COLLATE {ICU})" if postgresql else f"lower({column})"
        unique_index(table, folding)
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}_folded")
    for table in RECORDS:
        if not postgresql and table not in FOLDED:
            op.execute(f"DROP TRIGGER {table}_inserted")
        op.execute(f"DROP INDEX uq_{table}_number")
        op.execute(f"ALTER TABLE {table} DROP COLUMN number")
    if postgresql:
        for sequence in OLD_SEQUENCES:
            op.execute(f"CREATE SEQUENCE {sequence}")
            op.execute(f"SELECT setval('{sequence}', nextval('{NUMBERS}'))")
        op.execute(f"DROP SEQUENCE {NUMBERS}")
    else:
        op.execute(f"DROP TABLE {NUMBERS}")
