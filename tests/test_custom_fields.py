"""/api/custom-fields/ and the validation of a record's custom_fields (CONTRACT §3)."""

import uuid
from typing import Any

import httpx

from tests.conftest import World
from tests.leads_support import (
    CUSTOM_FIELDS,
    LEADS,
    assert_invisible_to_other_org,
    create_lead,
    define_field,
    detail_url,
    list_leads,
    refused,
)

DEFINITION_KEYS = {"id", "entity", "key", "label", "type", "options", "required", "filterable"}


def field_url(field_id: str) -> str:
    return f"{CUSTOM_FIELDS}{field_id}/"


async def assert_hidden_from_other_org(api: httpx.AsyncClient, world: World, field_id: str) -> None:
    """Another org's admin never sees this org's definition, nor may touch it."""
    listed = await api.get(CUSTOM_FIELDS, headers=world.other.headers)
    assert field_id not in [d["id"] for d in listed.json()["results"]]
    url = field_url(field_id)
    headers = world.other.headers
    refused(await api.get(url, headers=headers), 404)
    refused(await api.patch(url, json={"label": "Theirs"}, headers=headers), 404)
    refused(await api.delete(url, headers=headers), 404)


# --- Definitions ------------------------------------------------------------------------


async def test_create_and_read_a_definition(api: httpx.AsyncClient, world: World) -> None:
    body = {"entity": "lead", "key": "industry", "label": "Industry", "type": "text"}
    response = await api.post(CUSTOM_FIELDS, json=body, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == DEFINITION_KEYS
    uuid.UUID(created["id"])
    assert created == {
        **body,
        "id": created["id"],
        "options": None,
        "required": False,
        "filterable": False,
    }
    for who in (world.admin, world.user):
        got = await api.get(field_url(created["id"]), headers=who.headers)
        assert got.status_code == 200
        assert got.json() == created
        listed = await api.get(CUSTOM_FIELDS, headers=who.headers)
        assert listed.status_code == 200
        assert listed.json() == {
            "count": 1,
            "count_estimated": False,
            "next": None,
            "previous": None,
            "results": [created],
        }
    await assert_hidden_from_other_org(api, world, created["id"])
    # The definition survived the other org's attempts.
    got = await api.get(field_url(created["id"]), headers=world.admin.headers)
    assert got.json() == created


async def test_only_admins_write_definitions(api: httpx.AsyncClient, world: World) -> None:
    body = {"entity": "lead", "key": "industry", "label": "Industry", "type": "text"}
    refused(await api.post(CUSTOM_FIELDS, json=body, headers=world.user.headers), 403)
    field = await define_field(api, world.admin, "industry", "text")
    url = field_url(field["id"])
    refused(await api.patch(url, json={"label": "X"}, headers=world.user.headers), 403)
    refused(await api.delete(url, headers=world.user.headers), 403)
    assert (await api.get(url, headers=world.user.headers)).json() == field
    for method in ("GET", "POST"):
        response = await api.request(method, CUSTOM_FIELDS, json=body, headers=world.anon.headers)
        refused(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    await assert_hidden_from_other_org(api, world, field["id"])


async def test_list_filters_by_entity_and_pages(api: httpx.AsyncClient, world: World) -> None:
    for entity in ("lead", "contact", "account", "opportunity", "task"):
        response = await api.post(
            CUSTOM_FIELDS,
            json={"entity": entity, "key": "note", "label": "Note", "type": "text"},
            headers=world.admin.headers,
        )
        assert response.status_code == 201, response.text
    await define_field(api, world.admin, "another", "text")
    leads = await api.get(CUSTOM_FIELDS, params={"entity": "lead"}, headers=world.admin.headers)
    assert [(d["entity"], d["key"]) for d in leads.json()["results"]] == [
        ("lead", "another"),
        ("lead", "note"),
    ]
    page = await api.get(CUSTOM_FIELDS, params={"page_size": "4"}, headers=world.admin.headers)
    assert page.json()["count"] == 6
    assert len(page.json()["results"]) == 4
    assert page.json()["next"] is not None
    for params, name in (
        ({"entity": "leads"}, "entity"),
        ({"colour": "x"}, "colour"),
        ({"page_size": "101"}, "page_size"),
    ):
        response = await api.get(CUSTOM_FIELDS, params=params, headers=world.admin.headers)
        refused(response, 400, name)
    theirs = await api.get(CUSTOM_FIELDS, headers=world.other.headers)
    assert theirs.json()["count"] == 0


KEYS = {
    "a": True,
    "industry": True,
    "bant_score_2": True,
    "a" + "b" * 62: True,
    "a" + "b" * 63: False,
    "": False,
    "1abc": False,
    "_abc": False,
    "Industry": False,
    "with-dash": False,
    "with space": False,
    "ünïcode": False,
    "a\n": False,
}


async def test_key_pattern(api: httpx.AsyncClient, world: World) -> None:
    for key, ok in KEYS.items():
        body = {"entity": "lead", "key": key, "label": "L", "type": "text"}
        response = await api.post(CUSTOM_FIELDS, json=body, headers=world.admin.headers)
        if ok:
            assert response.status_code == 201, response.text
            assert response.json()["key"] == key
            await assert_hidden_from_other_org(api, world, response.json()["id"])
        else:
            refused(response, 400, "key")
    listed = await api.get(CUSTOM_FIELDS, params={"page_size": "100"}, headers=world.admin.headers)
    assert sorted(d["key"] for d in listed.json()["results"]) == sorted(
        key for key, ok in KEYS.items() if ok
    )


async def test_key_is_unique_per_entity(api: httpx.AsyncClient, world: World) -> None:
    field = await define_field(api, world.admin, "industry", "text")
    duplicate = {"entity": "lead", "key": "industry", "label": "Again", "type": "number"}
    refused(await api.post(CUSTOM_FIELDS, json=duplicate, headers=world.admin.headers), 400, "key")
    # Another entity, or another org, may use the key.
    for_contacts = {**duplicate, "entity": "contact"}
    response = await api.post(CUSTOM_FIELDS, json=for_contacts, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    await define_field(api, world.other, "industry", "text")
    listed = await api.get(CUSTOM_FIELDS, headers=world.admin.headers)
    assert listed.json()["count"] == 2
    await assert_hidden_from_other_org(api, world, field["id"])


async def test_a_deleted_key_may_be_defined_again(api: httpx.AsyncClient, world: World) -> None:
    field = await define_field(api, world.admin, "industry", "text")
    deleted = await api.delete(field_url(field["id"]), headers=world.admin.headers)
    assert deleted.status_code == 204
    again = await define_field(api, world.admin, "industry", "number")
    assert again["type"] == "number"
    assert again["id"] != field["id"]
    await assert_hidden_from_other_org(api, world, again["id"])


async def test_the_five_types(api: httpx.AsyncClient, world: World) -> None:
    for kind in ("text", "number", "date", "checkbox"):
        field = await define_field(api, world.admin, f"f_{kind}", kind)
        assert field["type"] == kind
        assert field["options"] is None
    dropdown = await define_field(api, world.admin, "f_dropdown", "dropdown", options=["a", "b"])
    assert dropdown["options"] == ["a", "b"]
    body = {"entity": "lead", "key": "f_other", "label": "L", "type": "currency"}
    refused(await api.post(CUSTOM_FIELDS, json=body, headers=world.admin.headers), 400, "type")
    listed = await api.get(CUSTOM_FIELDS, headers=world.admin.headers)
    assert listed.json()["count"] == 5
    await assert_hidden_from_other_org(api, world, dropdown["id"])


async def test_definition_validation(api: httpx.AsyncClient, world: World) -> None:
    base = {"entity": "lead", "key": "f", "label": "L", "type": "text"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "type": "dropdown"}, "options"),
        ({**base, "type": "dropdown", "options": []}, "options"),
        ({**base, "type": "dropdown", "options": ["a", "a"]}, "options"),
        ({**base, "type": "dropdown", "options": [""]}, "options"),
        ({**base, "options": ["a"]}, "options"),
        ({**base, "type": "number", "options": ["a"]}, "options"),
        ({**base, "entity": "leads"}, "entity"),
        ({**base, "entity": "widget"}, "entity"),
        ({**base, "label": ""}, "label"),
        ({k: v for k, v in base.items() if k != "label"}, "label"),
        ({k: v for k, v in base.items() if k != "key"}, "key"),
        ({**base, "colour": "red"}, "colour"),
        ({**base, "required": "perhaps"}, "required"),
        ({**base, "label": "a\x00"}, "label"),
        ({**base, "type": "dropdown", "options": ["a\x00"]}, "options"),
    ]
    for body, name in cases:
        response = await api.post(CUSTOM_FIELDS, json=body, headers=world.admin.headers)
        refused(response, 400, name)
    listed = await api.get(CUSTOM_FIELDS, headers=world.admin.headers)
    assert listed.json()["count"] == 0


async def test_patch_changes_label_options_required_filterable(
    api: httpx.AsyncClient, world: World
) -> None:
    field = await define_field(api, world.admin, "tier", "dropdown", options=["gold"])
    url = field_url(field["id"])
    changes = {"label": "Tier", "options": ["gold", "silver"], "required": True, "filterable": True}
    response = await api.patch(url, json=changes, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {**field, **changes}
    only_label = await api.patch(url, json={"label": "Level"}, headers=world.admin.headers)
    assert only_label.json() == {**field, **changes, "label": "Level"}
    assert (await api.get(url, headers=world.user.headers)).json() == only_label.json()
    await assert_hidden_from_other_org(api, world, field["id"])


async def test_patch_refuses_fixed_and_bad_values(api: httpx.AsyncClient, world: World) -> None:
    field = await define_field(api, world.admin, "tier", "dropdown", options=["gold"])
    text = await define_field(api, world.admin, "notes", "text")
    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (field["id"], {"entity": "contact"}, ("entity",)),
        (field["id"], {"key": "level"}, ("key",)),
        (field["id"], {"type": "text"}, ("type",)),
        (field["id"], {"key": "level", "type": "text"}, ("key", "type")),
        (field["id"], {"options": []}, ("options",)),
        (field["id"], {"options": None}, ("options",)),
        (field["id"], {"label": ""}, ("label",)),
        (field["id"], {"label": None}, ("label",)),
        (field["id"], {"required": None}, ("required",)),
        (field["id"], {"colour": "red"}, ("colour",)),
        (field["id"], {"label": "\x00"}, ("label",)),
        (field["id"], {"options": ["b\x00"]}, ("options",)),
        (text["id"], {"options": ["a"]}, ("options",)),
    ]
    for field_id, body, names in cases:
        response = await api.patch(field_url(field_id), json=body, headers=world.admin.headers)
        refused(response, 400, *names)
    assert (await api.get(field_url(field["id"]), headers=world.admin.headers)).json() == field
    assert (await api.get(field_url(text["id"]), headers=world.admin.headers)).json() == text
    await assert_hidden_from_other_org(api, world, field["id"])


async def test_unknown_and_malformed_ids_are_404(api: httpx.AsyncClient, world: World) -> None:
    for raw in (str(uuid.uuid4()), "not-an-id", "1"):
        url = field_url(raw)
        refused(await api.get(url, headers=world.admin.headers), 404)
        refused(await api.patch(url, json={"label": "x"}, headers=world.admin.headers), 404)
        refused(await api.delete(url, headers=world.admin.headers), 404)
    assert (await api.get(CUSTOM_FIELDS, headers=world.admin.headers)).json()["count"] == 0


async def test_delete_forgets_the_key_everywhere(api: httpx.AsyncClient, world: World) -> None:
    industry = await define_field(api, world.admin, "industry", "text", filterable=True)
    await define_field(api, world.admin, "score", "number")
    lead = await create_lead(api, world.admin, custom_fields={"industry": "saas", "score": 3})
    # Another org's lead with the same key is not touched.
    await define_field(api, world.other, "industry", "text", filterable=True)
    theirs = await create_lead(api, world.other, custom_fields={"industry": "saas"})

    response = await api.delete(field_url(industry["id"]), headers=world.admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    refused(await api.get(field_url(industry["id"]), headers=world.admin.headers), 404)

    # Not returned in any record, list or detail.
    got = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert got["custom_fields"] == {"score": 3}
    assert [d["key"] for d in got["custom_field_definitions"]] == ["score"]
    listed = await list_leads(api, world.admin)
    assert [r["custom_fields"] for r in listed["results"]] == [{"score": 3}]
    # Not filterable.
    response = await api.get(LEADS, params={"cf_industry": "saas"}, headers=world.admin.headers)
    refused(response, 400, "cf_industry")
    # Not accepted.
    headers = world.admin.headers
    body = {"title": "T", "custom_fields": {"industry": "saas"}}
    refused(await api.post(LEADS, json=body, headers=headers), 400, "custom_fields.industry")
    url = detail_url(lead["id"])
    patch = {"custom_fields": {"industry": "x"}}
    refused(await api.patch(url, json=patch, headers=headers), 400, "custom_fields.industry")
    # Another org's records keep their own field.
    their_lead = await api.get(detail_url(theirs["id"]), headers=world.other.headers)
    assert their_lead.json()["custom_fields"] == {"industry": "saas"}
    their_list = await list_leads(api, world.other, {"cf_industry": "saas"})
    assert [r["id"] for r in their_list["results"]] == [theirs["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_delete_then_redefine_does_not_bring_old_values_back(
    api: httpx.AsyncClient, world: World
) -> None:
    field = await define_field(api, world.admin, "industry", "text")
    lead = await create_lead(api, world.admin, custom_fields={"industry": "saas"})
    assert (
        await api.delete(field_url(field["id"]), headers=world.admin.headers)
    ).status_code == 204
    await define_field(api, world.admin, "industry", "text", filterable=True)
    got = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert got["custom_fields"] == {}
    assert await list_leads(api, world.admin, {"cf_industry": "saas"}) == {
        "count": 0,
        "count_estimated": False,
        "next": None,
        "previous": None,
        "results": [],
    }
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_a_deleted_field_stays_gone_from_a_restored_lead(
    api: httpx.AsyncClient, world: World
) -> None:
    field = await define_field(api, world.admin, "industry", "text")
    lead = await create_lead(api, world.admin, custom_fields={"industry": "saas"})
    url = detail_url(lead["id"])
    assert (await api.delete(url, headers=world.admin.headers)).status_code == 204
    assert (
        await api.delete(field_url(field["id"]), headers=world.admin.headers)
    ).status_code == 204
    restored = await api.post(f"{url}restore/", headers=world.admin.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["custom_fields"] == {}
    assert restored.json()["custom_field_definitions"] == []
    await assert_invisible_to_other_org(api, world.other, lead["id"])


# --- A record's custom_fields -----------------------------------------------------------


async def define_all(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "industry", "text")
    await define_field(api, world.admin, "score", "number")
    await define_field(api, world.admin, "renewal", "date")
    await define_field(api, world.admin, "vip", "checkbox")
    await define_field(api, world.admin, "tier", "dropdown", options=["gold", "silver"])


async def test_values_of_each_type_are_kept(api: httpx.AsyncClient, world: World) -> None:
    await define_all(api, world)
    values = {
        "industry": "saas",
        "score": 72.5,
        "renewal": "2026-05-01",
        "vip": False,
        "tier": "silver",
    }
    lead = await create_lead(api, world.admin, custom_fields=values)
    assert lead["custom_fields"] == values
    got = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert got["custom_fields"] == values
    await assert_invisible_to_other_org(api, world.other, lead["id"])


BAD_VALUES: list[tuple[str, Any]] = [
    ("nope", "x"),
    ("industry", 3),
    ("industry", ["saas"]),
    ("score", "72"),
    ("score", True),
    ("renewal", "01/05/2026"),
    ("renewal", "2026-02-30"),
    ("renewal", "2026-05-01T10:00:00Z"),
    ("vip", "true"),
    ("vip", 1),
    ("tier", "bronze"),
    ("tier", "Gold"),
]


async def test_bad_values_are_400_naming_the_key(api: httpx.AsyncClient, world: World) -> None:
    await define_all(api, world)
    headers = world.admin.headers
    lead = await create_lead(api, world.admin, custom_fields={"industry": "saas"})
    url = detail_url(lead["id"])
    for key, value in BAD_VALUES:
        name = f"custom_fields.{key}"
        body = {"title": "T", "custom_fields": {key: value}}
        refused(await api.post(LEADS, json=body, headers=headers), 400, name)
        patch = {"custom_fields": {key: value}}
        refused(await api.patch(url, json=patch, headers=headers), 400, name)
        refused(await api.put(url, json=body, headers=headers), 400, name)
    # Every bad key is named at once.
    body = {"title": "T", "custom_fields": {"nope": 1, "score": "x", "tier": "bronze"}}
    response = await api.post(LEADS, json=body, headers=headers)
    refused(response, 400, "custom_fields.nope", "custom_fields.score", "custom_fields.tier")
    got = (await api.get(url, headers=headers)).json()
    assert got["custom_fields"] == {"industry": "saas"}
    assert (await list_leads(api, world.admin))["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_custom_fields_must_be_an_object(api: httpx.AsyncClient, world: World) -> None:
    for value in (["industry"], "industry", 3):
        body = {"title": "T", "custom_fields": value}
        response = await api.post(LEADS, json=body, headers=world.admin.headers)
        refused(response, 400, "custom_fields")
    assert (await list_leads(api, world.admin))["count"] == 0


async def test_required_field_on_create_and_put(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "industry", "text", required=True)
    await define_field(api, world.admin, "score", "number")
    headers = world.admin.headers
    name = "custom_fields.industry"
    refused(await api.post(LEADS, json={"title": "T"}, headers=headers), 400, name)
    body = {"title": "T", "custom_fields": {"score": 1}}
    refused(await api.post(LEADS, json=body, headers=headers), 400, name)
    body = {"title": "T", "custom_fields": {"industry": None}}
    refused(await api.post(LEADS, json=body, headers=headers), 400, name)
    lead = await create_lead(api, world.admin, custom_fields={"industry": "saas", "score": 1})
    url = detail_url(lead["id"])
    refused(await api.put(url, json={"title": "T"}, headers=headers), 400, name)
    body = {"title": "T", "custom_fields": {"score": 2}}
    refused(await api.put(url, json=body, headers=headers), 400, name)
    # PATCH without the field keeps it; PATCH removing it is refused.
    kept = await api.patch(url, json={"custom_fields": {"score": 2}}, headers=headers)
    assert kept.status_code == 200, kept.text
    assert kept.json()["custom_fields"] == {"industry": "saas", "score": 2}
    patch = {"custom_fields": {"industry": None}}
    refused(await api.patch(url, json=patch, headers=headers), 400, name)
    put = await api.put(
        url, json={"title": "T", "custom_fields": {"industry": "retail"}}, headers=headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["custom_fields"] == {"industry": "retail"}
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_patch_replaces_given_keys_keeps_others_null_removes(
    api: httpx.AsyncClient, world: World
) -> None:
    await define_all(api, world)
    headers = world.admin.headers
    lead = await create_lead(
        api, world.admin, custom_fields={"industry": "saas", "score": 1, "vip": True}
    )
    url = detail_url(lead["id"])
    response = await api.patch(
        url,
        json={"custom_fields": {"score": 2, "vip": None, "tier": "gold"}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["custom_fields"] == {"industry": "saas", "score": 2, "tier": "gold"}
    # A PATCH without custom_fields leaves them alone; an empty object changes nothing.
    untouched = await api.patch(url, json={"title": "New"}, headers=headers)
    assert untouched.json()["custom_fields"] == {"industry": "saas", "score": 2, "tier": "gold"}
    empty = await api.patch(url, json={"custom_fields": {}}, headers=headers)
    assert empty.json()["custom_fields"] == {"industry": "saas", "score": 2, "tier": "gold"}
    # Removing a key the record does not have is fine.
    absent = await api.patch(url, json={"custom_fields": {"renewal": None}}, headers=headers)
    assert absent.status_code == 200
    assert absent.json()["custom_fields"] == {"industry": "saas", "score": 2, "tier": "gold"}
    # PUT replaces the whole set.
    put = await api.put(url, json={"title": "T", "custom_fields": {"vip": False}}, headers=headers)
    assert put.json()["custom_fields"] == {"vip": False}
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_other_orgs_definitions_do_not_apply(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.other, "region", "text", required=True)
    body = {"title": "T", "custom_fields": {"region": "emea"}}
    response = await api.post(LEADS, json=body, headers=world.admin.headers)
    refused(response, 400, "custom_fields.region")
    # Their required field does not bind this org.
    lead = await create_lead(api, world.admin)
    assert lead["custom_fields"] == {}
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_making_a_dropdown_narrower_keeps_stored_values_readable(
    api: httpx.AsyncClient, world: World
) -> None:
    field = await define_field(api, world.admin, "tier", "dropdown", options=["gold", "silver"])
    lead = await create_lead(api, world.admin, custom_fields={"tier": "silver"})
    response = await api.patch(
        field_url(field["id"]), json={"options": ["gold"]}, headers=world.admin.headers
    )
    assert response.status_code == 200
    got = (await api.get(detail_url(lead["id"]), headers=world.admin.headers)).json()
    assert got["custom_fields"] == {"tier": "silver"}
    body = {"custom_fields": {"tier": "silver"}}
    url = detail_url(lead["id"])
    refused(await api.patch(url, json=body, headers=world.admin.headers), 400, "custom_fields.tier")
    await assert_invisible_to_other_org(api, world.other, lead["id"])
