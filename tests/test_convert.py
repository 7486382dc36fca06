"""POST /api/leads/<id>/convert/ (CONTRACT §3): an account, a contact and perhaps an
opportunity, linked, in one transaction; a failure leaves nothing behind; of concurrent
converts of one lead exactly one wins."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import (
    PASSWORD,
    Identity,
    World,
    add_member,
    identity_from_session,
    unique_email,
)
from tests.entities_support import profile_ref
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


# --- A converted lead stays converted ---------------------------------------------------


async def upload_leads(api: httpx.AsyncClient, who: Identity, *lines: str) -> dict[str, Any]:
    response = await api.post(
        "/api/leads/upload/",
        files={"file": ("leads.csv", ("\n".join(lines) + "\n").encode(), "text/csv")},
        headers=who.headers,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


@pytest.mark.parametrize("role", ["admin", "user"])
async def test_a_converted_leads_status_never_changes(
    api: httpx.AsyncClient, world: World, role: str
) -> None:
    who = getattr(world, role)
    email = unique_email("won")
    lead_body = {"title": "Won", "email": email}
    lead = await create_lead(api, who, **lead_body)
    url = detail_url(lead["id"])
    response = await api.post(convert_url(lead["id"]), json=SEED_CONVERT, headers=who.headers)
    assert response.status_code == 200, response.text
    converted = response.json()["lead"]
    links = {name: converted[name] for name in converted if name.startswith("converted_")}

    for status in ("new", "qualified"):
        refused(await api.patch(url, json={"status": status}, headers=who.headers), 400, "status")
        body = {"title": "Won", "status": status}
        refused(await api.put(url, json=body, headers=who.headers), 400, "status")
    # A PUT that leaves status out keeps it (rather than returning it to `new`), and one that
    # gives `converted` changes nothing of it.
    for body in ({"title": "Won again", "email": email}, {**lead_body, "status": "converted"}):
        response = await api.put(url, json=body, headers=who.headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "converted"
        assert {name: response.json()[name] for name in links} == links
    # A CSV row: its status cell on the converted lead is a row error; `converted` is none.
    report = await upload_leads(
        api, who, "email,title,status", f"{email},Won,new", f"{email},Won,converted"
    )
    assert report["created"] == []
    assert report["updated"] == [{"row": 3, "id": lead["id"]}]
    assert [(error["row"], set(error["errors"])) for error in report["errors"]] == [(2, {"status"})]

    read = await api.get(url, headers=who.headers)
    assert read.json()["status"] == "converted"
    assert {name: read.json()[name] for name in links} == links
    refused(
        await api.post(convert_url(lead["id"]), json={"account_name": "B"}, headers=who.headers),
        400,
    )
    assert (await everything(api, world.admin))["accounts"] == ["Acme Corp"]
    refused(await api.patch(url, json={"status": "new"}, headers=world.other.headers), 404)
    refused(await api.get(url, headers=world.other.headers), 404)


async def test_converted_is_still_set_by_convert_only(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin, email=unique_email())
    url = detail_url(lead["id"])
    headers = world.admin.headers
    refused(await api.patch(url, json={"status": "converted"}, headers=headers), 400, "status")
    body = {"title": "T", "status": "converted"}
    refused(await api.put(url, json=body, headers=headers), 400, "status")
    report = await upload_leads(
        api, world.admin, "email,title,status", f"{lead['email']},T,converted"
    )
    assert [set(error["errors"]) for error in report["errors"]] == [{"status"}]
    assert (await api.get(url, headers=headers)).json()["status"] == "new"
    refused(await api.get(url, headers=world.other.headers), 404)
    refused(await api.patch(url, json={"status": "converted"}, headers=world.other.headers), 404)


# --- What a convert carries, and what its objects set ------------------------------------


async def define(
    api: httpx.AsyncClient, admin: Identity, entity: str, key: str, **extra: Any
) -> None:
    body = {"entity": entity, "key": key, "label": key.title(), "type": "text", **extra}
    response = await api.post("/api/custom-fields/", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text


async def read_as(
    api: httpx.AsyncClient, who: Identity, entity: str, record_id: str
) -> httpx.Response:
    return await api.get(f"/api/{entity}/{record_id}/", headers=who.headers)


async def test_convert_carries_assignee_tags_description_and_shared_custom_fields(
    api: httpx.AsyncClient, world: World
) -> None:
    admin, rep = world.admin, world.user
    await define(api, admin, "lead", "tier")
    await define(api, admin, "lead", "score", type="number")
    await define(api, admin, "contact", "tier")  # contacts share `tier`
    await define(api, admin, "opportunity", "score", type="number")  # deals share `score`
    lead = await create_lead(
        api,
        admin,
        first_name="Jane",
        email=unique_email(),
        assigned_to=rep.profile_id,
        tags=["hot", "q3"],
        description="Met at the fair.",
        custom_fields={"tier": "gold", "score": 72},
    )
    response = await api.post(
        convert_url(lead["id"]),
        json={"account_name": "Acme", "create_opportunity": True},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assignee = profile_ref(rep)
    for kind, custom in (
        ("account", {}),
        ("contact", {"tier": "gold"}),
        ("opportunity", {"score": 72}),
    ):
        record = body[kind]
        assert record["assigned_to"] == assignee, kind
        assert record["created_by"]["id"] == admin.profile_id
        assert sorted(record["tags"]) == ["hot", "q3"], kind
        assert record["description"] == "Met at the fair.", kind
        assert record["custom_fields"] == custom, kind
        # The rep the lead is assigned to sees what the convert made of it; another org not.
        entity = {"account": "accounts", "contact": "contacts", "opportunity": "opportunities"}
        seen = await read_as(api, rep, entity[kind], record["id"])
        assert seen.status_code == 200, seen.text
        refused(await read_as(api, world.other, entity[kind], record["id"]), 404)
    assert (await read_as(api, rep, "leads", lead["id"])).json()["status"] == "converted"


async def test_the_objects_set_fields_and_required_custom_fields(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    await define(api, admin, "contact", "region", required=True)
    await define(api, admin, "account", "segment", required=True)
    await define(api, admin, "opportunity", "channel", required=True)
    lead = await create_lead(api, world.user, first_name="Jane", email=unique_email(), tags=["a"])
    url = convert_url(lead["id"])
    plain = {"account_name": "Acme", "create_opportunity": True}
    # Missing, each required field is named under its object; nothing is made.
    refused(
        await api.post(url, json=plain, headers=world.user.headers),
        400,
        "account.custom_fields.segment",
    )
    refused(
        await api.post(
            url,
            json={**plain, "account": {"custom_fields": {"segment": "smb"}}},
            headers=world.user.headers,
        ),
        400,
        "contact.custom_fields.region",
    )
    objects = {
        "account": {"custom_fields": {"segment": "smb"}, "industry": "Software"},
        "contact": {"custom_fields": {"region": "EU"}, "title": "CTO", "tags": ["vip"]},
        "opportunity": {"custom_fields": {"channel": "web"}, "currency": "EUR"},
    }
    refused(
        await api.post(
            url,
            json={**plain, "account": objects["account"], "contact": objects["contact"]},
            headers=world.user.headers,
        ),
        400,
        "opportunity.custom_fields.channel",
    )
    assert await everything(api, admin) == {"accounts": [], "contacts": [], "opportunities": []}
    refused(await api.post(url, json={**plain, **objects}, headers=world.other.headers), 404)

    response = await api.post(url, json={**plain, **objects}, headers=world.user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account"]["custom_fields"] == {"segment": "smb"}
    assert body["account"]["industry"] == "Software"
    assert body["contact"]["custom_fields"] == {"region": "EU"}
    assert (body["contact"]["title"], body["contact"]["first_name"]) == ("CTO", "Jane")
    assert body["contact"]["tags"] == ["vip"]  # the object's tags, instead of the lead's
    assert body["opportunity"]["custom_fields"] == {"channel": "web"}
    assert body["opportunity"]["currency"] == "EUR"
    assert body["account"]["tags"] == body["opportunity"]["tags"] == ["a"]
    for kind in ("account", "contact", "opportunity"):
        assert body[kind]["created_by"]["id"] == world.user.profile_id


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"contact": {"colour": "red"}}, "contact.colour"),
        ({"contact": {"id": "00000000-0000-4000-8000-000000000000"}}, "contact.id"),
        ({"contact": {"email": "not an email"}}, "contact.email"),
        ({"contact": {"custom_fields": {"nope": 1}}}, "contact.custom_fields.nope"),
        ({"contact": {"account": "00000000-0000-4000-8000-000000000000"}}, "contact.account"),
        ({"contact": "Jane"}, "contact"),
        ({"account": {"name": "Other"}}, "account.name"),
        ({"account": {"website": 3}}, "account.website"),
        ({"opportunity": {"stage": "won"}, "create_opportunity": True}, "opportunity.stage"),
        ({"opportunity": {"contacts": []}, "create_opportunity": True}, "opportunity.contacts"),
        ({"opportunity": {"currency": "EUR"}}, "opportunity"),
        (
            {"opportunity": {"name": "X"}, "create_opportunity": True, "opportunity_name": "Y"},
            "opportunity.name",
        ),
    ],
)
async def test_bad_objects_are_400_naming_their_field(
    api: httpx.AsyncClient, world: World, extra: dict[str, Any], field: str
) -> None:
    lead = await create_lead(api, world.admin, email=unique_email())
    body = {"account_name": "Acme", **extra}
    response = await api.post(convert_url(lead["id"]), json=body, headers=world.admin.headers)
    refused(response, 400, field)
    assert await everything(api, world.admin) == {
        "accounts": [],
        "contacts": [],
        "opportunities": [],
    }
    assert (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()[
        "status"
    ] == "new"
    refused(await api.get(detail_url(lead["id"]), headers=world.other.headers), 404)


async def test_what_is_linked_is_not_changed(api: httpx.AsyncClient, world: World) -> None:
    admin = world.admin
    email = unique_email()
    account = (
        await api.post("/api/accounts/", json={"name": "Initech"}, headers=admin.headers)
    ).json()
    contact = (
        await api.post(
            "/api/contacts/", json={"first_name": "Old", "email": email}, headers=admin.headers
        )
    ).json()
    lead = await create_lead(
        api, admin, email=email, first_name="New", tags=["t"], assigned_to=world.user.profile_id
    )
    url = convert_url(lead["id"])
    # An object for a record the convert links rather than makes would be lost: 400.
    for kind, fields in (("account", {"industry": "X"}), ("contact", {"title": "X"})):
        body = {"account_id": account["id"], kind: fields}
        refused(await api.post(url, json=body, headers=admin.headers), 400, kind)
    response = await api.post(url, json={"account_id": account["id"]}, headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    for kind, before, entity in (
        ("account", account, "accounts"),
        ("contact", contact, "contacts"),
    ):
        assert body[kind] == before
        assert (await read_as(api, admin, entity, before["id"])).json()["updated_at"] == before[
            "updated_at"
        ]
        refused(await read_as(api, world.other, entity, before["id"]), 404)


# --- What the answer shows ---------------------------------------------------------------


async def test_linked_records_the_caller_may_not_see_answer_their_id_alone(
    api: httpx.AsyncClient, world: World
) -> None:
    admin, user = world.admin, world.user
    email = unique_email()
    secret = {"name": "Secret Inc", "phone": "+1 555 0000"}
    account = (await api.post("/api/accounts/", json=secret, headers=admin.headers)).json()
    contact_body = {"first_name": "Hidden", "email": email, "phone": "+1 555 9999"}
    contact = (await api.post("/api/contacts/", json=contact_body, headers=admin.headers)).json()
    lead = await create_lead(api, user, email=email)
    response = await api.post(
        convert_url(lead["id"]),
        json={"account_id": account["id"], "create_opportunity": True},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account"] == {"id": account["id"]}
    assert body["contact"] == {"id": contact["id"]}
    assert "Secret" not in response.text and "Hidden" not in response.text
    # What the convert made, and the lead, the user sees in full.
    assert body["lead"]["converted_contact"] == contact["id"]
    assert body["opportunity"]["created_by"]["id"] == user.profile_id
    assert body["opportunity"]["account"] == account["id"]
    refused(await read_as(api, user, "accounts", account["id"]), 403)

    # An admin converting the same way gets every record in full; another org sees none.
    contact_email = unique_email()
    visible = {"first_name": "Seen", "email": contact_email}
    contact_two = (await api.post("/api/contacts/", json=visible, headers=admin.headers)).json()
    admins_lead = await create_lead(api, admin, email=contact_email, title="Again")
    response = await api.post(
        convert_url(admins_lead["id"]), json={"account_id": account["id"]}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["account"] == account
    assert response.json()["contact"] == contact_two
    for entity, record_id in (("accounts", account["id"]), ("contacts", contact["id"])):
        refused(await read_as(api, world.other, entity, record_id), 404)


async def test_a_carried_value_the_target_refuses_is_named_and_can_be_left_out(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    await define(api, admin, "lead", "tier")
    await define(api, admin, "contact", "tier", type="dropdown", options=["bronze"])
    lead = await create_lead(api, admin, email=unique_email(), custom_fields={"tier": "gold"})
    url = convert_url(lead["id"])
    refused(
        await api.post(url, json={"account_name": "Acme"}, headers=admin.headers),
        400,
        "contact.custom_fields.tier",
    )
    assert await everything(api, admin) == {"accounts": [], "contacts": [], "opportunities": []}
    # The lead's assignee who has left cannot be carried either: named, and replaced.
    leaver = await add_member(api, admin)
    assigned = await api.patch(
        detail_url(lead["id"]), json={"assigned_to": leaver.profile_id}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
    left = await api.patch(
        f"/api/users/{leaver.profile_id}/", json={"is_active": False}, headers=admin.headers
    )
    assert left.status_code == 200, left.text
    body = {"account_name": "Acme", "contact": {"custom_fields": {"tier": None}}}
    refused(
        await api.post(url, json=body, headers=admin.headers),
        400,
        "account.assigned_to",
    )
    body = {
        "account_name": "Acme",
        "account": {"assigned_to": world.user.profile_id},
        "contact": {"custom_fields": {"tier": None}, "assigned_to": None},
    }
    refused(await api.post(url, json=body, headers=world.other.headers), 404)
    response = await api.post(url, json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["custom_fields"] == {}
    assert response.json()["contact"]["assigned_to"] is None
    assert response.json()["account"]["assigned_to"]["id"] == world.user.profile_id
    seen = await read_as(api, world.user, "accounts", response.json()["account"]["id"])
    assert seen.status_code == 200
