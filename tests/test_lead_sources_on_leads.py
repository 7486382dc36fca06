"""A lead's `source` is the name of one of the org's lead sources (CONTRACT §3, §4): renaming
a source renames it on every lead, deleting one leaves its leads with `source: null`."""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from crm.lead_sources.models import LeadSource
from tests.conftest import Identity, World
from tests.leads_support import (
    LEADS,
    assert_invisible_to_other_org,
    create_lead,
    detail_url,
    list_leads,
    listed_ids,
    refused,
)


async def source_id(api: httpx.AsyncClient, who: Identity, name: str) -> int:
    response = await api.get("/v2/lead_sources", params={"name": name}, headers=who.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert [item["data"]["name"] for item in items] == [name]
    found: int = items[0]["data"]["id"]
    return found


async def sources_of(api: httpx.AsyncClient, who: Identity) -> list[str | None]:
    body = await list_leads(api, who, {"ordering": "title"})
    return [lead["source"] for lead in body["results"]]


async def test_a_source_renamed_in_the_database_reads_renamed_on_every_lead(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    """The machinery reads the name through the link, whatever renames the source."""
    first = await create_lead(api, world.admin, title="a", source="website_form")
    await create_lead(api, world.admin, title="b", source="website_form")
    await create_lead(api, world.admin, title="c", source="call")
    theirs = await create_lead(api, world.other, title="t", source="website_form")
    async with app.state.db.sessionmaker() as session:
        await session.execute(
            update(LeadSource)
            .where(
                LeadSource.org_id == uuid.UUID(world.admin.org_id),
                LeadSource.name == "website_form",
            )
            .values(name="Web form")
        )
        await session.commit()
    assert await sources_of(api, world.admin) == ["Web form", "Web form", "call"]
    got = await api.get(detail_url(first["id"]), headers=world.admin.headers)
    assert got.json()["source"] == "Web form"
    assert len(await listed_ids(api, world.admin, {"source": "Web form"})) == 2
    assert await listed_ids(api, world.admin, {"source": "website_form"}) == []
    refused(
        await api.post(
            LEADS, json={"title": "x", "source": "website_form"}, headers=world.admin.headers
        ),
        400,
        "source",
    )
    # The other org's source of the same name is its own.
    assert await sources_of(api, world.other) == ["website_form"]
    await assert_invisible_to_other_org(api, world.other, first["id"])
    await assert_invisible_to_other_org(api, world.admin, theirs["id"])


async def test_renaming_a_source_through_v2_renames_it_on_every_lead(
    api: httpx.AsyncClient, world: World
) -> None:
    first = await create_lead(api, world.admin, title="a", source="website_form")
    await create_lead(api, world.admin, title="b", source="website_form")
    await create_lead(api, world.admin, title="c", source="call")
    await create_lead(api, world.other, title="t", source="website_form")
    ident = await source_id(api, world.admin, "website_form")
    response = await api.put(
        f"/v2/lead_sources/{ident}",
        json={"data": {"name": "Web form"}},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "Web form"
    assert await sources_of(api, world.admin) == ["Web form", "Web form", "call"]
    assert len(await listed_ids(api, world.admin, {"source": "Web form"})) == 2
    renamed = await create_lead(api, world.admin, title="d", source="web form")
    assert renamed["source"] == "Web form"
    assert await sources_of(api, world.other) == ["website_form"]
    # A user may not rename, and another org cannot reach the source.
    refused_user = await api.put(
        f"/v2/lead_sources/{ident}", json={"data": {"name": "Mine"}}, headers=world.user.headers
    )
    assert refused_user.status_code == 403
    refused_other = await api.put(
        f"/v2/lead_sources/{ident}", json={"data": {"name": "Ours"}}, headers=world.other.headers
    )
    assert refused_other.status_code == 404
    assert await sources_of(api, world.admin) == ["Web form", "Web form", "call", "Web form"]
    await assert_invisible_to_other_org(api, world.other, first["id"])


async def test_deleting_a_source_leaves_its_leads_with_no_source(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(api, world.admin, title="a", source="partner")
    await create_lead(api, world.admin, title="b", source="call")
    ident = await source_id(api, world.admin, "partner")
    response = await api.delete(f"/v2/lead_sources/{ident}", headers=world.admin.headers)
    assert response.status_code == 204, response.text
    assert await sources_of(api, world.admin) == [None, "call"]
    url = detail_url(lead["id"])
    got = await api.get(url, headers=world.admin.headers)
    assert got.status_code == 200
    assert got.json()["source"] is None
    # The lead keeps working; the name is no longer a source.
    patched = await api.patch(url, json={"title": "a2"}, headers=world.admin.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["source"] is None
    body = {"source": "partner"}
    refused(await api.patch(url, json=body, headers=world.admin.headers), 400, "source")
    assert await listed_ids(api, world.admin, {"source": "partner"}) == []
    await assert_invisible_to_other_org(api, world.other, lead["id"])
