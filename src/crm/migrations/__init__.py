"""Alembic migrations, shipped inside the package, and the one function that applies them."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from filelock import FileLock

from crm.db import DatabaseUrlError, check_database_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Apply pending migrations; safe when several processes start at once: PostgreSQL takes
    an advisory lock (in env.py), SQLite a lock file beside the database."""
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
