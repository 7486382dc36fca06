"""Links between records, and the values rules of CONTRACT §3: amounts, currencies,
probabilities, dates, and a task's single parent."""

import re
from typing import Any

import httpx
import pytest

from tests.conftest import World
from tests.entities_support import (
    BY_NAME,
    ENTITIES,
    OPPORTUNITIES,
    TASKS,
    UNKNOWN_ID,
    Entity,
    Ref,
    assert_invisible_to_other_org,
    create,
    linked_records,
    listed_ids,
    listing,
    new_tag,
    read,
)
from tests.leads_support import refused

LINKS = [(entity, name) for entity in ENTITIES for name in entity.links()]


@pytest.mark.parametrize(
    ("entity", "name"), LINKS, ids=[f"{entity.name}.{name}" for entity, name in LINKS]
)
async def test_a_link_names_a_live_record_of_the_org(
    api: httpx.AsyncClient, world: World, entity: Entity, name: str
) -> None:
    target = BY_NAME[entity.links()[name]]
    many = name in entity.id_lists
    headers = world.admin.headers
    ours = (await create(api, world.admin, target))["id"]
    theirs = (await create(api, world.other, target))["id"]
    # A list of ids keeps its other, live, records when one is deleted.
    kept = [(await create(api, world.admin, target))["id"]] if many else []

    def value(record_id: str) -> Any:
        return sorted([record_id, *kept]) if many else record_id

    async def reads_now() -> Any:
        linked = (await read(api, world.admin, entity, record["id"]))[name]
        return sorted(linked) if many else linked

    record = await create(api, world.admin, entity, **{name: value(ours)})
    url = entity.detail(record["id"])
    assert (sorted(record[name]) if many else record[name]) == value(ours)
    minimal = entity.minimal(new_tag())
    for wrong in (theirs, UNKNOWN_ID):
        body = {**minimal, name: value(wrong)}
        refused(await api.post(entity.url, json=body, headers=headers), 400, name)

    # Deleted, the linked record reads as null (out of the list) until it is restored; a
    # body may not link to it.
    target_url = target.detail(ours)
    assert (await api.delete(target_url, headers=headers)).status_code == 204
    assert await reads_now() == (kept if many else None)
    listed = (await listing(api, world.admin, entity))["results"]
    assert [sorted(r[name]) if many else r[name] for r in listed] == [kept if many else None]
    body = {**minimal, name: value(ours)}
    refused(await api.post(entity.url, json=body, headers=headers), 400, name)
    refused(await api.patch(url, json={name: value(ours)}, headers=headers), 400, name)
    assert (await api.post(f"{target_url}restore/", headers=headers)).status_code == 200
    assert await reads_now() == value(ours)

    assert await listed_ids(api, world.admin, entity) == [record["id"]]
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])


def json_number(response: httpx.Response, name: str) -> str:
    """How the body writes the field: its JSON text."""
    found = re.search(rf'"{name}":\s*([^,}}]+)', response.text)
    assert found, response.text
    return found.group(1)


