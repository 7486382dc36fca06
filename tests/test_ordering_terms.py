"""`ordering` (/api/) and `sort_by` (/v2/) name each field at most once, so they never
hold more terms than there are fields (SQLite refuses an ORDER BY of 2,000 terms)."""

import httpx

from crm.lead_sources.service import SORT_FIELDS
from crm.leads.spec import LEADS as LEAD_SPEC
from crm.records.query import ALWAYS_ORDERABLE
from tests.conftest import World
from tests.leads_support import LEADS, create_lead, list_leads, refused
from tests.test_lead_sources_v2 import SOURCES, assert_base_error

LEAD_FIELDS = (*LEAD_SPEC.ordering, *ALWAYS_ORDERABLE)


async def test_ordering_refuses_a_field_given_twice(api: httpx.AsyncClient, world: World) -> None:
    # A lead to order: with none, no ORDER BY would run.
    lead = await create_lead(api, world.admin)
    for ordering in (
        ",".join(["title"] * 2000),
        ",".join(["title", "-title"] * 1000),
        "title,-title",
        "-created_at,created_at",
        "email,title,email",
        ",".join([*LEAD_FIELDS, "title"]),
    ):
        response = await api.get(LEADS, params={"ordering": ordering}, headers=world.admin.headers)
        refused(response, 400, "ordering")
    listed = await list_leads(api, world.admin)
    assert [item["id"] for item in listed["results"]] == [lead["id"]]
    assert (await list_leads(api, world.other))["count"] == 0


async def test_ordering_takes_every_field_once(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    every = ",".join(f"-{name}" for name in LEAD_FIELDS)
    listed = await list_leads(api, world.admin, {"ordering": every})
    assert [item["id"] for item in listed["results"]] == [lead["id"]]
    assert (await list_leads(api, world.other, {"ordering": every}))["count"] == 0


async def test_sort_by_refuses_a_field_given_twice(api: httpx.AsyncClient, world: World) -> None:
    for sort_by in (
        ",".join(["name"] * 2000),
        "name,name:desc",
        "id:asc,id",
        ",".join([*SORT_FIELDS, "name"]),
    ):
        response = await api.get(SOURCES, params={"sort_by": sort_by}, headers=world.admin.headers)
        assert_base_error(response, 400, "sort_by")


async def test_sort_by_takes_every_field_once(api: httpx.AsyncClient, world: World) -> None:
    created = await api.post(SOURCES, json={"data": {"name": "Fair"}}, headers=world.admin.headers)
    assert created.status_code == 200, created.text
    every = ",".join(f"{name}:desc" for name in SORT_FIELDS)
    listed = await api.get(
        SOURCES, params={"sort_by": every, "per_page": "1"}, headers=world.admin.headers
    )
    assert listed.status_code == 200, listed.text
    assert [item["data"]["name"] for item in listed.json()["items"]] == ["Fair"]  # highest id
    theirs = await api.get(SOURCES, params={"sort_by": every}, headers=world.other.headers)
    assert "Fair" not in [item["data"]["name"] for item in theirs.json()["items"]]
