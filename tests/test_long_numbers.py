"""A number of thousands of digits from a client (Python converts at most 4,300) is refused
like any other bad value, never a 500: 400 naming the parameter, 404 for a path id, 413 for
a body length, 400 (422 in /v2/) for a body."""

from urllib.parse import parse_qs, urlsplit

import httpx

from crm.lead_sources.service import ID_MAX
from crm.validation import TOO_MANY_DIGITS
from tests.conftest import World
from tests.leads_support import LEADS, create_lead, define_field, listed_ids, refused
from tests.test_lead_sources_v2 import SOURCES, assert_base_error, url

HUGE = "9" * 5000
PADDED_ONE = "0" * 5000 + "1"


async def test_v2_refuses_a_huge_number_in_a_parameter(
    api: httpx.AsyncClient, world: World
) -> None:
    for param, value in (
        ("page", HUGE),
        ("per_page", HUGE),
        ("ids", HUGE),
        ("ids", f"1,{HUGE}"),
        ("page", "-" + HUGE),
    ):
        response = await api.get(SOURCES, params={param: value}, headers=world.admin.headers)
        assert_base_error(response, 400, param)


async def test_v2_reads_a_huge_path_id_as_a_missing_source(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    for raw in (HUGE, str(ID_MAX + 1)):
        assert_base_error(await api.get(url(raw), headers=headers), 404)
        put = await api.put(url(raw), json={"data": {"name": "x"}}, headers=headers)
        assert_base_error(put, 404)
        assert_base_error(await api.delete(url(raw), headers=headers), 404)
    # Leading zeros are no length: the number is what counts.
    created = await api.post(SOURCES, json={"data": {"name": "Fair"}}, headers=headers)
    source_id = created.json()["data"]["id"]
    padded = "0" * 5000 + str(source_id)
    got = await api.get(url(padded), headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["data"]["name"] == "Fair"
    listed = await api.get(SOURCES, params={"ids": padded, "page": PADDED_ONE}, headers=headers)
    assert [item["data"]["id"] for item in listed.json()["items"]] == [source_id]
    assert_base_error(await api.get(url(padded), headers=world.other.headers), 404)


async def test_api_refuses_a_huge_page_size_naming_it(api: httpx.AsyncClient, world: World) -> None:
    for path in (LEADS, "/api/users/", "/api/custom-fields/", "/api/auth/tokens/"):
        response = await api.get(path, params={"page_size": HUGE}, headers=world.admin.headers)
        errors = refused(response, 400, "page_size")
        assert "at most" in errors["page_size"]


async def test_api_reads_a_huge_page_as_past_the_end(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    for path in (LEADS, "/api/users/"):
        far = await api.get(path, params={"page": HUGE}, headers=world.admin.headers)
        assert far.status_code == 200, far.text
        assert far.json()["results"] == []
        assert far.json()["next"] is None
        assert parse_qs(urlsplit(far.json()["previous"]).query) == {"page": ["1"]}
    assert await listed_ids(api, world.admin, {"page": PADDED_ONE}) == [lead["id"]]
    assert await listed_ids(api, world.other, {"page": PADDED_ONE}) == []


async def test_a_body_number_of_thousands_of_digits_is_refused(
    api: httpx.AsyncClient, world: World
) -> None:
    await define_field(api, world.admin, "score", "number")
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    body = f'{{"title": "Big", "custom_fields": {{"score": {HUGE}}}}}'
    errors = refused(await api.post(LEADS, content=body, headers=headers), 400)
    assert errors == {"detail": TOO_MANY_DIGITS}
    v2 = await api.post(SOURCES, content=f'{{"data": {{"name": {HUGE}}}}}', headers=headers)
    assert assert_base_error(v2, 422)["message"] == TOO_MANY_DIGITS
    assert await listed_ids(api, world.admin) == []


async def test_a_body_length_of_thousands_of_digits_is_413(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = {**world.admin.headers, "Content-Type": "application/json", "Content-Length": HUGE}
    refused(await api.post(LEADS, content=b'{"title": "x"}', headers=headers), 413)
    assert await listed_ids(api, world.admin) == []
