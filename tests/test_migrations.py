"""Migrations: the models never drift from them, and several processes may apply them at
once (CONTRACT §1: `crm serve` migrates first, safe with several workers or nodes)."""

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm.db import async_url
from crm.migrations import alembic_config
from tests.conftest import TEST_DATABASE_URL, _admin
from tests.servers import CRM


# SQLite cannot reflect an expression-based index (lower(name)); both libraries say so, and
# the comparison leaves such an index out on SQLite. PostgreSQL compares it.
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index",
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning",
)
async def test_models_match_the_migrations(database_url: str) -> None:
    """`alembic check`: autogenerate finds nothing to add, drop or change."""
    await asyncio.to_thread(command.check, alembic_config(database_url))


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, of the kind the session uses."""
    if TEST_DATABASE_URL is None:
        yield f"sqlite:///{tmp_path}/fresh.sqlite3"
        return
    name = f"crm_migrate_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(TEST_DATABASE_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(TEST_DATABASE_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))


def current_revisions(url: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
                tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        finally:
            await engine.dispose()
        assert {"orgs", "users", "profiles", "tokens"} <= set(tables)
        return [row[0] for row in rows]

    return asyncio.run(read())


def test_concurrent_crm_migrate_on_a_fresh_database(empty_database: str) -> None:
    """Two `crm migrate` processes at once on an empty database: both succeed and the
    database ends at head, once."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env["CRM_DATABASE_URL"] = empty_database
    processes = [
        subprocess.Popen(
            [str(CRM), "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()
    assert current_revisions(empty_database) == [head_revision()]
