"""Tenant scope and visibility of records (CONTRACT §2), tried on every lead endpoint, and
the record machinery's independence of any one entity."""

import re
import uuid
from pathlib import Path

import httpx

import crm.records
from tests.conftest import World
from tests.entities_support import profile_ref
from tests.leads_support import (
    LEADS,
    assert_invisible_to_other_org,
    create_lead,
    detail_url,
    list_leads,
    listed_ids,
    refused,
)


async def test_another_org_gets_404_on_every_endpoint(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin, title="Ours", email="ours@example.com")
    url = detail_url(lead["id"])
    headers = world.other.headers
    assert lead["id"] not in await listed_ids(api, world.other)
    assert (await list_leads(api, world.other, {"search": "ours"}))["count"] == 0
    refused(await api.get(url, headers=headers), 404)
    refused(await api.patch(url, json={"title": "Theirs"}, headers=headers), 404)
    refused(await api.put(url, json={"title": "Theirs"}, headers=headers), 404)
    refused(await api.delete(url, headers=headers), 404)
    refused(await api.post(f"{url}restore/", headers=headers), 404)
    # Soft-deleted, it is still not theirs to restore.
    assert (await api.delete(url, headers=world.admin.headers)).status_code == 204
    refused(await api.post(f"{url}restore/", headers=headers), 404)
    restored = await api.post(f"{url}restore/", headers=world.admin.headers)
    assert restored.status_code == 200
    # Nothing they tried changed it.
    got = (await api.get(url, headers=world.admin.headers)).json()
    assert got["title"] == "Ours"
    assert lead["id"] in await listed_ids(api, world.admin)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_another_orgs_answer_is_that_of_a_missing_record(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(api, world.admin)
    theirs = await api.get(detail_url(lead["id"]), headers=world.other.headers)
    missing = await api.get(detail_url(str(uuid.uuid4())), headers=world.other.headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


async def test_a_user_cannot_reach_an_admins_lead(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin, title="Admin's", assigned_to=world.admin.profile_id)
    url = detail_url(lead["id"])
    headers = world.user.headers
    assert await listed_ids(api, world.user) == []
    assert (await list_leads(api, world.user, {"search": "admin"}))["count"] == 0
    refused(await api.get(url, headers=headers), 403)
    refused(await api.patch(url, json={"title": "Mine"}, headers=headers), 403)
    refused(await api.put(url, json={"title": "Mine"}, headers=headers), 403)
    refused(await api.delete(url, headers=headers), 403)
    refused(await api.post(f"{url}restore/", headers=headers), 403)
    got = (await api.get(url, headers=world.admin.headers)).json()
    assert got["title"] == "Admin's"
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_a_user_sees_and_changes_what_is_assigned_to_it(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(api, world.admin, title="Admin's")
    url = detail_url(lead["id"])
    assigned = await api.patch(
        url, json={"assigned_to": world.user.profile_id}, headers=world.admin.headers
    )
    assert assigned.status_code == 200
    headers = world.user.headers
    assert await listed_ids(api, world.user) == [lead["id"]]
    got = await api.get(url, headers=headers)
    assert got.status_code == 200
    assert got.json()["assigned_to"] == profile_ref(world.user)
    patched = await api.patch(url, json={"status": "in_process"}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["status"] == "in_process"
    put = await api.put(
        url, json={"title": "Worked on", "assigned_to": world.user.profile_id}, headers=headers
    )
    assert put.status_code == 200
    assert put.json()["title"] == "Worked on"
    assert (await api.delete(url, headers=headers)).status_code == 204
    refused(await api.get(url, headers=headers), 404)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_a_user_sees_what_it_created(api: httpx.AsyncClient, world: World) -> None:
    mine = await create_lead(api, world.user, title="Mine")
    assert mine["created_by"] == profile_ref(world.user)
    await create_lead(api, world.admin, title="Not mine")
    assert await listed_ids(api, world.user) == [mine["id"]]
    assert (await list_leads(api, world.user))["count"] == 1
    # The admin sees both.
    assert (await list_leads(api, world.admin))["count"] == 2
    url = detail_url(mine["id"])
    # Assigned away, a lead it created stays visible to it.
    moved = await api.patch(
        url, json={"assigned_to": world.admin.profile_id}, headers=world.user.headers
    )
    assert moved.status_code == 200
    assert (await api.get(url, headers=world.user.headers)).status_code == 200
    await assert_invisible_to_other_org(api, world.other, mine["id"])


async def test_a_malformed_id_is_404_everywhere(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    headers = world.admin.headers
    for raw in ("not-an-id", "123", lead["id"] + "0", "%20"):
        url = detail_url(raw)
        refused(await api.get(url, headers=headers), 404)
        refused(await api.patch(url, json={"title": "x"}, headers=headers), 404)
        refused(await api.put(url, json={"title": "x"}, headers=headers), 404)
        refused(await api.delete(url, headers=headers), 404)
        refused(await api.post(f"{url}restore/", headers=headers), 404)
    assert await listed_ids(api, world.admin) == [lead["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_anonymous_gets_401_everywhere(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    url = detail_url(lead["id"])
    for method, path in (
        ("GET", LEADS),
        ("POST", LEADS),
        ("GET", url),
        ("PATCH", url),
        ("PUT", url),
        ("DELETE", url),
        ("POST", f"{url}restore/"),
    ):
        for headers in (
            world.anon.headers,
            {"Authorization": "Bearer " + "a" * 64},
            {"Authorization": f"Basic {world.admin.token}"},
        ):
            response = await api.request(method, path, json={"title": "x"}, headers=headers)
            refused(response, 401)
            assert response.headers["WWW-Authenticate"] == "Bearer"
    got = (await api.get(url, headers=world.admin.headers)).json()
    assert got["title"] == lead["title"]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


# --- The machinery knows no entity ------------------------------------------------------


def test_record_machinery_names_no_entity() -> None:
    package = Path(crm.records.__file__).parent
    pattern = re.compile(
        r"\b(leads?|contacts?|accounts?|opportunit(y|ies)|tasks?)\b", re.IGNORECASE
    )
    sources = sorted(package.rglob("*.py"))
    assert len(sources) >= 6
    hits = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
