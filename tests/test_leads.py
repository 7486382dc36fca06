"""/api/leads/: the seed's examples as written (seed 000) and the write rules of CONTRACT §3."""

import uuid
from typing import Any

import httpx

from tests.conftest import World, add_member
from tests.entities_support import profile_ref
from tests.leads_support import (
    CUSTOM_FIELDS,
    LEAD_KEYS,
    LEADS,
    SEED_BODY,
    assert_invisible_to_other_org,
    create_lead,
    define_field,
    detail_url,
    list_leads,
    listed_ids,
    refused,
    seed_fields,
)

# --- The seed's examples ---------------------------------------------------------------


async def test_seed_create_returns_the_full_record(api: httpx.AsyncClient, world: World) -> None:
    await seed_fields(api, world.admin)
    response = await api.post(LEADS, json=SEED_BODY, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    lead = response.json()
    assert set(lead) == LEAD_KEYS
    uuid.UUID(lead["id"])
    assert lead["created_at"].endswith("Z") and lead["updated_at"].endswith("Z")
    assert lead["created_at"] == lead["updated_at"]
    expected = {
        **{k: v for k, v in SEED_BODY.items()},
        "company_name": None,
        "description": None,
        "assigned_to": None,
        "created_by": profile_ref(world.admin),
        "tags": [],
        "converted_at": None,
        "converted_account": None,
        "converted_contact": None,
        "converted_opportunity": None,
    }
    assert isinstance(lead["number"], int) and lead["number"] > 0
    server_set = ("id", "number", "created_at", "updated_at")
    assert {k: v for k, v in lead.items() if k not in server_set} == expected
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_seed_list_shape(api: httpx.AsyncClient, world: World) -> None:
    await seed_fields(api, world.admin)
    created = (await api.post(LEADS, json=SEED_BODY, headers=world.admin.headers)).json()
    response = await api.get(LEADS, headers=world.admin.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "count": 1,
        "count_estimated": False,
        "next": None,
        "previous": None,
        "results": [created],
    }
    await assert_invisible_to_other_org(api, world.other, created["id"])
    assert (await list_leads(api, world.other))["count"] == 0


async def test_seed_filter_status_and_source(api: httpx.AsyncClient, world: World) -> None:
    wanted = await create_lead(api, world.admin, status="qualified", source="website_form")
    await create_lead(api, world.admin, status="qualified", source="call")
    await create_lead(api, world.admin, status="new", source="website_form")
    await create_lead(api, world.admin, status="qualified")
    body = await list_leads(api, world.admin, "status=qualified&source=website_form")
    assert body["count"] == 1
    assert body["results"] == [wanted]
    await assert_invisible_to_other_org(api, world.other, wanted["id"])
    other_body = await list_leads(api, world.other, "status=qualified&source=website_form")
    assert other_body["count"] == 0


async def test_seed_filter_search(api: httpx.AsyncClient, world: World) -> None:
    by_title = await create_lead(api, world.admin, title="Acme renewal interest")
    by_email = await create_lead(api, world.admin, title="Renewal", email="jane@acme.com")
    by_company = await create_lead(api, world.admin, title="Upsell", company_name="ACME Corp")
    await create_lead(api, world.admin, title="Globex renewal", email="bob@globex.com")
    ids = await listed_ids(api, world.admin, {"search": "acme"})
    assert sorted(ids) == sorted([by_title["id"], by_email["id"], by_company["id"]])
    assert await listed_ids(api, world.other, {"search": "acme"}) == []
    await assert_invisible_to_other_org(api, world.other, by_title["id"])


async def test_seed_filter_assigned_to(api: httpx.AsyncClient, world: World) -> None:
    mine = await create_lead(api, world.admin, assigned_to=world.user.profile_id)
    await create_lead(api, world.admin, assigned_to=world.admin.profile_id)
    await create_lead(api, world.admin)
    body = await list_leads(api, world.admin, {"assigned_to": world.user.profile_id})
    assert body["count"] == 1
    assert body["results"] == [mine]
    assert mine["assigned_to"] == profile_ref(world.user)
    other_body = await list_leads(api, world.other, {"assigned_to": world.user.profile_id})
    assert other_body["count"] == 0
    await assert_invisible_to_other_org(api, world.other, mine["id"])


async def test_seed_filter_custom_field(api: httpx.AsyncClient, world: World) -> None:
    await seed_fields(api, world.admin)
    saas = await create_lead(api, world.admin, custom_fields={"industry": "saas"})
    await create_lead(api, world.admin, custom_fields={"industry": "retail"})
    await create_lead(api, world.admin, custom_fields={"industry": "SaaS"})
    await create_lead(api, world.admin)
    body = await list_leads(api, world.admin, "cf_industry=saas")
    assert body["count"] == 1
    assert body["results"] == [saas]
    # The other org has no such field.
    response = await api.get(LEADS, params={"cf_industry": "saas"}, headers=world.other.headers)
    refused(response, 400, "cf_industry")
    await assert_invisible_to_other_org(api, world.other, saas["id"])


async def test_seed_ordering_newest_first(api: httpx.AsyncClient, world: World) -> None:
    created = [await create_lead(api, world.admin) for _ in range(3)]
    newest_first = await listed_ids(api, world.admin, {"ordering": "-created_at"})
    assert newest_first == [lead["id"] for lead in reversed(created)]
    # -created_at is also the default.
    assert await listed_ids(api, world.admin) == newest_first
    oldest_first = await listed_ids(api, world.admin, {"ordering": "created_at"})
    assert oldest_first == [lead["id"] for lead in created]
    await assert_invisible_to_other_org(api, world.other, created[0]["id"])


async def test_seed_retrieve_includes_custom_field_definitions(
    api: httpx.AsyncClient, world: World
) -> None:
    await seed_fields(api, world.admin)
    created = (await api.post(LEADS, json=SEED_BODY, headers=world.admin.headers)).json()
    response = await api.get(detail_url(created["id"]), headers=world.admin.headers)
    assert response.status_code == 200
    body = response.json()
    definitions = body.pop("custom_field_definitions")
    assert body == created
    listed = await api.get(CUSTOM_FIELDS, params={"entity": "lead"}, headers=world.admin.headers)
    assert sorted(definitions, key=lambda d: d["key"]) == sorted(
        listed.json()["results"], key=lambda d: d["key"]
    )
    assert {(d["key"], d["type"]) for d in definitions} == {
        ("industry", "text"),
        ("bant_score", "number"),
    }
    await assert_invisible_to_other_org(api, world.other, created["id"])


async def test_detail_definitions_are_the_entitys_own(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "industry", "text")
    contact_field = await api.post(
        CUSTOM_FIELDS,
        json={"entity": "contact", "key": "nickname", "label": "Nickname", "type": "text"},
        headers=world.admin.headers,
    )
    assert contact_field.status_code == 201
    await define_field(api, world.other, "region", "text")
    lead = await create_lead(api, world.admin)
    body = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert [d["key"] for d in body["custom_field_definitions"]] == ["industry"]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_seed_patch_changes_only_given_fields(api: httpx.AsyncClient, world: World) -> None:
    await seed_fields(api, world.admin)
    created = (await api.post(LEADS, json=SEED_BODY, headers=world.admin.headers)).json()
    response = await api.patch(
        detail_url(created["id"]),
        json={"status": "qualified", "company_name": "Acme Corp"},
        headers=world.admin.headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["status"] == "qualified"
    assert patched["company_name"] == "Acme Corp"
    assert patched["updated_at"] >= created["updated_at"]
    unchanged = {k: v for k, v in created.items() if k not in ("status", "company_name")}
    unchanged.pop("updated_at")
    assert {k: patched[k] for k in unchanged} == unchanged
    again = (await api.get(detail_url(created["id"]), headers=world.admin.headers)).json()
    again.pop("custom_field_definitions")
    assert again == patched
    await assert_invisible_to_other_org(api, world.other, created["id"])


async def test_seed_put_resets_left_out_fields(api: httpx.AsyncClient, world: World) -> None:
    await seed_fields(api, world.admin)
    body = {
        **SEED_BODY,
        "status": "qualified",
        "company_name": "Acme",
        "description": "Big one",
        "tags": ["hot"],
        "assigned_to": world.user.profile_id,
    }
    created = (await api.post(LEADS, json=body, headers=world.admin.headers)).json()
    assert created["assigned_to"]["id"] == world.user.profile_id
    response = await api.put(
        detail_url(created["id"]), json={"title": "Renamed"}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    put = response.json()
    assert put == {
        **created,
        "title": "Renamed",
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
        "company_name": None,
        "status": "new",
        "source": None,
        "description": None,
        "assigned_to": None,
        "tags": [],
        "custom_fields": {},
        "updated_at": put["updated_at"],
    }
    # What the server derived stays.
    assert put["created_by"] == profile_ref(world.admin)
    assert put["created_at"] == created["created_at"]
    await assert_invisible_to_other_org(api, world.other, created["id"])


async def test_put_requires_title(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin, first_name="Jane")
    response = await api.put(
        detail_url(lead["id"]), json={"first_name": "Joan"}, headers=world.admin.headers
    )
    refused(response, 400, "title")
    after = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert after["first_name"] == "Jane"
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_seed_delete_soft_deletes(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    kept = await create_lead(api, world.admin)
    response = await api.delete(detail_url(lead["id"]), headers=world.admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    refused(await api.get(detail_url(lead["id"]), headers=world.admin.headers), 404)
    body = await list_leads(api, world.admin)
    assert [r["id"] for r in body["results"]] == [kept["id"]]
    assert body["count"] == 1
    url = detail_url(lead["id"])
    refused(await api.patch(url, json={"title": "x"}, headers=world.admin.headers), 404)
    refused(await api.put(url, json={"title": "x"}, headers=world.admin.headers), 404)
    refused(await api.delete(url, headers=world.admin.headers), 404)
    await assert_invisible_to_other_org(api, world.other, kept["id"])


async def test_seed_error_table(api: httpx.AsyncClient, world: World) -> None:
    # 400: validation failed, naming the field.
    response = await api.post(LEADS, json={"email": "not-an-email"}, headers=world.admin.headers)
    refused(response, 400, "title", "email")
    # 401: missing or invalid token.
    for headers in (world.anon.headers, {"Authorization": "Bearer " + "x" * 64}):
        response = await api.get(LEADS, headers=headers)
        refused(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # 403: authenticated, but not allowed this record.
    lead = await create_lead(api, world.admin)
    refused(await api.get(detail_url(lead["id"]), headers=world.user.headers), 403)
    # 404: no such record, or another org's.
    refused(await api.get(detail_url(str(uuid.uuid4())), headers=world.admin.headers), 404)
    refused(await api.get(detail_url(lead["id"]), headers=world.other.headers), 404)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_malformed_json_is_400(api: httpx.AsyncClient, world: World) -> None:
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    response = await api.post(LEADS, content=b"{not json", headers=headers)
    assert response.status_code == 400, response.text
    assert "errors" in response.json()
    for body in ([], "title", 3):
        response = await api.post(LEADS, json=body, headers=world.admin.headers)
        assert response.status_code == 400, response.text
    assert (await list_leads(api, world.admin))["count"] == 0


# --- Write rules (CONTRACT §3) ---------------------------------------------------------

SERVER_DERIVED = {
    "id": str(uuid.uuid4()),
    "org": str(uuid.uuid4()),
    "created_by": str(uuid.uuid4()),
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "converted_at": "2026-01-01T00:00:00Z",
    "converted_account": str(uuid.uuid4()),
    "converted_contact": str(uuid.uuid4()),
    "converted_opportunity": str(uuid.uuid4()),
}


async def test_server_derived_fields_are_refused_naming_each(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    response = await api.post(LEADS, json={"title": "T", **SERVER_DERIVED}, headers=headers)
    refused(response, 400, *SERVER_DERIVED)
    for name, value in SERVER_DERIVED.items():
        response = await api.post(LEADS, json={"title": "T", name: value}, headers=headers)
        refused(response, 400, name)
    assert (await list_leads(api, world.admin))["count"] == 0
    lead = await create_lead(api, world.admin, title="Kept")
    url = detail_url(lead["id"])
    for name, value in SERVER_DERIVED.items():
        refused(await api.patch(url, json={name: value}, headers=headers), 400, name)
        refused(await api.put(url, json={"title": "T", name: value}, headers=headers), 400, name)
    after = (await api.get(url, headers=headers)).json()
    after.pop("custom_field_definitions")
    assert after == lead
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_unknown_field_is_refused_naming_it(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    response = await api.post(LEADS, json={"title": "T", "nickname": "x"}, headers=headers)
    refused(response, 400, "nickname")
    response = await api.post(LEADS, json={"title": "T", "stage": "x", "foo": 1}, headers=headers)
    refused(response, 400, "stage", "foo")
    lead = await create_lead(api, world.admin)
    url = detail_url(lead["id"])
    refused(await api.patch(url, json={"nickname": "x"}, headers=headers), 400, "nickname")
    refused(await api.put(url, json={"title": "T", "foo": 1}, headers=headers), 400, "foo")
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_title_is_required_and_not_empty(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    refused(await api.post(LEADS, json={"first_name": "Jane"}, headers=headers), 400, "title")
    refused(await api.post(LEADS, json={"title": ""}, headers=headers), 400, "title")
    refused(await api.post(LEADS, json={"title": None}, headers=headers), 400, "title")
    refused(await api.post(LEADS, json={"title": "x" * 256}, headers=headers), 400, "title")
    lead = await create_lead(api, world.admin)
    url = detail_url(lead["id"])
    refused(await api.patch(url, json={"title": None}, headers=headers), 400, "title")
    refused(await api.patch(url, json={"title": ""}, headers=headers), 400, "title")
    assert (await api.get(url, headers=headers)).json()["title"] == lead["title"]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_status_values(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    for status in ("new", "assigned", "in_process", "qualified", "recycled", "closed"):
        lead = await create_lead(api, world.admin, status=status)
        assert lead["status"] == status
    assert (await create_lead(api, world.admin))["status"] == "new"
    refused(
        await api.post(LEADS, json={"title": "T", "status": "won"}, headers=headers), 400, "status"
    )
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_converted_status_is_refused_on_write(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    body = {"title": "T", "status": "converted"}
    refused(await api.post(LEADS, json=body, headers=headers), 400, "status")
    lead = await create_lead(api, world.admin)
    url = detail_url(lead["id"])
    refused(await api.patch(url, json={"status": "converted"}, headers=headers), 400, "status")
    refused(await api.put(url, json=body, headers=headers), 400, "status")
    assert (await api.get(url, headers=headers)).json()["status"] == "new"
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_email_is_unique_per_org_any_case(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    first = await create_lead(api, world.admin, email="jane@acme.com")
    duplicate = {"title": "T", "email": "JANE@Acme.COM"}
    refused(await api.post(LEADS, json=duplicate, headers=headers), 400, "email")
    second = await create_lead(api, world.admin, email="joan@acme.com")
    url = detail_url(second["id"])
    refused(await api.patch(url, json={"email": "Jane@acme.com"}, headers=headers), 400, "email")
    refused(await api.put(url, json=duplicate, headers=headers), 400, "email")
    assert (await api.get(url, headers=headers)).json()["email"] == "joan@acme.com"
    # A lead may keep (or re-case) its own email.
    own = await api.patch(detail_url(first["id"]), json={"email": "JANE@acme.com"}, headers=headers)
    assert own.status_code == 200, own.text
    assert own.json()["email"] == "JANE@acme.com"
    # Leads without an email do not collide.
    await create_lead(api, world.admin)
    await create_lead(api, world.admin)
    # Another org may use the same email.
    theirs = await create_lead(api, world.other, email="jane@acme.com")
    assert theirs["email"] == "jane@acme.com"
    assert (await list_leads(api, world.admin))["count"] == 4
    await assert_invisible_to_other_org(api, world.other, first["id"])


async def test_soft_deleted_lead_frees_its_email_and_restore_checks_it(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    old = await create_lead(api, world.admin, email="jane@acme.com")
    assert (await api.delete(detail_url(old["id"]), headers=headers)).status_code == 204
    new = await create_lead(api, world.admin, email="Jane@Acme.com")
    restore_url = f"{detail_url(old['id'])}restore/"
    refused(await api.post(restore_url, headers=headers), 400, "email")
    refused(await api.get(detail_url(old["id"]), headers=headers), 404)
    assert await listed_ids(api, world.admin) == [new["id"]]
    # Once the email is free again, the restore goes through.
    assert (await api.delete(detail_url(new["id"]), headers=headers)).status_code == 204
    restored = await api.post(restore_url, headers=headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["email"] == "jane@acme.com"
    assert await listed_ids(api, world.admin) == [old["id"]]
    await assert_invisible_to_other_org(api, world.other, old["id"])


async def test_assigned_to_written_as_id_read_as_id_and_email(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    lead = await create_lead(api, world.admin, assigned_to=world.user.profile_id)
    assert lead["assigned_to"] == profile_ref(world.user)
    url = detail_url(lead["id"])
    patched = await api.patch(url, json={"assigned_to": world.admin.profile_id}, headers=headers)
    assert patched.json()["assigned_to"] == profile_ref(world.admin)
    cleared = await api.patch(url, json={"assigned_to": None}, headers=headers)
    assert cleared.json()["assigned_to"] is None
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_assigned_to_must_be_an_active_profile_of_the_org(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    for value in (world.other.profile_id, str(uuid.uuid4()), "not-an-id", 7):
        body = {"title": "T", "assigned_to": value}
        refused(await api.post(LEADS, json=body, headers=headers), 400, "assigned_to")
    lead = await create_lead(api, world.admin)
    url = detail_url(lead["id"])
    body = {"assigned_to": world.other.profile_id}
    refused(await api.patch(url, json=body, headers=headers), 400, "assigned_to")
    leaver = await add_member(api, world.admin)
    deactivated = await api.patch(
        f"/api/users/{leaver.profile_id}/", json={"is_active": False}, headers=headers
    )
    assert deactivated.status_code == 200, deactivated.text
    body = {"assigned_to": leaver.profile_id}
    refused(await api.patch(url, json=body, headers=headers), 400, "assigned_to")
    assert (await api.get(url, headers=headers)).json()["assigned_to"] is None
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_source_is_written_and_read_as_a_name(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    lead = await create_lead(api, world.admin, source="partner")
    assert lead["source"] == "partner"
    url = detail_url(lead["id"])
    assert (await api.patch(url, json={"source": "call"}, headers=headers)).json()[
        "source"
    ] == "call"
    assert (await api.patch(url, json={"source": None}, headers=headers)).json()["source"] is None
    refused(await api.patch(url, json={"source": "carrier_pigeon"}, headers=headers), 400, "source")
    body = {"title": "T", "source": "carrier_pigeon"}
    refused(await api.post(LEADS, json=body, headers=headers), 400, "source")
    refused(await api.post(LEADS, json={"title": "T", "source": 3}, headers=headers), 400, "source")
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_every_default_source_is_accepted(api: httpx.AsyncClient, world: World) -> None:
    names = (
        "website_form",
        "call",
        "email",
        "existing_customer",
        "partner",
        "public_relations",
        "campaign",
        "other",
    )
    for name in names:
        assert (await create_lead(api, world.admin, source=name))["source"] == name
    body = await list_leads(api, world.admin, {"source": "public_relations"})
    assert [lead["source"] for lead in body["results"]] == ["public_relations"]
    assert (await list_leads(api, world.other))["count"] == 0


async def test_restore_is_admin_only_and_brings_the_record_back(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(api, world.user, title="Mine")
    url = detail_url(lead["id"])
    assert (await api.delete(url, headers=world.user.headers)).status_code == 204
    refused(await api.post(f"{url}restore/", headers=world.user.headers), 403)
    refused(await api.get(url, headers=world.user.headers), 404)
    refused(await api.post(f"{url}restore/", headers=world.other.headers), 404)
    response = await api.post(f"{url}restore/", headers=world.admin.headers)
    assert response.status_code == 200, response.text
    restored = response.json()
    assert "custom_field_definitions" in restored
    restored.pop("custom_field_definitions")
    assert {k: v for k, v in restored.items() if k != "updated_at"} == {
        k: v for k, v in lead.items() if k != "updated_at"
    }
    assert await listed_ids(api, world.user) == [lead["id"]]
    assert (await api.get(url, headers=world.user.headers)).status_code == 200
    # A live lead is not restorable: there is no deleted lead with that id.
    refused(await api.post(f"{url}restore/", headers=world.admin.headers), 404)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_tags_are_a_list_of_strings(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    lead = await create_lead(api, world.admin, tags=["hot", "q3"])
    assert lead["tags"] == ["hot", "q3"]
    for bad in ("hot", [1], [""], None, ["x" * 101]):
        body: dict[str, Any] = {"title": "T", "tags": bad}
        response = await api.post(LEADS, json=body, headers=headers)
        assert response.status_code == 400, response.text
        # The field, or the item of it: tags, tags.0.
        assert [key.split(".")[0] for key in response.json()["errors"]] == ["tags"]
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_patch_null_only_where_a_field_may_be_null(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    lead = await create_lead(
        api,
        world.admin,
        status="qualified",
        tags=["hot"],
        email="jane@acme.com",
        source="call",
        assigned_to=world.user.profile_id,
    )
    url = detail_url(lead["id"])
    for name in ("title", "status", "tags", "custom_fields"):
        refused(await api.patch(url, json={name: None}, headers=headers), 400, name)
    unchanged = (await api.get(url, headers=headers)).json()
    unchanged.pop("custom_field_definitions")
    assert unchanged == lead
    optional = ("first_name", "email", "phone", "source", "assigned_to", "description")
    response = await api.patch(url, json=dict.fromkeys(optional), headers=headers)
    assert response.status_code == 200, response.text
    cleared = response.json()
    assert all(cleared[name] is None for name in optional)
    assert (cleared["status"], cleared["tags"]) == ("qualified", ["hot"])
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_nul_characters_are_refused_on_both_databases(
    api: httpx.AsyncClient, world: World
) -> None:
    """PostgreSQL text cannot hold NUL: refused (400 naming the field), never a 500."""
    await define_field(api, world.admin, "industry", "text")
    headers = world.admin.headers
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "a\x00b"}, "title"),
        ({"title": "T", "email": "a\x00@b.co"}, "email"),
        ({"title": "T", "tags": ["a\x00"]}, "tags"),
        ({"title": "T", "source": "call\x00"}, "source"),
        ({"title": "T", "custom_fields": {"industry": "saas\x00"}}, "custom_fields.industry"),
    ]
    for body, name in cases:
        refused(await api.post(LEADS, json=body, headers=headers), 400, name)
    lead = await create_lead(api, world.admin, title="Clean")
    url = detail_url(lead["id"])
    patch = {"description": "\x00"}
    refused(await api.patch(url, json=patch, headers=headers), 400, "description")
    assert await listed_ids(api, world.admin) == [lead["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])
