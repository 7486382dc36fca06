"""Every request body but an upload's is JSON in UTF-8, declared as such, with no key given
twice and nested at most 32 levels deep; anything else is refused in the dialect's envelope
(400 in /api/, 422 in /v2/, 415 for what is not JSON at all) and changes nothing."""

import gzip
import json
from typing import Any

import httpx

from crm.validation import DUPLICATE_KEY, MAX_DEPTH, NOT_UTF8, NUL_REASON, TOO_DEEP
from tests.conftest import Identity, World
from tests.leads_support import (
    CUSTOM_FIELDS,
    LEADS,
    assert_invisible_to_other_org,
    create_lead,
    define_field,
    detail_url,
    listed_ids,
    refused,
)
from tests.test_lead_sources_v2 import SOURCES, assert_base_error, url

JSON = "application/json"


def nested(depth: int, leaf: str = "1") -> str:
    """A JSON array `depth` levels deep around `leaf`."""
    return "[" * depth + leaf + "]" * depth


async def send(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    who: Identity,
    content: str | bytes,
    content_type: str | None = JSON,
    **headers: str,
) -> httpx.Response:
    sent = {**who.headers, **headers}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return await api.request(method, path, content=content, headers=sent)


async def source_names(api: httpx.AsyncClient, who: Identity) -> list[str]:
    listed = await api.get(SOURCES, params={"per_page": "100"}, headers=who.headers)
    assert listed.status_code == 200, listed.text
    return [item["data"]["name"] for item in listed.json()["items"]]


async def field_keys(api: httpx.AsyncClient, who: Identity) -> list[str]:
    listed = await api.get(CUSTOM_FIELDS, headers=who.headers)
    assert listed.status_code == 200, listed.text
    return [field["key"] for field in listed.json()["results"]]


async def a_lead_and_a_source(api: httpx.AsyncClient, world: World) -> tuple[dict[str, Any], int]:
    await define_field(api, world.admin, "note", "text")
    lead = await create_lead(api, world.admin, title="Kept", custom_fields={"note": "kept"})
    created = await api.post(SOURCES, json={"data": {"name": "Kept"}}, headers=world.admin.headers)
    assert created.status_code == 200, created.text
    return lead, created.json()["data"]["id"]


async def assert_unchanged(
    api: httpx.AsyncClient, world: World, lead: dict[str, Any], names: list[str]
) -> None:
    """The lead, the custom fields and the sources are as they were; the other org sees
    none of it."""
    assert await listed_ids(api, world.admin) == [lead["id"]]
    got = await api.get(detail_url(lead["id"]), headers=world.admin.headers)
    assert got.status_code == 200, got.text
    assert (got.json()["title"], got.json()["custom_fields"]) == ("Kept", {"note": "kept"})
    assert await field_keys(api, world.admin) == ["note"]
    assert await source_names(api, world.admin) == names
    await assert_invisible_to_other_org(api, world.other, lead["id"])
    assert "Kept" not in await source_names(api, world.other)


# --- nesting ---------------------------------------------------------------------------


async def test_a_deeply_nested_body_is_refused_everywhere(
    api: httpx.AsyncClient, world: World
) -> None:
    lead, source_id = await a_lead_and_a_source(api, world)
    names = await source_names(api, world.admin)
    fields = await api.get(CUSTOM_FIELDS, headers=world.admin.headers)
    field_id = fields.json()["results"][0]["id"]
    for depth in (100, 500, 1000, 10_000, 100_000):
        await refuse_nested(api, world, nested(depth), lead["id"], field_id, source_id)
    await assert_unchanged(api, world, lead, names)


