"""POST /api/leads/<id>/convert/ (CONTRACT §3): an account, a contact and perhaps an
opportunity, linked, in one transaction; a failure leaves nothing behind; of concurrent
converts of one lead exactly one wins."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, Identity, World, identity_from_session, unique_email
from tests.leads_support import create_lead, detail_url, refused
from tests.openapi_check import hooks
from tests.servers import crm_server

SEED_CONVERT = {
    "account_name": "Acme Corp",
    "create_opportunity": True,
    "opportunity_name": "Acme — Annual 2026",
    "amount": 24000,
}


def convert_url(lead_id: str) -> str:
    return f"{detail_url(lead_id)}convert/"


async def names(api: httpx.AsyncClient, who: Identity, entity: str, field: str) -> list[str]:
    response = await api.get(f"/api/{entity}/", params={"page_size": 100}, headers=who.headers)
    assert response.status_code == 200, response.text
    return sorted(record[field] or "" for record in response.json()["results"])


async def everything(api: httpx.AsyncClient, who: Identity) -> dict[str, list[str]]:
    """What the org holds of each kind a convert makes."""
    return {
        "accounts": await names(api, who, "accounts", "name"),
        "contacts": await names(api, who, "contacts", "email"),
        "opportunities": await names(api, who, "opportunities", "name"),
    }


async def test_the_seed_example_links_account_contact_and_opportunity(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(
        api,
        world.admin,
        title="Acme renewal interest",
        first_name="Jane",
        last_name="Doe",
        email="jane@acme.com",
        phone="+1 555 1234",
        source="website_form",
    )
    response = await api.post(
        convert_url(lead["id"]), json=SEED_CONVERT, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"lead", "account", "contact", "opportunity"}
    account, contact, opportunity = body["account"], body["contact"], body["opportunity"]
    assert account["name"] == "Acme Corp"
    assert (contact["first_name"], contact["last_name"]) == ("Jane", "Doe")
    assert (contact["email"], contact["phone"]) == ("jane@acme.com", "+1 555 1234")
    assert contact["account"] == account["id"]
    assert opportunity["name"] == "Acme — Annual 2026"
    assert opportunity["amount"] == 24000
    assert opportunity["stage"] == "prospecting"
    assert opportunity["source"] == "website_form"
    assert opportunity["account"] == account["id"]
    assert opportunity["contacts"] == [contact["id"]]
    converted = body["lead"]
    assert converted["status"] == "converted"
    assert converted["converted_account"] == account["id"]
    assert converted["converted_contact"] == contact["id"]
    assert converted["converted_opportunity"] == opportunity["id"]
    assert converted["converted_at"].endswith("Z")
    for who in (world.admin,):
        for entity, record in (
            ("accounts", account),
            ("contacts", contact),
            ("opportunities", opportunity),
            ("leads", converted),
        ):
            read = await api.get(f"/api/{entity}/{record['id']}/", headers=who.headers)
            assert read.status_code == 200
            assert {k: v for k, v in read.json().items() if k != "custom_field_definitions"} == {
                **record,
                "updated_at": read.json()["updated_at"],
            }
            hidden = await api.get(f"/api/{entity}/{record['id']}/", headers=world.other.headers)
            refused(hidden, 404)
    assert await everything(api, world.other) == {
        "accounts": [],
        "contacts": [],
        "opportunities": [],
    }


async def test_convert_without_opportunity_into_an_existing_account(
    api: httpx.AsyncClient, world: World
) -> None:
    account = await api.post(
        "/api/accounts/", json={"name": "Initech"}, headers=world.admin.headers
    )
    lead = await create_lead(api, world.admin, title="Printer issues")  # no name, no email
    response = await api.post(
        convert_url(lead["id"]),
        json={"account_id": account.json()["id"]},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["opportunity"] is None
    assert body["lead"]["converted_opportunity"] is None
    assert body["account"]["id"] == account.json()["id"]
    # With no first name, the contact is named after the lead's title.
    assert body["contact"]["first_name"] == "Printer issues"
    assert (await everything(api, world.admin))["accounts"] == ["Initech"]


async def test_a_live_contact_with_the_email_is_linked_instead(
    api: httpx.AsyncClient, world: World
) -> None:
    existing = await api.post(
        "/api/contacts/",
        json={"first_name": "Jane", "email": "JANE@acme.com"},
        headers=world.admin.headers,
    )
    gone = await api.post(
        "/api/contacts/",
        json={"first_name": "Old", "email": "old@acme.com"},
        headers=world.admin.headers,
    )
    assert (
        await api.delete(f"/api/contacts/{gone.json()['id']}/", headers=world.admin.headers)
    ).status_code == 204
    first = await create_lead(api, world.admin, email="jane@acme.com")
    response = await api.post(
        convert_url(first["id"]), json={"account_name": "Acme"}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["id"] == existing.json()["id"]
    # A deleted contact with the email does not count: a new one is made.
    second = await create_lead(api, world.admin, email="old@acme.com", first_name="New")
    response = await api.post(
        convert_url(second["id"]), json={"account_name": "Acme 2"}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["id"] != gone.json()["id"]
    assert response.json()["contact"]["first_name"] == "New"
    assert (await everything(api, world.admin))["contacts"] == ["JANE@acme.com", "old@acme.com"]


async def test_a_taken_account_name_leaves_nothing_behind(
    api: httpx.AsyncClient, world: World
) -> None:
    await api.post("/api/accounts/", json={"name": "Acme Corp"}, headers=world.admin.headers)
    lead = await create_lead(api, world.admin, email="jane@acme.com", source="call")
    before = await everything(api, world.admin)
    response = await api.post(
        convert_url(lead["id"]),
        json={**SEED_CONVERT, "account_name": "ACME corp"},
        headers=world.admin.headers,
    )
    refused(response, 400, "account_name")
    assert await everything(api, world.admin) == before
    unchanged = await api.get(detail_url(lead["id"]), headers=world.admin.headers)
    assert unchanged.json()["status"] == "new"
    assert unchanged.json()["converted_account"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "detail"),
        ({"account_name": "A", "account_id": "00000000-0000-4000-8000-000000000000"}, "detail"),
        ({"account_id": "00000000-0000-4000-8000-000000000000"}, "account_id"),
        ({"account_name": ""}, "account_name"),
        ({"account_name": "A", "amount": 10}, "detail"),
        ({"account_name": "A", "create_opportunity": True, "amount": -1}, "amount"),
        ({"account_name": "A", "create_opportunity": "yes"}, "create_opportunity"),
        ({"account_name": "A", "colour": "red"}, "colour"),
    ],
)
async def test_bad_bodies_are_400_and_change_nothing(
    api: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    lead = await create_lead(api, world.admin, email=unique_email())
    response = await api.post(convert_url(lead["id"]), json=body, headers=world.admin.headers)
    refused(response, 400, *([field] if field != "detail" else []))
    assert await everything(api, world.admin) == {
        "accounts": [],
        "contacts": [],
        "opportunities": [],
    }


async def test_account_id_of_another_org_or_deleted_is_400(
    api: httpx.AsyncClient, world: World
) -> None:
    theirs = await api.post("/api/accounts/", json={"name": "Theirs"}, headers=world.other.headers)
    mine = await api.post("/api/accounts/", json={"name": "Mine"}, headers=world.admin.headers)
    await api.delete(f"/api/accounts/{mine.json()['id']}/", headers=world.admin.headers)
    lead = await create_lead(api, world.admin)
    for account_id in (theirs.json()["id"], mine.json()["id"]):
        response = await api.post(
            convert_url(lead["id"]), json={"account_id": account_id}, headers=world.admin.headers
        )
        refused(response, 400, "account_id")
    assert await everything(api, world.admin) == {
        "accounts": [],
        "contacts": [],
        "opportunities": [],
    }


async def test_converting_twice_is_400(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    first = await api.post(
        convert_url(lead["id"]), json={"account_name": "One"}, headers=world.admin.headers
    )
    assert first.status_code == 200
    again = await api.post(
        convert_url(lead["id"]), json={"account_name": "Two"}, headers=world.admin.headers
    )
    refused(again, 400)
    assert (await everything(api, world.admin))["accounts"] == ["One"]


async def test_who_may_convert(api: httpx.AsyncClient, world: World) -> None:
    admins = await create_lead(api, world.admin)
    mine = await create_lead(api, world.user)
    hidden = await api.post(
        convert_url(admins["id"]), json={"account_name": "X"}, headers=world.user.headers
    )
    refused(hidden, 403)
    other = await api.post(
        convert_url(admins["id"]), json={"account_name": "X"}, headers=world.other.headers
    )
    refused(other, 404)
    anon = await api.post(convert_url(admins["id"]), json={"account_name": "X"})
    refused(anon, 401)
    response = await api.post(
        convert_url(mine["id"]),
        json={"account_name": "Y", "create_opportunity": True},
        headers=world.user.headers,
    )
    assert response.status_code == 200, response.text
    for kind in ("account", "contact", "opportunity"):
        assert response.json()[kind]["created_by"]["id"] == world.user.profile_id
    assert (await everything(api, world.admin))["accounts"] == ["Y"]


def test_concurrent_converts_of_one_lead_through_a_real_server(database_url: str) -> None:
    """Eight converts of one lead at once against `crm serve --workers 2`: exactly one 200,
    the others 400, and exactly one account, contact and opportunity made."""

    async def run(base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60, event_hooks=hooks()) as client:
            registered = await client.post(
                "/api/auth/register/",
                json={"org_name": "Racers", "email": unique_email(), "password": PASSWORD},
            )
            admin = identity_from_session(registered.json())
            lead = await client.post(
                "/api/leads/", json={"title": "Hot", "email": unique_email()}, headers=admin.headers
            )
            url = convert_url(lead.json()["id"])
            responses = await asyncio.gather(
                *[
                    client.post(
                        url,
                        json={"account_name": f"Racer {i}", "create_opportunity": True},
                        headers=admin.headers,
                    )
                    for i in range(8)
                ]
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [400] * 7, [r.text for r in responses]
            winner = next(r.json() for r in responses if r.status_code == 200)
            assert await everything(client, admin) == {  # type: ignore[arg-type]
                "accounts": [winner["account"]["name"]],
                "contacts": [winner["contact"]["email"]],
                "opportunities": ["Hot"],
            }

    with crm_server(database_url, workers=2, rate_limit="off") as base_url:
        asyncio.run(run(base_url))
