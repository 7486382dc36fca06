"""CSV uploads racing other writes of the same natural keys against `crm serve --workers 2`:
two uploads sharing keys, and an upload racing JSON creates and reads. Every request gets an
answer (never a 5xx), no key ends up twice, and every row of each file is accounted for."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from crm.db import async_url
from crm.leads.models import Lead
from tests.conftest import TEST_DATABASE_URL, Identity, World, unique_email
from tests.openapi_check import hooks
from tests.servers import crm_server, server_log
from tests.test_upload import (
    KEYED,
    Entity,
    assert_unseen_by_other_org,
    csv_text,
    ids,
    records,
    report,
    upload,
)

ROUNDS = 3
SHARED = 300  # keys each file of a pair shares with the other
FILE_ROWS = 600
JSON_CREATES = 20
DEADLINE_SECONDS = 120  # against a hang; a loaded machine imports slowly


def key_of(entity: Entity, run: str, n: int) -> str:
    return f"k-{run}-{n}@example.com" if entity.key == "email" else f"Firm {run} {n}"


def body_of(entity: Entity, key: str) -> dict[str, str]:
    assert entity.key is not None
    base = {entity.required: "Made"} if entity.key != entity.required else {}
    return {**base, entity.key: key}


def file_of(entity: Entity, keys: list[str]) -> bytes:
    if entity.key == entity.required:
        return csv_text(f"{entity.key},tags", *[f"{key},up" for key in keys])
    return csv_text(f"{entity.required},{entity.key},tags", *[f"Up,{key},up" for key in keys])


async def keys_in_org(
    client: httpx.AsyncClient, who: Identity, entity: Entity, run: str
) -> list[str]:
    """The natural keys of the org's records made in this round, one entry per record."""
    assert entity.key is not None
    found: list[str] = []
    url: str | None = entity.url
    params: dict[str, str] | None = {"page_size": "100"}
    while url is not None:
        response = await client.get(url, params=params, headers=who.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found += [record[entity.key] for record in page["results"] if run in record[entity.key]]
        url, params = page["next"], None
    return found


def no_server_error(base_url: str, answers: list[Any]) -> None:
    """Every request answered, none with a 5xx (else the server's log says why)."""
    failed = [
        answer
        for answer in answers
        if not isinstance(answer, httpx.Response) or answer.status_code >= 500
    ]
    assert not failed, (repr(failed[0]), server_log(base_url))


def accounted(body: dict[str, Any], rows: int) -> None:
    """Every data row answered exactly once, none refused."""
    answered = [entry["row"] for part in ("created", "updated") for entry in body[part]]
    assert body["errors"] == [] and body.get("skipped", []) == []
    assert sorted(answered) == list(range(2, rows + 2))


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_two_uploads_sharing_keys_both_succeed(
    database_url: str, world: World, entity: Entity
) -> None:
    with crm_server(database_url, workers=2, rate_limit="off") as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=DEADLINE_SECONDS, event_hooks=hooks()
        ) as client:
            for _ in range(ROUNDS):
                run = uuid.uuid4().hex[:8]
                keys = [key_of(entity, run, n) for n in range(2 * FILE_ROWS - SHARED)]
                first, second = (
                    file_of(entity, keys[:FILE_ROWS]),
                    file_of(entity, keys[-FILE_ROWS:]),
                )
                answers = await asyncio.gather(
                    upload(client, world.admin, entity, first),
                    upload(client, world.admin, entity, second),
                    return_exceptions=True,
                )
                no_server_error(base_url, answers)
                bodies = [report(answer) for answer in answers]
                for body in bodies:
                    accounted(body, FILE_ROWS)
                # Each key created once, by one of the two; the shared ones updated by the other.
                assert sum(len(body["created"]) for body in bodies) == len(keys)
                assert sum(len(body["updated"]) for body in bodies) == SHARED
                stored = await keys_in_org(client, world.admin, entity, run)
                assert sorted(stored) == sorted(keys)
                assert await keys_in_org(client, world.other, entity, run) == []


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_an_upload_racing_json_creates_and_reads_of_its_keys(
    database_url: str, world: World, entity: Entity
) -> None:
    assert entity.key is not None
    with crm_server(database_url, workers=2, rate_limit="off") as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=DEADLINE_SECONDS, event_hooks=hooks()
        ) as client:
            for _ in range(ROUNDS):
                run = uuid.uuid4().hex[:8]
                keys = [key_of(entity, run, n) for n in range(FILE_ROWS)]
                # Keys spread over the file, so that they fall into its batches.
                raced = keys[:: FILE_ROWS // JSON_CREATES]
                creates = [
                    client.post(entity.url, json=body_of(entity, key), headers=world.admin.headers)
                    for key in raced
                ]
                reads = [
                    client.get(entity.url, params={"search": run}, headers=world.admin.headers)
                    for _ in range(JSON_CREATES)
                ]
                uploaded, *others = await asyncio.gather(
                    upload(client, world.admin, entity, file_of(entity, keys)),
                    *creates,
                    *reads,
                    return_exceptions=True,
                )
                no_server_error(base_url, [uploaded, *others])
                body = report(uploaded)
                accounted(body, FILE_ROWS)
                made = [answer for answer in others[: len(raced)] if answer.status_code == 201]
                for answer in others[: len(raced)]:
                    if answer.status_code != 201:
                        # Created by the upload first: refused as any duplicate is.
                        assert answer.status_code == 400, answer.text
                        assert set(answer.json()["errors"]) == {entity.key}, answer.text
                for answer in others[len(raced) :]:
                    assert answer.status_code == 200, answer.text
                # What the JSON creates made, the upload either updated or found made.
                made_ids = {answer.json()["id"] for answer in made}
                assert made_ids <= {entry["id"] for entry in body["updated"]}
                assert len(body["created"]) == FILE_ROWS - len(made)
                stored = await keys_in_org(client, world.admin, entity, run)
                assert sorted(stored) == sorted(keys)
                assert await keys_in_org(client, world.other, entity, run) == []


async def upload_racing(
    api: httpx.AsyncClient, world: World, content: str, holder: AsyncConnection, url: str
) -> Any:
    """The upload's report, the holder's transaction committed once the upload waits on it."""
    watching = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with watching.connect() as watcher:
            uploading = asyncio.create_task(upload(api, world.admin, KEYED[0], content))
            while not await waiting_on_a_lock(watcher):
                assert not uploading.done(), uploading.result().text
            await holder.commit()
            return report(await uploading)
    finally:
        await watching.dispose()


async def waiting_on_a_lock(watcher: AsyncConnection) -> bool:
    """Whether a session of the test database waits for another's lock (this test's
    upload, the only one running)."""
    statement = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(await watcher.scalar(statement))


async def test_an_upload_started_again_after_a_lost_race_still_matches_by_id(
    api: httpx.AsyncClient, database_url: str, world: World
) -> None:
    leads = KEYED[0]
    made = {}
    for name in ("renamed", "by_id"):
        body = {"title": name, "email": unique_email(name)}
        created = await api.post(leads.url, json=body, headers=world.admin.headers)
        assert created.status_code == 201, created.text
        made[name] = created.json()
    taken, fresh = unique_email("taken"), unique_email("fresh")
    content = csv_text(
        "id,title,email",
        f"{made['by_id']['id']},By id,",
        f",Taken,{taken}",
        f",Fresh,{fresh}",
    )
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as holder:
            # Another transaction gives a lead the file's key `taken`, not committed yet.
            renamed = uuid.UUID(made["renamed"]["id"])
            await holder.execute(update(Lead).where(Lead.id == renamed).values(email=taken))
            if TEST_DATABASE_URL is None:
                # SQLite's writers take turns: the upload begins once that one has committed.
                await holder.commit()
                body = report(await upload(api, world.admin, leads, content))
            else:
                # PostgreSQL: the upload finds no record of the key, its COPY waits for that
                # transaction and is refused by the unique index once it commits.
                body = await upload_racing(api, world, content, holder, database_url)
    finally:
        await engine.dispose()
    # Started again, the import matches the id row by its id and the taken key's row by it.
    assert body["updated"] == [
        {"row": 2, "id": made["by_id"]["id"]},
        {"row": 3, "id": made["renamed"]["id"]},
    ]
    assert [entry["row"] for entry in body["created"]] == [4]
    assert body["errors"] == [] and body["skipped"] == []
    got = {lead["id"]: lead for lead in await records(api, world.admin, leads)}
    assert (got[made["by_id"]["id"]]["title"], got[made["by_id"]["id"]]["email"]) == (
        "By id",
        made["by_id"]["email"],
    )
    assert (got[made["renamed"]["id"]]["title"], got[made["renamed"]["id"]]["email"]) == (
        "Taken",
        taken,
    )
    await assert_unseen_by_other_org(api, world.other, leads, made["by_id"]["id"])
