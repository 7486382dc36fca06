"""Links between records (CONTRACT §3): written and read as ids, checked to name a live
record of the org, read as null while the linked record is deleted, back on restore."""

from typing import Any

import httpx

from tests.conftest import Identity, World
from tests.leads_support import create_lead, refused


async def create(api: httpx.AsyncClient, who: Identity, entity: str, **body: Any) -> dict[str, Any]:
    response = await api.post(f"/api/{entity}/", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def read(
    api: httpx.AsyncClient, who: Identity, entity: str, record_id: str
) -> dict[str, Any]:
    response = await api.get(f"/api/{entity}/{record_id}/", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed(
    api: httpx.AsyncClient, who: Identity, entity: str, **params: str
) -> dict[str, Any]:
    response = await api.get(f"/api/{entity}/", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return {record["id"]: record for record in response.json()["results"]}


async def test_deleting_an_account_nulls_its_links_until_restored(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    account = await create(api, admin, "accounts", name="Acme")
    contact = await create(api, admin, "contacts", first_name="Jane", account=account["id"])
    opportunity = await create(
        api, admin, "opportunities", name="Deal", account=account["id"], contacts=[contact["id"]]
    )
    task = await create(api, admin, "tasks", title="Call Acme", account=account["id"])
    linking = [("contacts", contact), ("opportunities", opportunity), ("tasks", task)]

    assert (
        await api.delete(f"/api/accounts/{account['id']}/", headers=admin.headers)
    ).status_code == 204
    for entity, record in linking:
        assert (await read(api, admin, entity, record["id"]))["account"] is None
        assert (await listed(api, admin, entity))[record["id"]]["account"] is None
        # A deleted account matches no filter either.
        assert await listed(api, admin, entity, account=account["id"]) == {}

    restored = await api.post(f"/api/accounts/{account['id']}/restore/", headers=admin.headers)
    assert restored.status_code == 200
    for entity, record in linking:
        assert (await read(api, admin, entity, record["id"]))["account"] == account["id"]
        assert set(await listed(api, admin, entity, account=account["id"])) == {record["id"]}
    for entity, record in [("accounts", account), *linking]:
        refused(await api.get(f"/api/{entity}/{record['id']}/", headers=world.other.headers), 404)


async def test_a_deleted_contact_drops_out_of_an_opportunity_until_restored(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    jane = await create(api, admin, "contacts", first_name="Jane")
    john = await create(api, admin, "contacts", first_name="John")
    opportunity = await create(
        api, admin, "opportunities", name="Deal", contacts=[jane["id"], john["id"], jane["id"]]
    )
    assert sorted(opportunity["contacts"]) == sorted([jane["id"], john["id"]])
    await api.delete(f"/api/contacts/{jane['id']}/", headers=admin.headers)
    assert (await read(api, admin, "opportunities", opportunity["id"]))["contacts"] == [john["id"]]
    page = await listed(api, admin, "opportunities")
    assert page[opportunity["id"]]["contacts"] == [john["id"]]
    # Changing the list while Jane is deleted keeps her link for when she comes back.
    kept = await api.patch(
        f"/api/opportunities/{opportunity['id']}/",
        json={"contacts": [john["id"]]},
        headers=admin.headers,
    )
    assert kept.json()["contacts"] == [john["id"]]
    await api.post(f"/api/contacts/{jane['id']}/restore/", headers=admin.headers)
    back = await read(api, admin, "opportunities", opportunity["id"])
    assert sorted(back["contacts"]) == sorted([jane["id"], john["id"]])
    cleared = await api.patch(
        f"/api/opportunities/{opportunity['id']}/", json={"contacts": []}, headers=admin.headers
    )
    assert cleared.json()["contacts"] == []


async def test_links_must_name_a_live_record_of_the_org(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    theirs = await create(api, world.other, "accounts", name="Theirs")
    their_contact = await create(api, world.other, "contacts", first_name="Them")
    gone = await create(api, admin, "accounts", name="Gone")
    await api.delete(f"/api/accounts/{gone['id']}/", headers=admin.headers)
    lead = await create_lead(api, world.other)
    cases = [
        ("contacts", {"first_name": "A", "account": theirs["id"]}, "account"),
        ("contacts", {"first_name": "A", "account": gone["id"]}, "account"),
        ("opportunities", {"name": "A", "account": theirs["id"]}, "account"),
        ("opportunities", {"name": "A", "contacts": [their_contact["id"]]}, "contacts"),
        ("opportunities", {"name": "A", "contacts": ["not-an-id"]}, "contacts.0"),
        ("tasks", {"title": "A", "lead": lead["id"]}, "lead"),
        ("tasks", {"title": "A", "account": gone["id"]}, "account"),
        ("tasks", {"title": "A", "contact": their_contact["id"]}, "contact"),
    ]
    for entity, body, field in cases:
        response = await api.post(f"/api/{entity}/", json=body, headers=admin.headers)
        refused(response, 400, field)
    for entity in ("contacts", "opportunities", "tasks"):
        assert await listed(api, admin, entity) == {}


async def test_a_task_has_at_most_one_parent(api: httpx.AsyncClient, world: World) -> None:
    admin = world.admin
    account = await create(api, admin, "accounts", name="Acme")
    contact = await create(api, admin, "contacts", first_name="Jane")
    both = await api.post(
        "/api/tasks/",
        json={"title": "Two", "account": account["id"], "contact": contact["id"]},
        headers=admin.headers,
    )
    refused(both, 400, "account", "contact")
    task = await create(api, admin, "tasks", title="One", account=account["id"])
    # A second parent by PATCH is refused too; replacing the parent is fine.
    added = await api.patch(
        f"/api/tasks/{task['id']}/", json={"contact": contact["id"]}, headers=admin.headers
    )
    refused(added, 400, "account", "contact")
    moved = await api.patch(
        f"/api/tasks/{task['id']}/",
        json={"contact": contact["id"], "account": None},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["contact"], moved.json()["account"]) == (contact["id"], None)
    refused(await api.get(f"/api/tasks/{task['id']}/", headers=world.other.headers), 404)


async def test_a_user_may_link_to_records_it_cannot_see(
    api: httpx.AsyncClient, world: World
) -> None:
    account = await create(api, world.admin, "accounts", name="Admin's")
    refused(await api.get(f"/api/accounts/{account['id']}/", headers=world.user.headers), 403)
    contact = await create(api, world.user, "contacts", first_name="Mine", account=account["id"])
    assert contact["account"] == account["id"]
