"""Lead sources in the /v2/ dialect (CONTRACT §4, seed 001): the seed's examples, list
parameters and links, validation, uniqueness, roles, tenancy and the Base error envelope."""

import asyncio
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from crm.lead_sources import service
from crm.lead_sources.models import DEFAULT_SOURCES
from crm.orgs.models import User
from tests.apps import client_of, fresh_app
from tests.conftest import Identity, World, register

SOURCES = "/v2/lead_sources"
DATA_KEYS = {"id", "creator_id", "name", "resource_type", "created_at", "updated_at"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


# --- helpers ---------------------------------------------------------------------------


def url(source_id: int | str) -> str:
    return f"{SOURCES}/{source_id}"


def assert_record(body: dict[str, Any]) -> dict[str, Any]:
    """A record exactly as the seed shows one; its data."""
    assert set(body) == {"data", "meta"}
    assert body["meta"] == {"type": "source"}
    data: dict[str, Any] = body["data"]
    assert set(data) == DATA_KEYS
    assert isinstance(data["id"], int) and not isinstance(data["id"], bool)
    assert isinstance(data["creator_id"], int)
    assert isinstance(data["name"], str)
    assert data["resource_type"] == "lead"
    assert TIME.match(data["created_at"]), data["created_at"]
    assert TIME.match(data["updated_at"]), data["updated_at"]
    assert data["updated_at"] >= data["created_at"]
    return data


def assert_base_error(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """An error in the Base envelope: logref is the request id, `field` set when given (and
    absent otherwise). Returns the first error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors", "meta"}
    meta = body["meta"]
    assert meta["type"] == "errors"
    assert meta["http_status"].startswith(f"{status} ")
    assert meta["logref"] == response.headers["X-Request-Id"] != ""
    assert body["errors"], body
    for item in body["errors"]:
        assert item["meta"] == {"type": "error"}
        error = item["error"]
        assert {"code", "message", "details"} <= set(error)
        assert all(isinstance(error[key], str) and error[key] for key in ("code", "message"))
    first: dict[str, Any] = body["errors"][0]["error"]
    if field is None:
        assert all("field" not in item["error"] for item in body["errors"]), body
    else:
        assert first["field"] == field, body
    return first


async def listing(
    api: httpx.AsyncClient, who: Identity, params: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A list: its items' data and its meta, its shape checked."""
    response = await api.get(SOURCES, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "meta"}
    meta = body["meta"]
    assert set(meta) == {"type", "count", "links"}
    assert meta["type"] == "collection"
    assert meta["count"] == len(body["items"])
    assert set(meta["links"]) <= {"self", "next_page", "prev_page"}
    assert meta["links"]["self"] == str(response.request.url)
    return [assert_record(item) for item in body["items"]], meta


def all_of(params: Any) -> list[tuple[str, Any]]:
    """The parameters (a mapping or pairs), with the largest page unless one is given."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params or [])
    if all(key != "per_page" for key, _ in pairs):
        pairs.insert(0, ("per_page", 100))
    return pairs


async def names(api: httpx.AsyncClient, who: Identity, params: Any = None) -> list[str]:
    items, _ = await listing(api, who, all_of(params))
    return [item["name"] for item in items]


async def ids(api: httpx.AsyncClient, who: Identity, params: Any = None) -> list[int]:
    items, _ = await listing(api, who, all_of(params))
    return [item["id"] for item in items]


async def create(api: httpx.AsyncClient, who: Identity, name: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(SOURCES, json={"data": {"name": name, **extra}}, headers=who.headers)
    assert response.status_code == 200, response.text
    data = assert_record(response.json())
    assert data["name"] == name
    return data


async def assert_hidden_from(api: httpx.AsyncClient, other: Identity, source_id: int) -> None:
    """Another org's admin cannot read, change, delete or list the source."""
    assert_base_error(await api.get(url(source_id), headers=other.headers), 404)
    put = await api.put(url(source_id), json={"data": {"name": "Mine"}}, headers=other.headers)
    assert_base_error(put, 404)
    assert_base_error(await api.delete(url(source_id), headers=other.headers), 404)
    assert source_id not in await ids(api, other)
    assert await ids(api, other, {"ids": str(source_id)}) == []


async def user_number(app: FastAPI, email: str) -> int:
    async with app.state.db.sessionmaker() as session:
        number = await session.scalar(select(User.number).where(User.email == email))
    assert isinstance(number, int)
    return number


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


# --- the seed's examples ---------------------------------------------------------------


async def test_the_seed_examples(api: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    admin = world.admin
    number = await user_number(app, admin.email)

    # Retrieve all sources: the list shape.
    response = await api.get(SOURCES, headers={**admin.headers, "Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"items", "meta"}
    assert body["meta"] == {
        "type": "collection",
        "count": len(DEFAULT_SOURCES),
        "links": {"self": "http://testserver/v2/lead_sources"},
    }
    for item in body["items"]:
        assert set(item) == {"data", "meta"}
        assert item["meta"] == {"type": "source"}
        assert assert_record(item)["creator_id"] == number

    # Create a source, with the seed's body word for word.
    response = await api.post(
        SOURCES,
        json={"data": {"name": "Tom"}, "meta": {"type": "source"}},
        headers={**admin.headers, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    created = assert_record(response.json())
    assert created["name"] == "Tom"
    assert created["resource_type"] == "lead"
    assert created["creator_id"] == number
    assert created["created_at"] == created["updated_at"]
    assert created["id"] not in [item["data"]["id"] for item in body["items"]]

    # Retrieve a single source.
    response = await api.get(url(created["id"]), headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"data": created, "meta": {"type": "source"}}

    # Update a source.
    response = await api.put(
        url(created["id"]), json={"data": {"name": "Tom referral"}}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    updated = assert_record(response.json())
    assert updated == {**created, "name": "Tom referral", "updated_at": updated["updated_at"]}
    assert updated["updated_at"] >= created["updated_at"]
    assert (await api.get(url(created["id"]), headers=admin.headers)).json()["data"] == updated

    await assert_hidden_from(api, world.other, created["id"])

    # Delete a source: a bare 204.
    response = await api.delete(url(created["id"]), headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert_base_error(await api.get(url(created["id"]), headers=admin.headers), 404)
    assert_base_error(await api.delete(url(created["id"]), headers=admin.headers), 404)
    assert "Tom referral" not in await names(api, admin)


async def test_a_new_org_starts_with_the_default_sources(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    ours, _ = await listing(api, world.admin)
    assert [item["name"] for item in ours] == list(DEFAULT_SOURCES)
    assert [item["id"] for item in ours] == sorted(item["id"] for item in ours)
    number = await user_number(app, world.admin.email)
    assert {item["creator_id"] for item in ours} == {number}
    theirs, _ = await listing(api, world.other)
    assert [item["name"] for item in theirs] == list(DEFAULT_SOURCES)
    assert {item["id"] for item in ours}.isdisjoint(item["id"] for item in theirs)
    # A member reads the same list.
    assert await names(api, world.user) == list(DEFAULT_SOURCES)
    await assert_hidden_from(api, world.other, ours[0]["id"])


# --- list parameters -------------------------------------------------------------------


async def test_pages_and_their_links(api: httpx.AsyncClient, world: World) -> None:
    for n in range(5):
        await create(api, world.admin, f"Extra {n}")
    everything = await ids(api, world.admin)
    assert len(everything) == 13

    first, meta = await listing(api, world.admin, {"per_page": 5})
    assert meta["count"] == 5
    assert "prev_page" not in meta["links"]
    next_link = meta["links"]["next_page"]
    assert next_link.startswith("http://testserver/v2/lead_sources?")
    assert query_of(next_link) == {"per_page": ["5"], "page": ["2"]}

    # Following the links walks every source once, in id order.
    seen = [item["id"] for item in first]
    pages = 1
    while "next_page" in meta["links"]:
        response = await api.get(meta["links"]["next_page"], headers=world.admin.headers)
        assert response.status_code == 200
        body = response.json()
        meta = body["meta"]
        pages += 1
        assert query_of(meta["links"]["prev_page"]) == {"per_page": ["5"], "page": [str(pages - 1)]}
        seen += [item["data"]["id"] for item in body["items"]]
    assert pages == 3
    assert meta["count"] == 3
    assert seen == everything

    # A page past the end: no items, and back to the last page.
    past, meta = await listing(api, world.admin, {"per_page": 5, "page": 7})
    assert past == []
    assert meta["count"] == 0
    assert "next_page" not in meta["links"]
    assert query_of(meta["links"]["prev_page"]) == {"per_page": ["5"], "page": ["3"]}

    # Other parameters are kept in the links.
    _, meta = await listing(api, world.admin, {"per_page": 2, "sort_by": "name:desc"})
    assert query_of(meta["links"]["next_page"]) == {
        "per_page": ["2"],
        "sort_by": ["name:desc"],
        "page": ["2"],
    }
    # The default page size is 25, the largest 100.
    _, meta = await listing(api, world.admin)
    assert meta["count"] == 13 and "next_page" not in meta["links"]
    _, meta = await listing(api, world.admin, {"per_page": 100, "page": 1})
    assert meta["count"] == 13 and set(meta["links"]) == {"self"}
    assert await ids(api, world.other) == sorted(await ids(api, world.other))
    assert set(everything).isdisjoint(await ids(api, world.other))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"per_page": -1}, "per_page"),
        ({"per_page": "ten"}, "per_page"),
        ({"per_page": ""}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": "first"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"sort_by": "title"}, "sort_by"),
        ({"sort_by": "name:sideways"}, "sort_by"),
        ({"sort_by": "name,"}, "sort_by"),
        ({"sort_by": ""}, "sort_by"),
        ({"sort_by": "creator_id"}, "sort_by"),
        ({"ids": "abc"}, "ids"),
        ({"ids": "1,x"}, "ids"),
        ({"ids": "1,,2"}, "ids"),
        ({"ids": ""}, "ids"),
        ({"ids": "-1"}, "ids"),
        ({"ids": "1.0"}, "ids"),
        ({"ids": "99999999999999999999999"}, "ids"),
        ({"q": "x"}, "q"),
        ({"page_size": 10}, "page_size"),
        ({"search": "call"}, "search"),
        ([("page", "1"), ("page", "2")], "page"),
    ],
)
async def test_bad_list_parameters_are_400(
    api: httpx.AsyncClient, world: World, params: Any, field: str
) -> None:
    response = await api.get(SOURCES, params=params, headers=world.admin.headers)
    error = assert_base_error(response, 400, field)
    assert error["code"] == "bad_request"
    assert response.json()["meta"]["http_status"] == "400 Bad Request"
    # Anonymous is 401 before anything else.
    assert_base_error(await api.get(SOURCES, params=params), 401)


async def test_sort_by(api: httpx.AsyncClient, world: World) -> None:
    first = await create(api, world.admin, "alpha")
    second = await create(api, world.admin, "Bravo")
    third = await create(api, world.admin, "zulu")
    all_names = [*DEFAULT_SOURCES, "alpha", "Bravo", "zulu"]
    by_name = sorted(all_names, key=str.lower)
    assert await names(api, world.admin, {"sort_by": "name"}) == by_name
    assert await names(api, world.admin, {"sort_by": "name:asc"}) == by_name
    assert await names(api, world.admin, {"sort_by": "name:desc"}) == by_name[::-1]
    assert await names(api, world.admin) == all_names  # id ascending by default
    assert await names(api, world.admin, {"sort_by": "id"}) == all_names
    assert await names(api, world.admin, {"sort_by": "id:desc"}) == all_names[::-1]
    # The defaults share one creation time: ties are broken by id, or by the next key.
    newest_first = ["zulu", "Bravo", "alpha"]
    assert await names(api, world.admin, {"sort_by": "created_at:desc"}) == newest_first + list(
        DEFAULT_SOURCES
    )
    assert await names(api, world.admin, {"sort_by": "created_at:desc,name:desc"}) == (
        newest_first + sorted(DEFAULT_SOURCES, reverse=True)
    )
    oldest_first = [*sorted(DEFAULT_SOURCES), "alpha", "Bravo", "zulu"]
    assert await names(api, world.admin, {"sort_by": "created_at,name"}) == oldest_first
    # Renaming moves a source to the front of updated_at:desc.
    response = await api.put(
        url(first["id"]), json={"data": {"name": "Alpha"}}, headers=world.admin.headers
    )
    assert response.status_code == 200
    assert (await names(api, world.admin, {"sort_by": "updated_at:desc"}))[:3] == [
        "Alpha",
        "zulu",
        "Bravo",
    ]
    assert (await names(api, world.admin, {"sort_by": "updated_at"}))[-3:] == [
        "Bravo",
        "zulu",
        "Alpha",
    ]
    # Sorting pages through the same order.
    page_one = await names(api, world.admin, {"sort_by": "name", "per_page": 6})
    _, meta = await listing(api, world.admin, {"sort_by": "name", "per_page": 6})
    page_two, _ = await listing(api, world.admin, {"sort_by": "name", "per_page": 6, "page": 2})
    assert page_one[:6] + [item["name"] for item in page_two] == sorted(
        [*DEFAULT_SOURCES, "Alpha", "Bravo", "zulu"], key=str.lower
    )
    assert "next_page" in meta["links"]
    for source in (first, second, third):
        await assert_hidden_from(api, world.other, source["id"])


async def test_ids_filter(api: httpx.AsyncClient, world: World) -> None:
    ours = await ids(api, world.admin)
    theirs = await ids(api, world.other)
    mine = await create(api, world.admin, "Mine")
    wanted = [ours[3], ours[0], mine["id"]]
    assert await ids(api, world.admin, {"ids": ",".join(map(str, wanted))}) == sorted(wanted)
    assert await ids(api, world.admin, {"ids": f" {ours[1]} , {ours[2]}"}) == ours[1:3]
    assert await ids(api, world.admin, {"ids": f"{ours[1]},{ours[1]}"}) == [ours[1]]
    # Repeated, the parameter adds up.
    repeated = [("ids", str(ours[5])), ("ids", f"{ours[4]},{mine['id']}")]
    assert await ids(api, world.admin, repeated) == [ours[4], ours[5], mine["id"]]
    # Another org's ids, or ids that exist nowhere, match nothing.
    assert await ids(api, world.admin, {"ids": ",".join(map(str, theirs))}) == []
    assert await ids(api, world.admin, {"ids": f"{theirs[0]},{ours[0]}"}) == [ours[0]]
    assert await ids(api, world.admin, {"ids": "9223372036854775807"}) == []
    # With the other parameters.
    both = {"ids": f"{ours[0]},{ours[1]},{ours[2]}", "sort_by": "id:desc", "per_page": 2}
    items, meta = await listing(api, world.admin, both)
    assert [item["id"] for item in items] == [ours[2], ours[1]]
    assert query_of(meta["links"]["next_page"])["ids"] == [f"{ours[0]},{ours[1]},{ours[2]}"]
    await assert_hidden_from(api, world.other, mine["id"])


async def test_name_filter_is_exact(api: httpx.AsyncClient, world: World) -> None:
    mine = await create(api, world.admin, "Trade show")
    assert await names(api, world.admin, {"name": "Trade show"}) == ["Trade show"]
    assert await names(api, world.admin, {"name": "call"}) == ["call"]
    for near in ("Trade", "trade show", "Trade show ", "rade show", "", "%"):
        assert await names(api, world.admin, {"name": near}) == [], near
    assert await names(api, world.other, {"name": "Trade show"}) == []
    assert await names(api, world.admin, {"name": "call", "ids": str(mine["id"])}) == []
    await assert_hidden_from(api, world.other, mine["id"])


# --- validation and uniqueness ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {}}, "name"),
        ({"data": {"resource_type": "lead"}}, "name"),
        ({"data": {"name": ""}}, "name"),
        ({"data": {"name": "   "}}, "name"),
        ({"data": {"name": None}}, "name"),
        ({"data": {"name": "x" * 256}}, "name"),
        ({"data": {"name": 5}}, "name"),
        ({"data": {"name": ["Tom"]}}, "name"),
        ({"data": {"name": "Tom", "resource_type": "contact"}}, "resource_type"),
        ({"data": {"name": "Tom", "resource_type": None}}, "resource_type"),
        ({"data": {"name": "Tom", "colour": "red"}}, "colour"),
        ({"name": "Tom"}, "data"),
        ({}, "data"),
        ({"data": "Tom"}, "data"),
        ({"data": ["Tom"]}, "data"),
        ([{"data": {"name": "Tom"}}], "data"),
        ("Tom", "data"),
        (None, "data"),
        ({"data": {"name": "Tom"}, "extra": 1}, "extra"),
    ],
)
async def test_an_invalid_body_is_422_naming_the_field(
    api: httpx.AsyncClient, world: World, body: Any, field: str
) -> None:
    before = await ids(api, world.admin)
    response = await api.post(SOURCES, json=body, headers=world.admin.headers)
    error = assert_base_error(response, 422, field)
    assert response.json()["meta"]["http_status"] == "422 Unprocessable Entity"
    assert error["code"] == "invalid"
    assert await ids(api, world.admin) == before
    # The same body as a PUT (where a missing name is fine) changes nothing either.
    target = before[0]
    put = await api.put(url(target), json=body, headers=world.admin.headers)
    if field == "name" and body in ({"data": {}}, {"data": {"resource_type": "lead"}}):
        assert put.status_code == 200, put.text
    else:
        assert_base_error(put, 422, field)
    assert (await names(api, world.admin))[0] == DEFAULT_SOURCES[0]
    await assert_hidden_from(api, world.other, target)


async def test_malformed_json_and_empty_bodies(api: httpx.AsyncClient, world: World) -> None:
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    malformed = await api.post(SOURCES, content=b'{"data": {"name": ', headers=headers)
    assert_base_error(malformed, 422)
    empty = await api.post(SOURCES, content=b"", headers=headers)
    assert_base_error(empty, 422, "data")
    target = (await ids(api, world.admin))[0]
    assert_base_error(await api.put(url(target), content=b"[", headers=headers), 422)
    assert await names(api, world.admin) == list(DEFAULT_SOURCES)
    await assert_hidden_from(api, world.other, target)


async def test_names_are_trimmed_and_255_characters_fit(
    api: httpx.AsyncClient, world: World
) -> None:
    long = await create(api, world.admin, "y" * 255)
    response = await api.post(
        SOURCES, json={"data": {"name": "  Padded  "}}, headers=world.admin.headers
    )
    assert response.status_code == 200
    padded = assert_record(response.json())
    assert padded["name"] == "Padded"
    explicit = await create(api, world.admin, "Typed", resource_type="lead")
    assert explicit["resource_type"] == "lead"
    for source in (long, padded, explicit):
        await assert_hidden_from(api, world.other, source["id"])


async def test_names_are_unique_in_the_org_whatever_their_case(
    api: httpx.AsyncClient, world: World
) -> None:
    tom = await create(api, world.admin, "Tom")
    for taken in ("Tom", "tom", "TOM", " tom ", "Call", "WEBSITE_FORM"):
        response = await api.post(
            SOURCES, json={"data": {"name": taken}}, headers=world.admin.headers
        )
        error = assert_base_error(response, 422, "name")
        assert "already" in error["message"]
    other = await create(api, world.admin, "Referral")
    renamed = await api.put(
        url(other["id"]), json={"data": {"name": "tOm"}}, headers=world.admin.headers
    )
    assert_base_error(renamed, 422, "name")
    # Renaming a source to its own name, or changing only its case, is fine.
    same = await api.put(
        url(tom["id"]), json={"data": {"name": "Tom"}}, headers=world.admin.headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["data"] == tom  # nothing changed, not even updated_at
    cased = await api.put(
        url(tom["id"]), json={"data": {"name": "TOM"}}, headers=world.admin.headers
    )
    assert cased.status_code == 200, cased.text
    assert cased.json()["data"]["name"] == "TOM"
    assert await names(api, world.admin, {"name": "TOM"}) == ["TOM"]
    assert await names(api, world.admin, {"name": "Referral"}) == ["Referral"]
    # Another org has names of its own.
    theirs = await create(api, world.other, "tom")
    assert theirs["id"] != tom["id"]
    # A freed name can be taken again.
    assert (await api.delete(url(other["id"]), headers=world.admin.headers)).status_code == 204
    again = await create(api, world.admin, "REFERRAL")
    await assert_hidden_from(api, world.other, tom["id"])
    await assert_hidden_from(api, world.other, again["id"])
    await assert_hidden_from(api, world.admin, theirs["id"])


async def test_concurrent_creates_of_one_name_make_one_source(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *(
            api.post(SOURCES, json={"data": {"name": name}}, headers=world.admin.headers)
            for name in ("Webinar", "webinar", "WEBINAR", "Webinar", "webinar ")
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 422, 422, 422, 422], [r.text for r in responses]
    for response in responses:
        if response.status_code == 422:
            assert_base_error(response, 422, "name")
    created = next(r for r in responses if r.status_code == 200).json()["data"]
    listed = [name for name in await names(api, world.admin) if name.lower() == "webinar"]
    assert listed == [created["name"]]
    await assert_hidden_from(api, world.other, created["id"])


async def test_concurrent_renames_to_one_name_leave_one_source_with_it(
    api: httpx.AsyncClient, world: World
) -> None:
    ours, _ = await listing(api, world.admin)
    targets = [item["id"] for item in ours[:4]]
    responses = await asyncio.gather(
        *(
            api.put(url(target), json={"data": {"name": "Referral"}}, headers=world.admin.headers)
            for target in targets
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 422, 422, 422], [
        r.text for r in responses
    ]
    assert await names(api, world.admin, {"name": "Referral"}) == ["Referral"]
    for target in targets:
        await assert_hidden_from(api, world.other, target)


# --- PUT -------------------------------------------------------------------------------


async def test_put_changes_only_what_it_is_given(api: httpx.AsyncClient, world: World) -> None:
    tom = await create(api, world.admin, "Tom")
    empty = await api.put(url(tom["id"]), json={"data": {}}, headers=world.admin.headers)
    assert empty.status_code == 200
    assert empty.json()["data"] == tom
    kind = await api.put(
        url(tom["id"]),
        json={"data": {"resource_type": "lead"}, "meta": {"type": "source"}},
        headers=world.admin.headers,
    )
    assert kind.status_code == 200
    assert kind.json()["data"] == tom
    # A client sends back what it read: the read-only attributes are ignored.
    sent_back = {
        **tom,
        "id": tom["id"] + 1000,
        "creator_id": 999999,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "name": "Tom referral",
    }
    response = await api.put(url(tom["id"]), json={"data": sent_back}, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    updated = assert_record(response.json())
    assert updated["id"] == tom["id"]
    assert updated["creator_id"] == tom["creator_id"]
    assert updated["created_at"] == tom["created_at"]
    assert updated["updated_at"] >= tom["updated_at"]
    assert updated["updated_at"] != "2000-01-01T00:00:00Z"
    assert updated["name"] == "Tom referral"
    assert_base_error(await api.get(url(tom["id"] + 1000), headers=world.admin.headers), 404)
    await assert_hidden_from(api, world.other, tom["id"])


async def test_creator_id_is_the_creating_users_number(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    # A second admin of the org creates one; the first renames it: the creator stays.
    second = await api.post(
        "/api/users/",
        json={
            "email": f"second-{world.admin.email}",
            "password": "correct-horse-battery",
            "role": "admin",
        },
        headers=world.admin.headers,
    )
    assert second.status_code == 201, second.text
    login = await api.post(
        "/api/auth/login/",
        json={"email": f"second-{world.admin.email}", "password": "correct-horse-battery"},
    )
    assert login.status_code == 200
    deputy = Identity(
        email=f"second-{world.admin.email}",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    source = await create(api, deputy, "Deputy's")
    deputy_number = await user_number(app, deputy.email)
    admin_number = await user_number(app, world.admin.email)
    assert deputy_number != admin_number
    assert source["creator_id"] == deputy_number
    renamed = await api.put(
        url(source["id"]), json={"data": {"name": "Renamed"}}, headers=world.admin.headers
    )
    assert renamed.json()["data"]["creator_id"] == deputy_number
    await assert_hidden_from(api, world.other, source["id"])


# --- roles, tenancy, identity ----------------------------------------------------------


async def test_a_user_reads_but_may_not_write(api: httpx.AsyncClient, world: World) -> None:
    tom = await create(api, world.admin, "Tom")
    assert await names(api, world.user) == [*DEFAULT_SOURCES, "Tom"]
    got = await api.get(url(tom["id"]), headers=world.user.headers)
    assert got.status_code == 200
    assert got.json()["data"] == tom
    user = world.user.headers
    assert_base_error(await api.post(SOURCES, json={"data": {"name": "Mine"}}, headers=user), 403)
    put = await api.put(url(tom["id"]), json={"data": {"name": "Mine"}}, headers=user)
    error = assert_base_error(put, 403)
    assert error["code"] == "forbidden"
    assert_base_error(await api.delete(url(tom["id"]), headers=user), 403)
    # Even a bad body or an unknown id is refused for the role first.
    assert_base_error(await api.post(SOURCES, json={}, headers=user), 403)
    assert_base_error(await api.delete(url(10**12), headers=user), 403)
    assert await names(api, world.admin) == [*DEFAULT_SOURCES, "Tom"]
    assert (await api.get(url(tom["id"]), headers=world.admin.headers)).json()["data"] == tom
    await assert_hidden_from(api, world.other, tom["id"])


async def test_another_orgs_admin_gets_404_everywhere(api: httpx.AsyncClient, world: World) -> None:
    tom = await create(api, world.admin, "Tom")
    defaults = await ids(api, world.admin)
    for source_id in [tom["id"], *defaults]:
        await assert_hidden_from(api, world.other, source_id)
    assert "Tom" not in await names(api, world.other)
    assert await names(api, world.other, {"name": "Tom"}) == []
    # Nothing changed for the owner.
    assert await names(api, world.admin) == [*DEFAULT_SOURCES, "Tom"]
    got = await api.get(url(tom["id"]), headers=world.admin.headers)
    assert got.json()["data"] == tom


@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "-1", "0", "+1", "1e3", "%201", "99999999999999999999999", "0x10"]
)
async def test_a_malformed_id_is_404(api: httpx.AsyncClient, world: World, raw: str) -> None:
    headers = world.admin.headers
    error = assert_base_error(await api.get(url(raw), headers=headers), 404)
    assert error["code"] == "not_found"
    assert_base_error(await api.put(url(raw), json={"data": {"name": "x"}}, headers=headers), 404)
    assert_base_error(await api.delete(url(raw), headers=headers), 404)
    assert await names(api, world.admin) == list(DEFAULT_SOURCES)
    await assert_hidden_from(api, world.other, (await ids(api, world.admin))[0])


async def test_anonymous_and_bad_tokens_are_401_in_the_base_envelope(
    api: httpx.AsyncClient, world: World
) -> None:
    target = (await ids(api, world.admin))[0]
    bad = {"Authorization": "Bearer " + "x" * 64}
    for headers in ({}, bad, {"Authorization": "Basic dXNlcjpwYXNz"}):
        for response in (
            await api.get(SOURCES, headers=headers),
            await api.post(SOURCES, json={"data": {"name": "x"}}, headers=headers),
            await api.get(url(target), headers=headers),
            await api.put(url(target), json={"data": {"name": "x"}}, headers=headers),
            await api.delete(url(target), headers=headers),
        ):
            error = assert_base_error(response, 401)
            assert error["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
    own = await api.get(SOURCES, headers={"X-Request-Id": "my-request-7"})
    assert_base_error(own, 401)
    assert own.json()["meta"]["logref"] == "my-request-7"
    assert await names(api, world.admin) == list(DEFAULT_SOURCES)
    await assert_hidden_from(api, world.other, target)


async def test_a_personal_token_works_and_a_refresh_token_does_not(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.post(
        "/api/auth/tokens/", json={"name": "integration"}, headers=world.admin.headers
    )
    assert response.status_code == 201
    personal = {"Authorization": f"Bearer {response.json()['token']}"}
    listed = await api.get(SOURCES, headers=personal)
    assert listed.status_code == 200
    created = await api.post(SOURCES, json={"data": {"name": "Via token"}}, headers=personal)
    assert created.status_code == 200
    refresh = {"Authorization": f"Bearer {world.admin.refresh_token}"}
    assert_base_error(await api.get(SOURCES, headers=refresh), 401)
    await assert_hidden_from(api, world.other, created.json()["data"]["id"])


async def test_other_paths_and_methods_answer_in_the_base_envelope(
    api: httpx.AsyncClient, world: World
) -> None:
    target = (await ids(api, world.admin))[0]
    patch = await api.patch(url(target), json={"data": {"name": "x"}}, headers=world.admin.headers)
    assert_base_error(patch, 405)
    assert set(patch.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert_base_error(await api.get(f"{url(target)}/extra", headers=world.admin.headers), 404)
    assert_base_error(await api.get("/v2/nothing_here", headers=world.admin.headers), 404)
    await assert_hidden_from(api, world.other, target)


async def test_rate_limit_is_429_in_the_base_envelope(database_url: str) -> None:
    async with client_of(fresh_app(database_url, rate_limit="3/minute")) as client:
        admin = await register(client)
        other = await register(client, "Globex")
        for _ in range(3):
            assert (await client.get(SOURCES, headers=admin.headers)).status_code == 200
        limited = await client.get(SOURCES, headers=admin.headers)
        error = assert_base_error(limited, 429)
        assert error["code"] == "rate_limit_exceeded"
        assert limited.json()["meta"]["http_status"] == "429 Too Many Requests"
        assert int(limited.headers["Retry-After"]) >= 0
        # Counted per token: the other org is not limited, and sees none of ours.
        theirs = await client.get(SOURCES, headers=other.headers)
        assert theirs.status_code == 200
        assert len(theirs.json()["items"]) == len(DEFAULT_SOURCES)


async def test_a_crash_is_a_500_in_the_base_envelope(database_url: str) -> None:
    app = fresh_app(database_url)

    @app.get("/v2/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async with client_of(app) as client:
        response = await client.get("/v2/boom", headers={"X-Request-Id": "req-v2-boom"})
        error = assert_base_error(response, 500)
        assert error["code"] == "server_error"
        assert response.json()["meta"]["logref"] == "req-v2-boom"
        assert "secret internals" not in response.text


async def test_the_openapi_document_has_the_v2_endpoints(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    assert set(document["paths"][SOURCES]) == {"get", "post"}
    assert set(document["paths"]["/v2/lead_sources/{source_id}"]) == {"get", "put", "delete"}


async def test_the_service_finds_sources_by_name_for_the_api_dialect(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    """The helpers the leads of /api/ write and read a lead's `source` with."""
    tom = await create(api, world.admin, "Tom")
    ours, theirs = uuid.UUID(world.admin.org_id), uuid.UUID(world.other.org_id)
    async with app.state.db.sessionmaker() as session:
        found = await service.find_by_name(session, ours, " tOM ")
        assert found is not None and found.id == tom["id"] and found.name == "Tom"
        assert await service.find_by_name(session, theirs, "Tom") is None
        assert await service.find_by_name(session, ours, "To") is None
        call = await service.find_by_name(session, theirs, "call")
        assert call is not None
        assert await service.names_by_id(session, ours, [tom["id"], None, call.id, tom["id"]]) == {
            tom["id"]: "Tom"
        }
        assert await service.names_by_id(session, ours, []) == {}
    await assert_hidden_from(api, world.other, tom["id"])
