"""Migrations: the models never drift from them, and several processes may apply them at
once (CONTRACT §1: `crm serve` migrates first, safe with several workers or nodes)."""

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from crm.accounts.models import Account
from crm.db import async_url, create_engine
from crm.lead_sources.models import LeadSource
from crm.leads.models import Lead
from crm.migrations import alembic_config
from crm.orgs.models import Org, Profile, User
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


def test_numbers_and_folded_copies_are_given_to_existing_rows(empty_database: str) -> None:
    """Migration 0010 on a database with rows: each record gets a number past every number
    given before (users', lead sources'), each unique column its folded copy; new rows go on
    from there, the unique rules hold, and the migration goes down and up again."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0009")
    org_id, profile_id, user_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def write_before() -> None:
        engine = create_engine(empty_database)
        async with engine.begin() as conn:
            await conn.execute(insert(Org.__table__).values(id=org_id, name="Old"))
            await conn.execute(
                insert(User.__table__).values(
                    id=user_id, number=40, email="old@x.test", password_hash="-"
                )
            )
            await conn.execute(
                insert(Profile.__table__).values(
                    org_id=org_id, id=profile_id, user_id=user_id, role="admin", is_active=True
                )
            )
            await conn.execute(
                insert(LeadSource.__table__).values(
                    org_id=org_id, id=41, name="ẞÜD", created_by_id=profile_id
                )
            )
            for email in ("ÉMILE@x.test", "other@x.test"):
                await conn.execute(
                    insert(Lead.__table__).values(org_id=org_id, title="Old", email=email)
                )
            await conn.execute(insert(Account.__table__).values(org_id=org_id, name="GROẞE"))
        await engine.dispose()

    async def read_after() -> dict[str, list[Any]]:
        engine = create_engine(empty_database)
        async with engine.begin() as conn:
            leads = (await conn.execute(text("SELECT number, email_folded FROM leads"))).all()
            account = (await conn.execute(text("SELECT number, name_folded FROM accounts"))).one()
            source = await conn.scalar(text("SELECT name_folded FROM lead_sources"))
            await conn.execute(insert(Lead.__table__).values(org_id=org_id, title="New"))
            new = await conn.scalar(text("SELECT max(number) FROM leads"))
        async with engine.begin() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(
                    insert(Lead.__table__).values(org_id=org_id, title="New", email="émile@X.test")
                )
        await engine.dispose()
        return {"leads": sorted(leads), "account": [*account], "source": [source], "new": [new]}

    asyncio.run(write_before())
    command.upgrade(config, "head")
    after = asyncio.run(read_after())
    numbers = [number for number, _ in after["leads"]] + [after["account"][0]]
    assert len(set(numbers)) == 3 and min(numbers) > 41
    assert sorted(folded for _, folded in after["leads"]) == ["other@x.test", "émile@x.test"]
    assert after["account"][1] == "große" and after["source"] == ["ßüd"]
    assert after["new"] == [max(numbers) + 1]
    command.downgrade(config, "0009")
    command.upgrade(config, "head")
