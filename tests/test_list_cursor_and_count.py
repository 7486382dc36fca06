"""Lists at scale: keyset pages by `cursor` beside `page`, nullable fields ordered alike on
both databases, and a `count` that is exact up to CRM_EXACT_COUNT_LIMIT and, past it, an
estimate on PostgreSQL (`count_estimated`)."""

import base64
import json
import time
import uuid
from collections.abc import Iterator
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
from tests.raw_http import RawResponse, read_response
from tests.servers import crm_server, worker_pids
from tests.test_workers import WORKERS_SECONDS, call, to_worker

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


async def analyze_leads(app: FastAPI) -> None:
    """On PostgreSQL, fresh statistics of the leads table: a list past the exact bound then
    costs no ANALYZE of its own (see test_the_count_follows_writes_past_the_exact_limit)."""
    if TEST_DATABASE_URL is not None:
        async with app.state.db.sessionmaker() as session:
            await session.execute(text("ANALYZE leads"))
            await session.commit()


async def test_count_past_the_exact_limit(
    database_url: str, api: httpx.AsyncClient, world: World
) -> None:
    created = [await create(api, world.admin, LEADS, title=f"Lead {i}") for i in range(5)]
    limited = fresh_app(database_url, exact_count_limit=3)
    await analyze_leads(limited)
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
    await analyze_leads(limited)
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


# A bound low enough that a test passes it quickly.
SMALL_BOUND = 100


def leads_csv(count: int) -> bytes:
    """New leads as wide as most (a description of 200 characters): the table's pages grow
    with their number at least as much as with the others'."""
    batch = uuid.uuid4().hex[:8]
    description = "x" * 200
    rows = "".join(f"Lead {batch} {i},{description}\n" for i in range(count))
    return ("title,description\n" + rows).encode()


async def table_rows(app: FastAPI) -> int:
    """Every org's leads, deleted ones too: what the table holds."""
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(text("SELECT count(*) FROM leads")) or 0)


async def growth(app: FastAPI) -> int:
    """Leads that grow the table by a fifth (by more than the bound, at least)."""
    return max(SMALL_BOUND + 1, await table_rows(app) // 5)


def assert_counted(page: dict[str, Any], truth: int) -> None:
    """Exact within the bound, and always on SQLite; past it within a tenth of the truth."""
    if truth <= SMALL_BOUND or TEST_DATABASE_URL is None:
        assert (page["count"], page["count_estimated"]) == (truth, False)
    else:
        assert page["count_estimated"] is True
        assert abs(page["count"] - truth) <= truth / 10, (page["count"], truth)


async def test_the_count_follows_writes_past_the_exact_limit(
    database_url: str, api: httpx.AsyncClient, world: World
) -> None:
    """Right after an upload that grows the table by a tenth, the next page's count is
    within a tenth of the truth past CRM_EXACT_COUNT_LIMIT (by `page` and by `cursor`), and
    exact below it."""
    limited = fresh_app(database_url, exact_count_limit=SMALL_BOUND)
    async with client_of(limited) as client:

        async def upload(count: int) -> None:
            response = await client.post(
                f"{LEADS.url}upload/",
                files={"file": ("leads.csv", leads_csv(count), "text/csv")},
                headers=world.admin.headers,
            )
            assert response.status_code == 200, response.text
            assert len(response.json()["created"]) == count

        await upload(SMALL_BOUND // 2)
        truth = SMALL_BOUND // 2
        assert_counted(await listing(client, world.admin, LEADS), truth)
        for _ in range(2):
            added = await growth(limited)
            await upload(added)
            truth += added
            costs = []
            for page in (1, 2, 1):
                with count_statements(limited) as counter:
                    answer = await listing(client, world.admin, LEADS, {"page": page})
                assert_counted(answer, truth)
                costs.append(counter.statements)
            if TEST_DATABASE_URL is not None:
                # The token, the page, at most one ANALYZE for the grown table and an
                # EXPLAIN; then the estimate is kept for the pages that follow.
                analyzed = [s for s in costs[0] if s.startswith("ANALYZE")]
                assert len(costs[0]) == 3 + len(analyzed) and len(analyzed) <= 1, costs[0]
                assert len(costs[-1]) == 2, costs[-1]
        assert_counted(await listing(client, world.admin, LEADS, {"cursor": ""}), truth)
        # Within the bound, exact: the other org's list, and a search.
        other = await listing(client, world.other, LEADS)
        assert (other["count"], other["count_estimated"], other["results"]) == (0, False, [])
        one = await listing(client, world.admin, LEADS, {"search": "no such lead"})
        assert (one["count"], one["count_estimated"]) == (0, False)


@pytest.fixture(scope="module")
def limited_server(database_url: str) -> Iterator[tuple[str, int, int]]:
    """`crm serve --workers 2` with a small exact bound: its URL and its two workers."""
    settings = {"rate_limit": "off", "exact_count_limit": str(SMALL_BOUND)}
    with crm_server(database_url, workers=2, **settings) as base_url:
        deadline = time.monotonic() + WORKERS_SECONDS
        while len(pids := sorted(worker_pids(base_url))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the second worker to start, not waiting for a result
        assert len(pids) == 2, pids
        yield base_url, pids[0], pids[1]


def upload_to(base_url: str, pid: int, token: str, count: int) -> RawResponse:
    """An upload of `count` new leads that the worker `pid` serves."""
    request = httpx.Request(
        "POST",
        f"{base_url}{LEADS.url}upload/",
        files={"file": ("leads.csv", leads_csv(count), "text/csv")},
    )
    body = request.read()
    head = (
        f"POST {LEADS.url}upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {request.headers['Content-Type']}"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with to_worker(base_url, pid) as sock:
        sock.sendall(head.encode() + body)
        return read_response(sock)


async def test_a_worker_counts_the_other_workers_writes(
    limited_server: tuple[str, int, int], app: FastAPI, world: World
) -> None:
    """One worker's uploads are counted within a tenth by the other at once, whatever it
    kept from the pages it answered before."""
    base_url, writer, reader = limited_server
    token = world.admin.token
    truth = 0
    for _ in range(2):
        added = await growth(app)
        uploaded = upload_to(base_url, writer, token, added)
        assert uploaded.status == 200, uploaded.body
        truth += added
        for pid in (reader, writer, reader):
            listed = call(base_url, pid, "GET", f"{LEADS.url}?page_size=5", token)
            assert listed.status == 200, listed.body
            assert_counted(listed.json(), truth)
    other = call(base_url, reader, "GET", LEADS.url, world.other.token)
    assert (other.json()["count"], other.json()["results"]) == (0, [])
