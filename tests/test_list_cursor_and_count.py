"""Lists at scale: keyset pages by `cursor` beside `page`, nullable fields ordered alike on
both databases, and a `count` that is exact up to CRM_EXACT_COUNT_LIMIT and, past it, an
estimate on PostgreSQL (`count_estimated`)."""

import base64
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.apps import client_of, fresh_app
from tests.conftest import TEST_DATABASE_URL, Identity, World, count_statements
from tests.entities_support import (
    ENTITIES,
    LEADS,
    Entity,
    assert_invisible_to_other_org,
    create,
    listed_ids,
    listing,
    refused,
)

each_entity = pytest.mark.parametrize("entity", ENTITIES, ids=lambda entity: entity.name)


async def walk(
    api: httpx.AsyncClient, who: Identity, url: str | None, link: str = "next"
) -> tuple[list[str], list[dict[str, Any]]]:
    """The ids along the `link` links from `url`, and every answer on the way."""
    ids: list[str] = []
    answers = []
    while url:
        response = await api.get(url, headers=who.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        answers.append(body)
        ids.extend(record["id"] for record in body["results"])
        url = body[link]
    return ids, answers


@each_entity
async def test_cursor_pages_follow_every_ordering_both_ways(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    fields = list(entity.ordering)
    records = []
    for k in range(5):
        # Three distinct values, a tie with the first record, and one without the optional
        # fields (null).
        body = {
            name: values[(k + j) % 3] for j, (name, values) in enumerate(entity.ordering.items())
        }
        if k == 3 and entity.unique:
            body.pop(entity.unique[0])  # a unique field cannot tie
        if k == 4:
            body = {}
        records.append(await create(api, world.admin, entity, **body))
    by_id = {record["id"]: record for record in records}
    for name in (*fields, "created_at", "updated_at"):
        for ordering in (name, f"-{name}"):
            by_page = await listed_ids(api, world.admin, entity, {"ordering": ordering})
            first = f"{entity.url}?ordering={ordering}&page_size=2&cursor="
            forward, answers = await walk(api, world.admin, first)
            assert forward == by_page, ordering
            assert [len(a["results"]) for a in answers] == [2, 2, 1], ordering
            assert all(a["count"] == 5 and not a["count_estimated"] for a in answers)
            assert answers[0]["previous"] is None
            # Back from the last page, by `previous`.
            backward, _ = await walk(api, world.admin, answers[-1]["previous"], "previous")
            assert backward == by_page[2:4] + by_page[0:2], ordering
            if name in fields and name not in entity.required and entity.defaults[name] is None:
                # A field left out (null) comes last ascending and first descending.
                nulls = [i for i in by_page if by_id[i][name] is None]
                assert nulls, name
                assert (by_page[-1] if ordering == name else by_page[0]) in nulls, ordering
    await assert_invisible_to_other_org(api, world.other, entity, records[0]["id"])
    other, _ = await walk(api, world.other, f"{entity.url}?ordering={fields[0]}&cursor=")
    assert other == []


def forged(ordering: str, values: Any, before: Any = False) -> str:
    body = json.dumps({"o": ordering, "b": before, "v": values}).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


async def test_bad_cursors_are_400_naming_cursor(api: httpx.AsyncClient, world: World) -> None:
    record = await create(api, world.admin, LEADS, title="Only")
    page = await listing(
        api, world.admin, LEADS, {"ordering": "title", "cursor": "", "page_size": 1}
    )
    assert [r["id"] for r in page["results"]] == [record["id"]]
    assert page["next"] is None and page["previous"] is None
    await create(api, world.admin, LEADS, title="Second")
    page = await listing(
        api, world.admin, LEADS, {"ordering": "title", "cursor": "", "page_size": 1}
    )
    cursor = page["next"].split("cursor=")[1]
    for params in (
        {"cursor": "", "page": "1"},
        {"cursor": "not a cursor"},
        {"cursor": cursor},  # made for ordering=title
        {"ordering": "-title", "cursor": cursor},
        {"ordering": "title", "cursor": forged("title", ["Only"])},
        {"ordering": "title", "cursor": forged("title", ["Only", "not-an-id"])},
        {"ordering": "title", "cursor": forged("title", [None, record["id"]])},
        {"ordering": "title", "cursor": forged("title", [1, record["id"]])},
        {"ordering": "title", "cursor": forged("title", ["Only\x00", record["id"]])},
        {"ordering": "title", "cursor": forged("title", ["Only", record["id"]], "yes")},
        {"ordering": "created_at", "cursor": forged("created_at", ["yesterday", record["id"]])},
    ):
        response = await api.get(LEADS.url, params=params, headers=world.admin.headers)
        refused(response, 400, "cursor")
    # The cursor in another org: nothing of this one.
    response = await api.get(
        LEADS.url, params={"ordering": "title", "cursor": cursor}, headers=world.other.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []
    await assert_invisible_to_other_org(api, world.other, LEADS, record["id"])


async def test_a_page_by_cursor_costs_what_a_page_does(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    for i in range(6):
        await create(api, world.admin, LEADS, title=f"Lead {i}", assigned_to=world.user.profile_id)
    first = await listing(
        api, world.admin, LEADS, {"ordering": "title", "cursor": "", "page_size": 2}
    )
    with count_statements(app) as counter:
        response = await api.get(first["next"], headers=world.admin.headers)
    assert response.status_code == 200, response.text
    assert [r["title"] for r in response.json()["results"]] == ["Lead 2", "Lead 3"]
    # The token's lookup, and the page with its count.
    assert counter.count == 2, counter.statements
    assert (await listing(api, world.other, LEADS, {"cursor": ""}))["results"] == []


@each_entity
async def test_a_plain_page_answers_each_caller_its_own(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    """A list without filters runs statements built once per shape, with the caller's org,
    profile and page bound per request: callers asking the same pages in turn (two orgs'
    admins and a user) each get their own records and count, every time."""
    admins = [(await create(api, world.admin, entity))["id"] for _ in range(3)]
    assigned = await create(api, world.admin, entity, assigned_to=world.user.profile_id)
    ours = {*admins, assigned["id"]}
    theirs = {(await create(api, world.other, entity))["id"] for _ in range(3)}
    expected = {"admin": (ours, 4), "other": (theirs, 3), "user": ({assigned["id"]}, 1)}
    callers = {"admin": world.admin, "other": world.other, "user": world.user}
    for _ in range(2):  # the second round reads through the statements of the first
        for name, who in callers.items():
            ids, count = expected[name]
            first = await listing(api, who, entity, {"page_size": 2})
            second = await listing(api, who, entity, {"page_size": 2, "page": 2})
            pages = [[record["id"] for record in page["results"]] for page in (first, second)]
            assert (first["count"], second["count"]) == (count, count), name
            assert len(pages[0]) == min(2, count) and set(pages[0]).isdisjoint(pages[1]), name
            assert {*pages[0], *pages[1]} == ids, name
            assert (first["next"] is None) == (count <= 2), name


async def test_count_past_the_exact_limit(
    database_url: str, api: httpx.AsyncClient, world: World
) -> None:
    created = [await create(api, world.admin, LEADS, title=f"Lead {i}") for i in range(5)]
    limited = fresh_app(database_url, exact_count_limit=3)
    async with client_of(limited) as client:
        with count_statements(limited) as counter:
            response = await client.get(
                LEADS.url, params={"page_size": 2}, headers=world.admin.headers
            )
        assert response.status_code == 200, response.text
        body = response.json()
        if TEST_DATABASE_URL is None:
            # SQLite counts exactly, whatever the number: the token, the page with its count.
            assert (body["count"], body["count_estimated"]) == (5, False)
            assert counter.count == 2, counter.statements
        else:
            # PostgreSQL counts 4 (the limit and one), then asks the planner: one more.
            assert body["count_estimated"] is True
            assert body["count"] >= 4
            assert counter.count == 3, counter.statements
            # The process keeps that estimate for the pages of this list that follow.
            with count_statements(limited) as counter:
                again = await client.get(
                    LEADS.url, params={"page_size": 2, "page": 2}, headers=world.admin.headers
                )
            assert again.status_code == 200, again.text
            assert (again.json()["count"], again.json()["count_estimated"]) == (
                body["count"],
                True,
            )
            assert counter.count == 2, counter.statements
        # Whatever the count says, the pages hold every record once and end.
        for first in (f"{LEADS.url}?page_size=2", f"{LEADS.url}?page_size=2&cursor="):
            ids, answers = await walk(client, world.admin, first)
            assert sorted(ids) == sorted(record["id"] for record in created)
            assert answers[-1]["next"] is None
        # Within the limit the count is exact.
        small = await client.get(
            LEADS.url, params={"search": "lead 1"}, headers=world.admin.headers
        )
        assert (small.json()["count"], small.json()["count_estimated"]) == (1, False)
        other = await client.get(LEADS.url, headers=world.other.headers)
        assert other.json() == {
            "count": 0,
            "count_estimated": False,
            "next": None,
            "previous": None,
            "results": [],
        }


async def test_each_caller_has_a_count_estimate_of_its_own(
    database_url: str, api: httpx.AsyncClient, world: World
) -> None:
    """Kept estimates are by org and, for a user, by profile: an admin's is never another
    org's or a user's answer."""
    for who in (world.admin, world.other):
        for i in range(4):
            await create(api, who, LEADS, title=f"Lead {i}")
    for i in range(4):
        await create(
            api, world.admin, LEADS, title=f"Theirs {i}", assigned_to=world.user.profile_id
        )
    limited = fresh_app(database_url, exact_count_limit=3)
    async with client_of(limited) as client:
        for who, visible in ((world.admin, 8), (world.user, 4), (world.other, 4)):
            with count_statements(limited) as counter:
                response = await client.get(LEADS.url, params={"page_size": 2}, headers=who.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            if TEST_DATABASE_URL is None:  # SQLite counts exactly
                assert (body["count"], body["count_estimated"]) == (visible, False)
                assert counter.count == 2, counter.statements
            else:  # each asks the planner for its own estimate
                assert body["count_estimated"] is True
                assert counter.count == 3, counter.statements


@pytest.mark.usefixtures("api")  # the app started, and its engines closed after the test
async def test_lists_plan_on_connections_of_their_own(app: FastAPI) -> None:
    database = app.state.db
    if TEST_DATABASE_URL is None:
        assert database.list_sessionmaker is None  # SQLite: one pool, no planner settings
        return
    shown = "SELECT current_setting('plan_cache_mode'), current_setting('join_collapse_limit')"
    async with database.list_sessionmaker() as session:
        # Planned for the values of each list, its joins kept in the order written.
        assert tuple(await session.execute(text(shown))) == (("force_custom_plan", "1"),)
    async with database.read_sessionmaker() as session:
        # Everything else: PostgreSQL's defaults, which keep a lookup's plan.
        assert tuple(await session.execute(text(shown))) == (("auto", "8"),)
