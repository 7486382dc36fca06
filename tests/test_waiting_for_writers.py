"""A write that waits for another transaction's writes (a key it holds uncommitted, its rows,
SQLite's write lock) longer than db.WAIT_FOR_WRITERS_SECONDS is answered 409, to try again,
in the dialect's envelope: never a 503 that says the database is away, never a connection
left busy for the next request. Nothing of the refused request is written."""

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import crm.db
from crm.db import async_url
from crm.leads.models import Lead
from tests.apps import client_of, fresh_app
from tests.conftest import TEST_DATABASE_URL, World, unique_email
from tests.test_upload import KEYED, csv_text, report, upload

LEADS = KEYED[0]


@asynccontextmanager
async def another_writer(database_url: str, lead_id: str, email: str) -> AsyncIterator[None]:
    """Another transaction that gives a lead `email` and neither commits nor ends while the
    block runs (on SQLite it holds the write lock, as any writer does); rolled back after."""
    if TEST_DATABASE_URL is None:
        path = make_url(database_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            record = uuid.UUID(lead_id)
            await connection.execute(update(Lead).where(Lead.id == record).values(email=email))
            yield
            await connection.rollback()
    finally:
        await engine.dispose()


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["Retry-After"] == "1"
    detail = response.json()["errors"]["detail"]
    assert "Another request is writing the same records" in detail
    assert response.headers["X-Request-Id"] in detail


async def test_a_write_waiting_too_long_for_another_is_a_409_and_writes_nothing(
    database_url: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crm.db, "WAIT_FOR_WRITERS_SECONDS", 1)
    taken, fresh = unique_email("taken"), unique_email("fresh")
    content = csv_text("title,email", f"Taken,{taken}", f"Fresh,{fresh}")
    async with client_of(fresh_app(database_url)) as api:
        created = await api.post(
            LEADS.url,
            json={"title": "Held", "email": unique_email("held")},
            headers=world.admin.headers,
        )
        assert created.status_code == 201, created.text
        attempts: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: upload(api, world.admin, LEADS, content),
            lambda: api.post(
                LEADS.url, json={"title": "Taken", "email": taken}, headers=world.admin.headers
            ),
        ]
        async with another_writer(database_url, created.json()["id"], taken):
            for attempt in attempts:
                assert_busy(await attempt())
            # Reading goes on meanwhile, and another org's work too on PostgreSQL.
            listed = await api.get(LEADS.url, params={"search": fresh}, headers=world.admin.headers)
            assert (listed.status_code, listed.json()["count"]) == (200, 0)
        # The connections are in order, and nothing of the refused requests was written.
        for who in (world.admin, world.other):
            for email in (taken, fresh):
                found = await api.get(LEADS.url, params={"search": email}, headers=who.headers)
                assert (found.status_code, found.json()["count"]) == (200, 0), found.text
        body = report(await upload(api, world.admin, LEADS, content))
        assert [entry["row"] for entry in body["created"]] == [2, 3]
        seen = await api.get(LEADS.url, params={"search": fresh}, headers=world.other.headers)
        assert seen.json()["count"] == 0
