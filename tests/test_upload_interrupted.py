"""CSV uploads that do not run alone: a server killed in the middle of one leaves nothing of it
behind, and the same file uploaded twice at once is imported once."""

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI

from crm.records import importer
from tests.conftest import World
from tests.openapi_check import hooks
from tests.servers import RUNNING, crm_server, server_log
from tests.test_upload import ENTITIES, csv_text, records, report, rows, upload

LEADS = ENTITIES[0]
# Three batches: the server is killed once the first is written, well before the last.
KILLED_ROWS = 3 * importer.BATCH_ROWS
WRITTEN = "upload into leads: "  # the importer's debug line after each batch
DEADLINE_SECONDS = 120  # against a hang; a loaded machine imports slowly


def lead_file(count: int) -> bytes:
    run = uuid.uuid4().hex[:8]
    return csv_text("title,email", *[f"Lead {n},lead-{run}-{n}@example.com" for n in range(count)])


async def count_of(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get(LEADS.url, params={"page_size": "1"}, headers=headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["count"]
    return count


async def test_a_server_killed_mid_upload_leaves_nothing_of_it(
    database_url: str, world: World
) -> None:
    content = lead_file(KILLED_ROWS)
    with crm_server(database_url, rate_limit="off", log_level="debug") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=DEADLINE_SECONDS) as client:
            uploading = asyncio.create_task(upload(client, world.admin, LEADS, content))
            deadline = time.monotonic() + DEADLINE_SECONDS
            while WRITTEN not in server_log(base_url):
                assert not uploading.done(), uploading.result().text
                assert time.monotonic() < deadline, "the upload wrote no batch in time"
                await asyncio.sleep(0.01)  # polling the log, not waiting for a result
            # A batch is written and not committed: the process dies without a word.
            RUNNING[base_url].kill()
            RUNNING[base_url].wait()
            with pytest.raises(httpx.TransportError):
                await uploading

    # Counted exactly, however many: past CRM_EXACT_COUNT_LIMIT PostgreSQL estimates.
    exact = str(10 * KILLED_ROWS)
    with crm_server(database_url, rate_limit="off", exact_count_limit=exact) as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=DEADLINE_SECONDS, event_hooks=hooks()
        ) as client:
            assert await count_of(client, world.admin.headers) == 0
            # Nor is the file recorded as imported: uploaded again, it is imported in full.
            body = report(await upload(client, world.admin, LEADS, content))
            assert (len(body["created"]), body["updated"], body["errors"]) == (KILLED_ROWS, [], [])
            assert await count_of(client, world.admin.headers) == KILLED_ROWS
            assert await count_of(client, world.other.headers) == 0
            theirs = await client.get(
                f"{LEADS.url}{body['created'][0]['id']}/", headers=world.other.headers
            )
            assert theirs.status_code == 404, theirs.text


async def test_the_same_file_twice_at_once_is_imported_once(
    api: httpx.AsyncClient, app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first upload is held once it has written its rows, before it commits; the same
    file arrives meanwhile. PostgreSQL refuses it at once (409); on SQLite, whose writers
    take turns, it waits for the first and answers as for a file imported before."""
    written, release = asyncio.Event(), asyncio.Event()
    write = importer.Importer.write

    async def held(self: importer.Importer, targets: list[importer.Target]) -> None:
        await write(self, targets)
        written.set()
        await release.wait()

    monkeypatch.setattr(importer.Importer, "write", held)
    content = lead_file(3)
    first = asyncio.create_task(upload(api, world.admin, LEADS, content))
    await asyncio.wait_for(written.wait(), DEADLINE_SECONDS)
    second = asyncio.create_task(upload(api, world.admin, LEADS, content))
    if app.state.db.dialect == "postgresql":
        refused = await asyncio.wait_for(second, DEADLINE_SECONDS)
        assert refused.status_code == 409, refused.text
        assert refused.json() == {"errors": {"file": "This file is being imported right now."}}
        release.set()
        done = report(await first)
    else:
        release.set()
        done = report(await first)
        again = report(await second)
        assert again == {"created": [], "updated": done["created"], "errors": [], "skipped": []}
    assert rows(done["created"]) == [2, 3, 4]
    assert len(await records(api, world.admin, LEADS)) == 3
    assert await records(api, world.other, LEADS) == []