async def refuse_nested(
    api: httpx.AsyncClient, world: World, deep: str, lead_id: str, field_id: str, source_id: int
) -> None:
    api_writes = [
        ("POST", LEADS, f'{{"title": {deep}}}'),
        ("POST", LEADS, f'{{"title": "t", "custom_fields": {{"note": {deep}}}}}'),
        ("PATCH", detail_url(lead_id), f'{{"title": {deep}}}'),
        ("PATCH", detail_url(lead_id), f'{{"custom_fields": {{"note": {deep}}}}}'),
        ("PUT", detail_url(lead_id), f'{{"title": "t", "tags": {deep}}}'),
        (
            "POST",
            CUSTOM_FIELDS,
            f'{{"entity": "lead", "key": "k", "label": "K", "type": "dropdown",'
            f' "options": {deep}}}',
        ),
        ("PATCH", f"{CUSTOM_FIELDS}{field_id}/", f'{{"options": {deep}}}'),
    ]
    for method, path, body in api_writes:
        response = await send(api, method, path, world.admin, body)
        assert refused(response, 400) == {"detail": TOO_DEEP}, (method, path)
    for method, path in (("POST", SOURCES), ("PUT", url(source_id))):
        response = await send(api, method, path, world.admin, f'{{"data": {{"name": {deep}}}}}')
        assert assert_base_error(response, 422)["message"] == TOO_DEEP


async def test_a_body_nested_up_to_the_bound_reaches_validation(
    api: httpx.AsyncClient, world: World
) -> None:
    """The top-level object is the first level: 32 levels are read and validated as usual,
    a NUL character at the bottom found; 33 are refused before any validation."""
    lead, source_id = await a_lead_and_a_source(api, world)
    names = await source_names(api, world.admin)
    deepest = nested(MAX_DEPTH - 1)
    refused(await send(api, "POST", LEADS, world.admin, f'{{"title": {deepest}}}'), 400, "title")
    with_nul = nested(MAX_DEPTH - 2, '"\\u0000"')
    body = f'{{"title": "t", "custom_fields": {{"note": {with_nul}}}}}'
    nul = refused(await send(api, "POST", LEADS, world.admin, body), 400, "custom_fields.note")
    assert nul == {"custom_fields.note": NUL_REASON}
    v2 = await send(
        api, "PUT", url(source_id), world.admin, f'{{"data": {{"name": {nested(29)}}}}}'
    )
    assert_base_error(v2, 422, "name")

    too_deep = f'{{"title": {nested(MAX_DEPTH)}}}'
    assert refused(await send(api, "POST", LEADS, world.admin, too_deep), 400) == {
        "detail": TOO_DEEP
    }
    v2 = await send(
        api, "PUT", url(source_id), world.admin, f'{{"data": {{"name": {nested(31)}}}}}'
    )
    assert assert_base_error(v2, 422)["message"] == TOO_DEEP
    await assert_unchanged(api, world, lead, names)


# --- media type and charset ------------------------------------------------------------

NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "json",
    None,  # no Content-Type at all
]


async def test_a_body_not_declared_as_utf8_json_is_415(
    api: httpx.AsyncClient, world: World
) -> None:
    lead, source_id = await a_lead_and_a_source(api, world)
    names = await source_names(api, world.admin)
    for content_type in NOT_JSON:
        for method, path in (("POST", LEADS), ("PATCH", detail_url(lead["id"]))):
            response = await send(api, method, path, world.admin, '{"title": "New"}', content_type)
            refused(response, 415)
        body = '{"data": {"name": "New"}}'
        for method, path in (("POST", SOURCES), ("PUT", url(source_id))):
            response = await send(api, method, path, world.admin, body, content_type)
            error = assert_base_error(response, 415)
            assert error["code"] == "unsupported_media_type", content_type
            assert response.json()["meta"]["http_status"] == "415 Unsupported Media Type"
    # Nor is a compressed body.
    for path, raw in ((LEADS, b'{"title": "New"}'), (SOURCES, b'{"data": {"name": "New"}}')):
        packed = gzip.compress(raw)
        response = await send(
            api, "POST", path, world.admin, packed, **{"Content-Encoding": "gzip"}
        )
        assert response.status_code == 415, response.text
    await assert_unchanged(api, world, lead, names)


JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    'Application/JSON; charset="UTF-8"',
    "application/merge-patch+json",
]


async def test_json_in_utf8_is_taken_in_any_spelling_of_its_type(
    api: httpx.AsyncClient, world: World
) -> None:
    for number, content_type in enumerate(JSON_TYPES):
        lead = {"title": "Ünïcode", "email": f"jane{number}@example.com"}
        body = json.dumps(lead, ensure_ascii=False).encode()
        created = await send(api, "POST", LEADS, world.admin, body, content_type)
        assert created.status_code == 201, created.text
        assert created.json()["title"] == "Ünïcode"
        source = f'{{"data": {{"name": "Fair {number}"}}}}'
        made = await send(api, "POST", SOURCES, world.admin, source, content_type)
        assert made.status_code == 200, made.text
        await assert_invisible_to_other_org(api, world.other, created.json()["id"])
    assert "Fair 0" not in await source_names(api, world.other)


async def test_a_body_in_another_encoding_is_refused(api: httpx.AsyncClient, world: World) -> None:
    lead, source_id = await a_lead_and_a_source(api, world)
    names = await source_names(api, world.admin)
    for encoding in ("utf-16", "utf-32", "latin-1"):
        body = '{"title": "Café"}'.encode(encoding)
        response = await send(api, "POST", LEADS, world.admin, body)
        assert refused(response, 400) == {"detail": NOT_UTF8}
        body = '{"data": {"name": "Café"}}'.encode(encoding)
        response = await send(api, "PUT", url(source_id), world.admin, body)
        assert assert_base_error(response, 422)["message"] == NOT_UTF8
    await assert_unchanged(api, world, lead, names)


# --- duplicate keys --------------------------------------------------------------------


async def test_a_key_given_twice_is_refused_naming_it(api: httpx.AsyncClient, world: World) -> None:
    lead, source_id = await a_lead_and_a_source(api, world)
    names = await source_names(api, world.admin)
    cases = [
        ("POST", LEADS, '{"title": "a", "title": "b"}', "title"),
        (
            "PATCH",
            detail_url(lead["id"]),
            '{"custom_fields": {"note": "a", "note": "b"}}',
            "custom_fields.note",
        ),
        ("PUT", detail_url(lead["id"]), '{"title": "a", "tags": [{"x": 1, "x": 2}]}', "tags.0.x"),
        (
            "POST",
            CUSTOM_FIELDS,
            '{"entity": "lead", "key": "a", "key": "b", "label": "L", "type": "text"}',
            "key",
        ),
    ]
    for method, path, body, field in cases:
        errors = refused(await send(api, method, path, world.admin, body), 400, field)
        assert errors[field] == DUPLICATE_KEY
    for method, path in (("POST", SOURCES), ("PUT", url(source_id))):
        body = '{"data": {"name": "a", "name": "b"}}'
        error = assert_base_error(
            await send(api, method, path, world.admin, body), 422, "data.name"
        )
        assert error["message"] == DUPLICATE_KEY
    await assert_unchanged(api, world, lead, names)


# --- what is not held to JSON ----------------------------------------------------------


async def test_an_upload_path_and_a_body_less_post_are_not_held_to_json(
    api: httpx.AsyncClient, world: World
) -> None:
    """Uploads are multipart (their endpoints check their own bodies); a POST without a
    body needs no Content-Type."""
    files = {"file": ("leads.csv", b"title\nA\n", "text/csv")}
    upload = await api.post(f"{LEADS}upload/", files=files, headers=world.admin.headers)
    assert upload.status_code not in (400, 415), upload.text

    lead = await create_lead(api, world.admin)
    deleted = await api.delete(detail_url(lead["id"]), headers=world.admin.headers)
    assert deleted.status_code == 204
    restored = await api.post(f"{detail_url(lead['id'])}restore/", headers=world.admin.headers)
    assert restored.status_code == 200, restored.text
    await assert_invisible_to_other_org(api, world.other, lead["id"])
