"""Alembic migrations, shipped inside the package: applying them, and where a database is."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock

from crm.db import DatabaseUrlError, check_database_url, create_engine

HERE = Path(__file__).parent
# The attribute env.py sets: the revision the database was at when the upgrade began.
BEFORE = "revision_before"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> str | None:
    """Apply pending migrations; safe when several processes start at once: PostgreSQL takes
    an advisory lock (in env.py), SQLite a lock file beside the database. Answers the
    revision the database was at before (None: never migrated)."""
    url = check_database_url(database_url)
    config = alembic_config(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        # The lock file would make the directory tree, and a typo would serve an empty database.
        directory = Path(url.database).parent
        if not directory.is_dir():
            raise DatabaseUrlError(f"the directory {str(directory)!r} does not exist")
        with FileLock(f"{url.database}.migrate.lock"):
            command.upgrade(config, "head")
    else:
        command.upgrade(config, "head")
    return config.attributes.get(BEFORE)


def head_revision() -> str:
    """The revision the code's schema is at."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def database_revision(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated), without changing anything
    (an SQLite file that does not exist is not made)."""
    url = check_database_url(database_url)
    in_a_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if in_a_file and not Path(str(url.database)).is_file():
        raise DatabaseUrlError(f"the SQLite file {url.database!r} does not exist")

    async def read() -> str | None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
