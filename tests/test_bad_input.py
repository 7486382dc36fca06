"""Bad input is a 400 naming the field, never a 500 nor a silent coercion (CONTRACT §3, §6):
non-finite and out-of-range numbers, calendar edges, lax booleans, untrimmed keys."""

import json

import httpx
import pytest

from tests.conftest import World
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

TOKENS = "/api/auth/tokens/"
INT_MAX = 2**63 - 1

# Python's json.loads reads these; none of them is a finite 64-bit number.
BAD_NUMBERS = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "100000000000000000000000",
    str(2**63),
    str(-(2**63)),
    "1e300",  # finite, but PostgreSQL would give it back as a 301-digit int
    "-9.3e18",
)


async def send(
    api: httpx.AsyncClient, method: str, url: str, text: str, headers: dict[str, str]
) -> httpx.Response:
    """`text` sent verbatim as the JSON body (httpx would refuse to encode NaN)."""
    headers = {**headers, "Content-Type": "application/json"}
    return await api.request(method, url, content=text, headers=headers)


# --- 1. number custom fields hold finite 64-bit numbers ----------------------------------


@pytest.mark.parametrize("number", BAD_NUMBERS)
async def test_a_number_field_refuses_non_finite_and_huge_numbers(
    api: httpx.AsyncClient, world: World, number: str
) -> None:
    await define_field(api, world.admin, "score", "number", filterable=True)
    headers = world.admin.headers
    body = f'{{"title": "Bad", "custom_fields": {{"score": {number}}}}}'
    refused(await send(api, "POST", LEADS, body, headers), 400, "custom_fields.score")

    lead = await create_lead(api, world.admin, custom_fields={"score": 1})
    url = detail_url(lead["id"])
    patch = f'{{"custom_fields": {{"score": {number}}}}}'
    refused(await send(api, "PATCH", url, patch, headers), 400, "custom_fields.score")
    put = f'{{"title": "Put", "custom_fields": {{"score": {number}}}}}'
    refused(await send(api, "PUT", url, put, headers), 400, "custom_fields.score")

    # Nothing was written: the lead keeps its value, and lists and filters still answer.
    got = await api.get(url, headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["custom_fields"] == {"score": 1}
    assert await listed_ids(api, world.admin) == [lead["id"]]
    assert await listed_ids(api, world.admin, {"cf_score": "1"}) == [lead["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_a_number_field_takes_the_edges_of_the_range(
    api: httpx.AsyncClient, world: World
) -> None:
    await define_field(api, world.admin, "score", "number", filterable=True)
    for value in (INT_MAX, -INT_MAX, 9.2e18, -9.2e18, 0.5, -1.5e-300):
        lead = await create_lead(api, world.admin, custom_fields={"score": value})
        assert lead["custom_fields"] == {"score": value}
        got = await api.get(detail_url(lead["id"]), headers=world.admin.headers)
        assert got.json()["custom_fields"] == {"score": value}
        assert await listed_ids(api, world.admin, {"cf_score": json.dumps(value)}) == [lead["id"]]
        await assert_invisible_to_other_org(api, world.other, lead["id"])


# --- 2. cf_<key> filter values are plain finite decimals ---------------------------------


BAD_FILTERS = [
    *("nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1_000", "", " 1", "1e"),
    *("0x10", "1.", ".5", "+1", "\u0661\u0662", "1\n", "9" * 5000, "1e99999999999999999999"),
    *("100000000000000000000000", str(2**63), "1e300", "-9.3e18"),
]


@pytest.mark.parametrize("raw", BAD_FILTERS)
async def test_a_number_filter_refuses_what_is_no_finite_decimal(
    api: httpx.AsyncClient, world: World, raw: str
) -> None:
    await define_field(api, world.admin, "score", "number", filterable=True)
    await create_lead(api, world.admin, custom_fields={"score": 1000})
    response = await api.get(LEADS, params={"cf_score": raw}, headers=world.admin.headers)
    refused(response, 400, "cf_score")


async def test_a_number_filter_takes_decimal_notation(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "score", "number", filterable=True)
    thousand = await create_lead(api, world.admin, custom_fields={"score": 1000})
    big = await create_lead(api, world.admin, custom_fields={"score": 9e18})
    exact = await create_lead(api, world.admin, custom_fields={"score": 2**53 + 1})
    for raw in ("1000", "1000.0", "1e3", "1.0E+3", "01000"):
        assert await listed_ids(api, world.admin, {"cf_score": raw}) == [thousand["id"]]
    assert await listed_ids(api, world.admin, {"cf_score": "9e18"}) == [big["id"]]
    assert await listed_ids(api, world.admin, {"cf_score": str(2**53 + 1)}) == [exact["id"]]
    assert await listed_ids(api, world.admin, {"cf_score": str(INT_MAX)}) == []
    assert await listed_ids(api, world.admin, {"cf_score": "-5.5"}) == []
    assert await listed_ids(api, world.admin, {"cf_score": "0" * 5000 + "1"}) == []
    for lead in (thousand, big, exact):
        await assert_invisible_to_other_org(api, world.other, lead["id"])


# --- 3. dates at the edges of the calendar -----------------------------------------------


async def test_created_at_bounds_at_the_edges_of_the_calendar(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create_lead(api, world.admin)
    # A bare date as the upper bound is that whole day, up to 9999-12-31T23:59:59.999999Z.
    for params in (
        {"created_at__lte": "9999-12-31"},
        {"created_at__gte": "0001-01-01"},
        {"created_at__gte": "0001-01-01T00:00:00Z", "created_at__lte": "9999-12-31T23:59:59Z"},
        {"created_at__gte": "0001-01-01T00:00:00-01:00"},
        {"created_at__lte": "9999-12-31T23:59:59+01:00"},
    ):
        assert await listed_ids(api, world.admin, params) == [lead["id"]], params
        assert await listed_ids(api, world.other, params) == [], params
    assert await listed_ids(api, world.admin, {"created_at__gte": "9999-12-31"}) == []
    assert await listed_ids(api, world.admin, {"created_at__lte": "0001-01-01"}) == []
    await assert_invisible_to_other_org(api, world.other, lead["id"])


@pytest.mark.parametrize(
    ("param", "raw"),
    [
        # In UTC these are before year 1 or after year 9999.
        ("created_at__gte", "0001-01-01T00:00:00+01:00"),
        ("created_at__lte", "0001-01-01T00:00:00+01:00"),
        ("created_at__gte", "9999-12-31T23:59:59-01:00"),
        ("created_at__lte", "9999-12-31T23:59:59-01:00"),
        ("created_at__gte", "10000-01-01"),
        ("created_at__lte", "0000-12-31"),
    ],
)
async def test_created_at_out_of_range_is_refused(
    api: httpx.AsyncClient, world: World, param: str, raw: str
) -> None:
    await create_lead(api, world.admin)
    refused(await api.get(LEADS, params={param: raw}, headers=world.admin.headers), 400, param)


@pytest.mark.parametrize(
    "expires_at",
    ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999999-00:01", "0001-01-01T00:00:00+01:00"],
)
async def test_a_token_expiry_out_of_range_is_refused(
    api: httpx.AsyncClient, world: World, expires_at: str
) -> None:
    body = {"name": "edge", "expires_at": expires_at}
    refused(await api.post(TOKENS, json=body, headers=world.admin.headers), 400, "expires_at")
    listed = await api.get(TOKENS, headers=world.admin.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["results"] == []


async def test_a_token_may_expire_at_the_end_of_the_calendar(
    api: httpx.AsyncClient, world: World
) -> None:
    body = {"name": "edge", "expires_at": "9999-12-31T23:59:59+05:00"}
    response = await api.post(TOKENS, json=body, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["expires_at"] == "9999-12-31T18:59:59Z"
    me = await api.get("/api/auth/me/", headers={"Authorization": f"Bearer {created['token']}"})
    assert me.status_code == 200, me.text
    listed = await api.get(TOKENS, headers=world.admin.headers)
    assert [t["id"] for t in listed.json()["results"]] == [created["id"]]
    theirs = await api.get(TOKENS, headers=world.other.headers)
    assert theirs.json()["results"] == []


# --- 4. booleans are JSON booleans -------------------------------------------------------


@pytest.mark.parametrize("value", ["no", "false", 0, "0", "off", None])
async def test_is_active_takes_only_a_boolean(
    api: httpx.AsyncClient, world: World, value: object
) -> None:
    url = f"/api/users/{world.user.profile_id}/"
    response = await api.patch(url, json={"is_active": value}, headers=world.admin.headers)
    if value is None:  # null means "leave as is", as before
        assert response.status_code == 200, response.text
    else:
        refused(response, 400, "is_active")
    # The user is still active: its token works and the admin reads it as active.
    me = await api.get("/api/auth/me/", headers=world.user.headers)
    assert me.status_code == 200, me.text
    got = await api.get("/api/users/", headers=world.admin.headers)
    by_id = {p["id"]: p for p in got.json()["results"]}
    assert by_id[world.user.profile_id]["is_active"] is True
    # The other org's admin can neither see nor change this profile.
    theirs = await api.get("/api/users/", headers=world.other.headers)
    assert world.user.profile_id not in [p["id"] for p in theirs.json()["results"]]
    refused(await api.patch(url, json={"is_active": False}, headers=world.other.headers), 404)


@pytest.mark.parametrize("name", ["required", "filterable"])
@pytest.mark.parametrize("value", ["yes", "true", 1, "1", "on"])
async def test_definition_flags_take_only_a_boolean(
    api: httpx.AsyncClient, world: World, name: str, value: object
) -> None:
    headers = world.admin.headers
    body = {"entity": "lead", "key": "industry", "label": "Industry", "type": "text", name: value}
    refused(await api.post(CUSTOM_FIELDS, json=body, headers=headers), 400, name)
    assert (await api.get(CUSTOM_FIELDS, headers=headers)).json()["results"] == []

    field = await define_field(api, world.admin, "industry", "text")
    url = f"{CUSTOM_FIELDS}{field['id']}/"
    refused(await api.patch(url, json={name: value}, headers=headers), 400, name)
    got = await api.get(url, headers=headers)
    assert got.json() == field
    assert got.json()[name] is False
    listed = await api.get(CUSTOM_FIELDS, headers=world.other.headers)
    assert listed.json()["results"] == []
    refused(await api.get(url, headers=world.other.headers), 404)


# --- 5. a custom field key is taken as given, never trimmed ------------------------------


@pytest.mark.parametrize("key", [" abc ", "abc ", " abc", "a\n", "\tabc", "abc\u00a0"])
async def test_a_key_with_white_space_is_refused_not_trimmed(
    api: httpx.AsyncClient, world: World, key: str
) -> None:
    headers = world.admin.headers
    body = {"entity": "lead", "key": key, "label": "ABC", "type": "text"}
    refused(await api.post(CUSTOM_FIELDS, json=body, headers=headers), 400, "key")
    assert (await api.get(CUSTOM_FIELDS, headers=headers)).json()["results"] == []


async def test_a_label_is_still_trimmed(api: httpx.AsyncClient, world: World) -> None:
    body = {"entity": "lead", "key": "abc", "label": "  ABC \n", "type": "text"}
    response = await api.post(CUSTOM_FIELDS, json=body, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["key"], created["label"]) == ("abc", "ABC")
    listed = await api.get(CUSTOM_FIELDS, headers=world.other.headers)
    assert created["id"] not in [d["id"] for d in listed.json()["results"]]
