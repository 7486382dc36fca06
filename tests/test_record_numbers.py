"""Record numbers (CONTRACT §3a "Numbers"): every record of every entity has a `number`, a
positive integer unique server-wide, never reused, read-only, taken from one allocator at
insert whatever writes the record (a JSON create, convert, a CSV upload)."""

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from crm.db import async_url
from tests.conftest import World
from tests.entities_support import (
    ENTITIES,
    LEADS,
    assert_invisible_to_other_org,
    create,
    listing,
    read,
    refused_naming,
)
from tests.test_upload import csv_text, report, upload


async def test_every_record_has_a_number_unique_across_entities_and_orgs(
    api: httpx.AsyncClient, world: World
) -> None:
    created = []
    for who in (world.admin, world.other):
        for entity in ENTITIES:
            record = await create(api, who, entity)
            created.append((who, entity, record))
    numbers = [record["number"] for _, _, record in created]
    assert all(isinstance(number, int) and number > 0 for number in numbers)
    # Increasing in the order written, whatever the entity or the org.
    assert numbers == sorted(set(numbers))
    for who, entity, record in created:
        assert (await read(api, who, entity, record["id"]))["number"] == record["number"]
        listed = (await listing(api, who, entity))["results"]
        assert {item["id"]: item["number"] for item in listed}[record["id"]] == record["number"]
    mine = [(entity, record) for who, entity, record in created if who is world.admin]
    for entity, record in mine:
        await assert_invisible_to_other_org(api, world.other, entity, record["id"])


async def test_a_body_carrying_number_is_refused(api: httpx.AsyncClient, world: World) -> None:
    for entity in ENTITIES:
        refused_naming(
            await api.post(
                entity.url, json={**entity.minimal("n"), "number": 7}, headers=world.admin.headers
            ),
            "number",
        )
        record = await create(api, world.admin, entity)
        refused_naming(
            await api.patch(
                entity.detail(record["id"]), json={"number": 7}, headers=world.admin.headers
            ),
            "number",
        )
        assert (await read(api, world.admin, entity, record["id"]))["number"] == record["number"]
        await assert_invisible_to_other_org(api, world.other, entity, record["id"])


async def test_numbers_are_never_reused(
    api: httpx.AsyncClient, world: World, database_url: str
) -> None:
    first = await create(api, world.admin, LEADS)
    deleted = await api.delete(LEADS.detail(first["id"]), headers=world.admin.headers)
    assert deleted.status_code == 204
    second = await create(api, world.admin, LEADS)
    assert second["number"] > first["number"]
    # Not the highest number plus one: a row removed from the table frees no number.
    engine = create_async_engine(async_url(database_url))
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM leads WHERE number = :n"), {"n": second["number"]})
    await engine.dispose()
    third = await create(api, world.admin, LEADS)
    assert third["number"] > second["number"]
    await assert_invisible_to_other_org(api, world.other, LEADS, third["id"])


async def test_uploads_convert_and_lead_sources_draw_from_the_same_numbers(
    api: httpx.AsyncClient, world: World
) -> None:
    before = (await create(api, world.admin, LEADS))["number"]
    content = csv_text("title,email", "Uploaded one,up-1@x.test", "Uploaded two,up-2@x.test")
    body = report(await upload(api, world.admin, LEADS, content))
    uploaded = [await read(api, world.admin, LEADS, entry["id"]) for entry in body["created"]]
    numbers = [record["number"] for record in uploaded]
    assert len(set(numbers)) == 2 and min(numbers) > before
    await assert_invisible_to_other_org(api, world.other, LEADS, uploaded[0]["id"])

    lead = await create(api, world.admin, LEADS, first_name="Jane", email="jane@x.test")
    converted = await api.post(
        f"{LEADS.detail(lead['id'])}convert/",
        json={
            "account_name": "Numbered Corp",
            "create_opportunity": True,
            "opportunity_name": "Deal",
        },
        headers=world.admin.headers,
    )
    assert converted.status_code == 200, converted.text
    made = converted.json()
    made_numbers = [made[name]["number"] for name in ("account", "contact", "opportunity")]
    assert min(made_numbers) > lead["number"] > max(numbers) and len(set(made_numbers)) == 3
    for name, entity in (("account", ENTITIES[2]), ("contact", ENTITIES[1])):
        assert (await read(api, world.admin, entity, made[name]["id"]))["number"] == made[name][
            "number"
        ]

    source = await api.post(
        "/v2/lead_sources", json={"data": {"name": "Numbered"}}, headers=world.admin.headers
    )
    assert source.status_code == 200, source.text
    assert source.json()["data"]["id"] > max(made_numbers)
    after = (await create(api, world.admin, LEADS))["number"]
    assert after > source.json()["data"]["id"]