async def test_opportunity_amount_is_an_exact_json_number(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    created = []
    for amount, written in (
        (24000, "24000"),
        (1234.5, "1234.5"),
        (0.07, "0.07"),
        (1234567890123.45, "1234567890123.45"),
        (0, "0"),
    ):
        response = await api.post(
            OPPORTUNITIES.url, json={"name": f"Deal {amount}", "amount": amount}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert json_number(response, "amount") == written
        detail = await api.get(OPPORTUNITIES.detail(response.json()["id"]), headers=headers)
        assert json_number(detail, "amount") == written
        created.append(response.json()["id"])
    listed = await api.get(OPPORTUNITIES.url, params={"ordering": "created_at"}, headers=headers)
    assert json_number(listed, "amount") == "24000"
    for amount in (1.234, -1, -0.01, "100", "24000.00", True, [1]):
        body = {"name": "Bad amount", "amount": amount}
        refused(await api.post(OPPORTUNITIES.url, json=body, headers=headers), 400, "amount")
    # Beyond what is kept: refused, or kept exactly; never a server error.
    huge = await api.post(
        OPPORTUNITIES.url, json={"name": "Huge", "amount": 10**20}, headers=headers
    )
    if huge.status_code == 201:
        assert json_number(huge, "amount") == str(10**20)
        created.append(huge.json()["id"])
    else:
        refused(huge, 400, "amount")
    url = OPPORTUNITIES.detail(created[0])
    refused(await api.patch(url, json={"amount": -5}, headers=headers), 400, "amount")
    assert (await read(api, world.admin, OPPORTUNITIES, created[0]))["amount"] == 24000
    assert sorted(await listed_ids(api, world.admin, OPPORTUNITIES)) == sorted(created)
    await assert_invisible_to_other_org(api, world.other, OPPORTUNITIES, created[0])


async def test_opportunity_currency_probability_and_close_date(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    default = await create(api, world.admin, OPPORTUNITIES)
    assert (default["currency"], default["probability"], default["close_date"]) == (
        "USD",
        None,
        None,
    )
    euro = await create(
        api, world.admin, OPPORTUNITIES, currency="EUR", probability=0, close_date="2026-12-31"
    )
    assert (euro["currency"], euro["probability"], euro["close_date"]) == ("EUR", 0, "2026-12-31")
    certain = await create(api, world.admin, OPPORTUNITIES, probability=100)
    assert certain["probability"] == 100
    for name, value in (
        ("currency", "EURO"),
        ("currency", "eur"),
        ("currency", "E1"),
        ("probability", 101),
        ("probability", -1),
        ("probability", 50.5),
        ("probability", "50"),
        ("probability", True),
        ("close_date", "31/12/2026"),
        ("close_date", "2026-02-30"),
        ("close_date", "2026-12-31T10:00:00Z"),
        ("close_date", 20261231),
    ):
        body = {"name": "Bad value", name: value}
        refused(await api.post(OPPORTUNITIES.url, json=body, headers=headers), 400, name)
    url = OPPORTUNITIES.detail(euro["id"])
    refused(await api.patch(url, json={"currency": "eur"}, headers=headers), 400, "currency")
    assert (await read(api, world.admin, OPPORTUNITIES, euro["id"]))["currency"] == "EUR"
    # PUT without a currency: back to USD.
    response = await api.put(url, json={"name": "Reset"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["currency"] == "USD"
    assert len(await listed_ids(api, world.admin, OPPORTUNITIES)) == 3
    await assert_invisible_to_other_org(api, world.other, OPPORTUNITIES, euro["id"])


async def test_task_due_date_is_answered_in_utc(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    for written, answered in (
        ("2026-12-31T17:00:00Z", "2026-12-31T17:00:00Z"),
        ("2026-12-31T19:30:00+02:00", "2026-12-31T17:30:00Z"),
        ("2026-12-31T22:00:00-05:00", "2027-01-01T03:00:00Z"),
    ):
        task = await create(api, world.admin, TASKS, due_date=written)
        assert task["due_date"] == answered, written
        assert (await read(api, world.admin, TASKS, task["id"]))["due_date"] == answered
    url = TASKS.detail(task["id"])
    response = await api.patch(url, json={"due_date": "2027-03-01T09:00:00+01:00"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["due_date"] == "2027-03-01T08:00:00Z"
    for value in ("tomorrow", "2026-13-01T00:00:00Z", "2026-12-31T25:00:00Z", 20261231):
        body = {"title": "Bad due date", "due_date": value}
        refused(await api.post(TASKS.url, json=body, headers=headers), 400, "due_date")
    refused(await api.patch(url, json={"due_date": "soon"}, headers=headers), 400, "due_date")
    assert (await read(api, world.admin, TASKS, task["id"]))["due_date"] == "2027-03-01T08:00:00Z"
    assert len(await listed_ids(api, world.admin, TASKS)) == 3
    await assert_invisible_to_other_org(api, world.other, TASKS, task["id"])


# A task's parents, and the entity of each.
PARENTS = {
    "lead": "leads",
    "contact": "contacts",
    "account": "accounts",
    "opportunity": "opportunities",
}


async def test_a_task_has_at_most_one_parent(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    refs = {name: Ref(plural) for name, plural in PARENTS.items()}
    ids = await linked_records(api, world.admin, list(refs.values()))
    parent = {name: ids[ref] for name, ref in refs.items()}

    def two_parents(response: httpx.Response) -> None:
        assert response.status_code == 400, response.text
        errors = response.json()["errors"]
        assert errors and set(errors) <= set(PARENTS), errors

    body = {"title": "Two parents", "lead": parent["lead"], "contact": parent["contact"]}
    two_parents(await api.post(TASKS.url, json=body, headers=headers))
    two_parents(await api.post(TASKS.url, json={"title": "All", **parent}, headers=headers))

    task = await create(api, world.admin, TASKS, lead=parent["lead"])
    url = TASKS.detail(task["id"])
    two_parents(await api.patch(url, json={"contact": parent["contact"]}, headers=headers))
    assert (await read(api, world.admin, TASKS, task["id"]))["lead"] == parent["lead"]
    # Moving it to another parent in one change is fine.
    response = await api.patch(
        url, json={"lead": None, "contact": parent["contact"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["lead"], response.json()["contact"]) == (None, parent["contact"])
    response = await api.put(
        url, json={"title": "About the account", "account": parent["account"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert {name: response.json()[name] for name in PARENTS} == {
        "lead": None,
        "contact": None,
        "account": parent["account"],
        "opportunity": None,
    }
    assert await listed_ids(api, world.admin, TASKS) == [task["id"]]
    await assert_invisible_to_other_org(api, world.other, TASKS, task["id"])


async def test_opportunity_source_is_a_lead_source_name(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    deal = await create(api, world.admin, OPPORTUNITIES, source="partner")
    assert deal["source"] == "partner"
    response = await api.get("/v2/lead_sources", params={"per_page": "100"}, headers=headers)
    assert response.status_code == 200, response.text
    source_id = next(
        item["data"]["id"] for item in response.json()["items"] if item["data"]["name"] == "partner"
    )
    source_url = f"/v2/lead_sources/{source_id}"
    # Renamed, it is renamed on the opportunity; deleted, the opportunity reads null.
    response = await api.put(source_url, json={"data": {"name": "reseller"}}, headers=headers)
    assert response.status_code == 200, response.text
    assert (await read(api, world.admin, OPPORTUNITIES, deal["id"]))["source"] == "reseller"
    assert await listed_ids(api, world.admin, OPPORTUNITIES, {"source": "reseller"}) == [deal["id"]]
    assert (await api.delete(source_url, headers=headers)).status_code == 204
    assert (await read(api, world.admin, OPPORTUNITIES, deal["id"]))["source"] is None
    body = {"name": "Resold", "source": "reseller"}
    refused(await api.post(OPPORTUNITIES.url, json=body, headers=headers), 400, "source")
    assert await listed_ids(api, world.admin, OPPORTUNITIES) == [deal["id"]]
    await assert_invisible_to_other_org(api, world.other, OPPORTUNITIES, deal["id"])
