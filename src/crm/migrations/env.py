"""Runs migrations online with the app's own async engine."""

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from crm.db import NUMBERS, create_engine
from crm.migrations import BEFORE
from crm.models import Base
from crm.records.models import POSTGRESQL_ONLY_PREFIX

# Any fixed number: every process that migrates takes the same PostgreSQL advisory lock.
MIGRATION_LOCK_KEY = 726_134_001


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """PostgreSQL-only indexes (GIN, trigram) and columns (the stored search text) are made
    by hand in migrations, and so is SQLite's counter of numbers (PostgreSQL's is a
    sequence); the schema comparison leaves them out."""
    if type_ == "table" and name == NUMBERS:
        return False
    return not (type_ in ("index", "column") and name and name.startswith(POSTGRESQL_ONLY_PREFIX))


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
        # Read under the lock: what this process found, not what another one had applied.
        context.config.attributes[BEFORE] = context.get_context().get_current_revision()
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(context.config.attributes["database_url"], poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


asyncio.run(run_online())
