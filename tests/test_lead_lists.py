"""GET /api/leads/ parameters (CONTRACT §3): pages, filters, search, ordering, and what a
list costs in SQL statements."""

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from tests.conftest import World, count_statements
from tests.entities_support import profile_ref
from tests.leads_support import (
    LEADS,
    assert_invisible_to_other_org,
    create_lead,
    define_field,
    detail_url,
    list_leads,
    listed_ids,
    refused,
)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def test_default_page_size_and_links(api: httpx.AsyncClient, world: World) -> None:
    created = [await create_lead(api, world.admin, title=f"L{i:02}") for i in range(27)]
    first = await list_leads(api, world.admin)
    assert first["count"] == 27
    assert len(first["results"]) == 25
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/leads/?page=2"
    second = await api.get(first["next"], headers=world.admin.headers)
    assert second.status_code == 200
    body = second.json()
    assert len(body["results"]) == 2
    assert body["next"] is None
    assert query_of(body["previous"]) == {"page": ["1"]}
    seen = [r["id"] for r in first["results"] + body["results"]]
    assert sorted(seen) == sorted(lead["id"] for lead in created)
    assert len(await listed_ids(api, world.admin, {"page_size": "100"})) == 27
    assert (await list_leads(api, world.other))["count"] == 0
    await assert_invisible_to_other_org(api, world.other, created[0]["id"])


async def test_links_keep_the_other_parameters(api: httpx.AsyncClient, world: World) -> None:
    for i in range(7):
        await create_lead(api, world.admin, title=f"Acme {i}", status="qualified", tags=["a"])
    await create_lead(api, world.admin, title="Acme other", status="new")
    params = {
        "status": "qualified",
        "search": "acme",
        "tags": "a,b",
        "ordering": "-title",
        "page_size": "3",
    }
    first = await list_leads(api, world.admin, params)
    assert first["count"] == 7
    assert first["previous"] is None
    assert first["next"].startswith("http://testserver/api/leads/?")
    expected = {key: [value] for key, value in params.items()}
    assert query_of(first["next"]) == {**expected, "page": ["2"]}
    middle = (await api.get(first["next"], headers=world.admin.headers)).json()
    assert query_of(middle["next"]) == {**expected, "page": ["3"]}
    assert query_of(middle["previous"]) == {**expected, "page": ["1"]}
    last = (await api.get(middle["next"], headers=world.admin.headers)).json()
    assert last["next"] is None
    assert [r["title"] for r in first["results"] + middle["results"] + last["results"]] == [
        f"Acme {i}" for i in reversed(range(7))
    ]
    other = await list_leads(api, world.other, params)
    assert other == {
        "count": 0,
        "count_estimated": False,
        "next": None,
        "previous": None,
        "results": [],
    }


async def test_page_past_the_end_is_empty(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    response = await api.get(LEADS, params={"page": "5"}, headers=world.admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"] == []
    assert body["next"] is None
    assert query_of(body["previous"]) == {"page": ["1"]}
    # However far past the end.
    for page in ("9999999999999", "99999999999999999999999"):
        far = await api.get(LEADS, params={"page": page}, headers=world.admin.headers)
        assert far.status_code == 200, far.text
        assert far.json()["results"] == []
        assert far.json()["count"] == 1
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_bad_page_parameters_are_400(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    for name, value in (
        ("page_size", "101"),
        ("page_size", "0"),
        ("page_size", "-1"),
        ("page_size", "abc"),
        ("page", "0"),
        ("page", "abc"),
        ("page", "1.5"),
    ):
        response = await api.get(LEADS, params={name: value}, headers=world.admin.headers)
        refused(response, 400, name)
    ok = await api.get(LEADS, params={"page_size": "100"}, headers=world.admin.headers)
    assert ok.status_code == 200
    assert [r["id"] for r in ok.json()["results"]] == [lead["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_unknown_parameter_is_400_naming_it(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    for params, names in (
        ({"colour": "red"}, ("colour",)),
        ({"stage": "proposal"}, ("stage",)),
        ({"title": "x"}, ("title",)),
        ({"created_at__gt": "2026-01-01"}, ("created_at__gt",)),
        ({"foo": "1", "bar": "2", "status": "new"}, ("foo", "bar")),
    ):
        response = await api.get(LEADS, params=params, headers=world.admin.headers)
        refused(response, 400, *names)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_bad_enum_and_link_filters(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin, source="call")
    headers = world.admin.headers
    refused(await api.get(LEADS, params={"status": "won"}, headers=headers), 400, "status")
    refused(await api.get(LEADS, params={"assigned_to": "me"}, headers=headers), 400, "assigned_to")
    # A name that is no lead source of the org matches nothing.
    assert await listed_ids(api, world.admin, {"source": "carrier_pigeon"}) == []
    assert await listed_ids(api, world.admin, {"source": "call"}) == [lead["id"]]
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_nul_in_a_parameter_is_400(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "industry", "text", filterable=True)
    lead = await create_lead(api, world.admin)
    for name in ("search", "tags", "source", "cf_industry", "ordering", "assigned_to"):
        response = await api.get(LEADS, params={name: "a\x00"}, headers=world.admin.headers)
        refused(response, 400, name)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_tags_match_any_of(api: httpx.AsyncClient, world: World) -> None:
    a = await create_lead(api, world.admin, tags=["a"])
    b = await create_lead(api, world.admin, tags=["b", "x"])
    ac = await create_lead(api, world.admin, tags=["a", "c"])
    await create_lead(api, world.admin, tags=[])
    await create_lead(api, world.admin, tags=["ab"])
    assert sorted(await listed_ids(api, world.admin, {"tags": "a,b"})) == sorted(
        [a["id"], b["id"], ac["id"]]
    )
    assert await listed_ids(api, world.admin, {"tags": "c"}) == [ac["id"]]
    assert await listed_ids(api, world.admin, {"tags": "zzz"}) == []
    refused(await api.get(LEADS, params={"tags": ""}, headers=world.admin.headers), 400, "tags")
    await create_lead(api, world.other, tags=["a"])
    assert len(await listed_ids(api, world.other, {"tags": "a"})) == 1
    await assert_invisible_to_other_org(api, world.other, a["id"])


def as_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_created_at_bounds(api: httpx.AsyncClient, world: World) -> None:
    created = [await create_lead(api, world.admin) for _ in range(3)]
    ids = [lead["id"] for lead in created]
    middle = created[1]["created_at"]
    gte = await listed_ids(api, world.admin, {"created_at__gte": middle, "ordering": "created_at"})
    assert gte == ids[1:]
    lte = await listed_ids(api, world.admin, {"created_at__lte": middle, "ordering": "created_at"})
    assert lte == ids[:2]
    both = {"created_at__gte": middle, "created_at__lte": middle}
    assert await listed_ids(api, world.admin, both) == [ids[1]]
    # The same moment written with another offset, and without a zone (UTC).
    moment = as_datetime(middle)
    shifted = moment.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+02:00").tzinfo)
    assert (
        await listed_ids(
            api, world.admin, {"created_at__gte": shifted.isoformat(), "ordering": "created_at"}
        )
        == ids[1:]
    )
    naive = moment.replace(tzinfo=None).isoformat()
    assert (
        await listed_ids(api, world.admin, {"created_at__lte": naive, "ordering": "created_at"})
        == ids[:2]
    )
    # A bare date: from the start of that day, up to its end.
    first_day = as_datetime(created[0]["created_at"]).date()
    last_day = as_datetime(created[-1]["created_at"]).date()
    assert len(await listed_ids(api, world.admin, {"created_at__gte": first_day.isoformat()})) == 3
    assert len(await listed_ids(api, world.admin, {"created_at__lte": last_day.isoformat()})) == 3
    before = (first_day - timedelta(days=1)).isoformat()
    after = (last_day + timedelta(days=1)).isoformat()
    assert await listed_ids(api, world.admin, {"created_at__lte": before}) == []
    assert await listed_ids(api, world.admin, {"created_at__gte": after}) == []
    await assert_invisible_to_other_org(api, world.other, ids[0])
    assert await listed_ids(api, world.other, {"created_at__gte": first_day.isoformat()}) == []


async def test_bad_created_at_bounds_are_400(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    for name in ("created_at__gte", "created_at__lte"):
        for value in ("yesterday", "2026-13-01", "2026-02-30", "", "12:00"):
            response = await api.get(LEADS, params={name: value}, headers=world.admin.headers)
            refused(response, 400, name)
    assert date.fromisoformat(lead["created_at"][:10])
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_search_is_a_case_insensitive_substring_of_the_text_fields(
    api: httpx.AsyncClient, world: World
) -> None:
    fields: dict[str, Any] = {
        "title": {"title": "Zyxtitle deal"},
        "first_name": {"first_name": "Zyxfirst"},
        "last_name": {"last_name": "Zyxlast"},
        "email": {"email": "zyxemail@example.com"},
        "company_name": {"company_name": "Zyxcompany Ltd"},
        "phone": {"phone": "+1 555 9876"},
    }
    by_field = {name: await create_lead(api, world.admin, **body) for name, body in fields.items()}
    described = await create_lead(api, world.admin, description="zyxdescription")
    for name, term in (
        ("title", "ZYXTITLE"),
        ("first_name", "zyxFIRST"),
        ("last_name", "xlas"),
        ("email", "ZyxEmail@Example"),
        ("company_name", "company l"),
        ("phone", "555 98"),
    ):
        assert await listed_ids(api, world.admin, {"search": term}) == [by_field[name]["id"]]
    assert len(await listed_ids(api, world.admin, {"search": "zyx"})) == 5  # not the phone
    # Not a text field the search looks in.
    assert await listed_ids(api, world.admin, {"search": "zyxdescription"}) == []
    # Blank search: no filter.
    assert len(await listed_ids(api, world.admin, {"search": " "})) == 7
    assert await listed_ids(api, world.other, {"search": "zyx"}) == []
    await assert_invisible_to_other_org(api, world.other, described["id"])


async def test_search_takes_percent_and_underscore_literally(
    api: httpx.AsyncClient, world: World
) -> None:
    percent = await create_lead(api, world.admin, title="100% match")
    await create_lead(api, world.admin, title="100 percent")
    underscore = await create_lead(api, world.admin, title="a_b")
    await create_lead(api, world.admin, title="axb")
    backslash = await create_lead(api, world.admin, title="back\\slash")
    assert await listed_ids(api, world.admin, {"search": "%"}) == [percent["id"]]
    assert await listed_ids(api, world.admin, {"search": "0%"}) == [percent["id"]]
    assert await listed_ids(api, world.admin, {"search": "a_b"}) == [underscore["id"]]
    assert await listed_ids(api, world.admin, {"search": "_"}) == [underscore["id"]]
    assert await listed_ids(api, world.admin, {"search": "\\"}) == [backslash["id"]]
    assert len(await listed_ids(api, world.admin, {"search": "100"})) == 2
    await assert_invisible_to_other_org(api, world.other, percent["id"])


async def test_ordering_by_several_fields(api: httpx.AsyncClient, world: World) -> None:
    rows = [
        ("qualified", "b"),
        ("new", "a"),
        ("qualified", "c"),
        ("new", "c"),
        ("closed", "a"),
    ]
    for status, title in rows:
        await create_lead(api, world.admin, status=status, title=title)

    async def order(ordering: str) -> list[tuple[str, str]]:
        body = await list_leads(api, world.admin, {"ordering": ordering})
        return [(r["status"], r["title"]) for r in body["results"]]

    assert await order("status,-title") == sorted(rows, key=lambda r: (r[0], _desc(r[1])))
    assert await order("-status,title") == sorted(rows, key=lambda r: (_desc(r[0]), r[1]))
    assert await order("title,status") == sorted(rows, key=lambda r: (r[1], r[0]))
    assert await order(" title , -status ") == sorted(rows, key=lambda r: (r[1], _desc(r[0])))
    assert (await list_leads(api, world.other, {"ordering": "status,-title"}))["count"] == 0


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(char) for char in text)


async def test_unknown_ordering_field_is_400(api: httpx.AsyncClient, world: World) -> None:
    lead = await create_lead(api, world.admin)
    for ordering in ("colour", "-colour", "title,colour", "description", "-", ",", "custom_fields"):
        response = await api.get(LEADS, params={"ordering": ordering}, headers=world.admin.headers)
        refused(response, 400, "ordering")
    await assert_invisible_to_other_org(api, world.other, lead["id"])


async def test_ties_are_broken_by_id_so_pages_never_overlap(
    api: httpx.AsyncClient, world: World
) -> None:
    created = [
        await create_lead(api, world.admin, title="Same", status="new", source="call")
        for _ in range(9)
    ]
    ascending = sorted(lead["id"] for lead in created)
    for ordering in ("title", "-title", "status,title", "-status,-title", "status,-title"):
        seen: list[str] = []
        url: str | None = f"{LEADS}?ordering={ordering}&page_size=2"
        while url:
            body = (await api.get(url, headers=world.admin.headers)).json()
            seen.extend(r["id"] for r in body["results"])
            url = body["next"]
        # No overlap, no gap, and the tie is broken by id, in the last field's direction.
        expected = ascending[::-1] if ordering.endswith("-title") else ascending
        assert seen == expected, ordering
    await assert_invisible_to_other_org(api, world.other, created[0]["id"])


async def test_custom_field_filters_by_type(api: httpx.AsyncClient, world: World) -> None:
    await define_field(api, world.admin, "score", "number", filterable=True)
    await define_field(api, world.admin, "vip", "checkbox", filterable=True)
    await define_field(
        api, world.admin, "tier", "dropdown", options=["gold", "silver"], filterable=True
    )
    await define_field(api, world.admin, "renewal", "date", filterable=True)
    await define_field(api, world.admin, "notes", "text")
    seventy_two = await create_lead(
        api,
        world.admin,
        custom_fields={"score": 72, "vip": True, "tier": "gold", "renewal": "2026-05-01"},
    )
    fractional = await create_lead(api, world.admin, custom_fields={"score": 72.5, "vip": False})
    as_float = await create_lead(api, world.admin, custom_fields={"score": 10.0, "tier": "silver"})
    await create_lead(api, world.admin, custom_fields={"notes": "72"})

    async def match(params: dict[str, str]) -> list[str]:
        return sorted(await listed_ids(api, world.admin, params))

    assert await match({"cf_score": "72"}) == [seventy_two["id"]]
    assert await match({"cf_score": "72.0"}) == [seventy_two["id"]]
    assert await match({"cf_score": "72.5"}) == [fractional["id"]]
    assert await match({"cf_score": "10"}) == [as_float["id"]]
    assert await match({"cf_vip": "true"}) == [seventy_two["id"]]
    assert await match({"cf_vip": "FALSE"}) == [fractional["id"]]
    assert await match({"cf_tier": "silver"}) == [as_float["id"]]
    assert await match({"cf_renewal": "2026-05-01"}) == [seventy_two["id"]]
    assert await match({"cf_score": "72", "cf_vip": "true", "cf_tier": "gold"}) == [
        seventy_two["id"]
    ]
    assert await match({"cf_score": "72", "cf_vip": "false"}) == []
    headers = world.admin.headers
    for params in ({"cf_score": "abc"}, {"cf_vip": "yes"}):
        refused(await api.get(LEADS, params=params, headers=headers), 400, *params)
    await assert_invisible_to_other_org(api, world.other, seventy_two["id"])


async def test_custom_field_filter_needs_a_filterable_field_of_the_entity(
    api: httpx.AsyncClient, world: World
) -> None:
    await define_field(api, world.admin, "notes", "text")
    contact_field = await api.post(
        "/api/custom-fields/",
        json={
            "entity": "contact",
            "key": "region",
            "label": "Region",
            "type": "text",
            "filterable": True,
        },
        headers=world.admin.headers,
    )
    assert contact_field.status_code == 201
    lead = await create_lead(api, world.admin, custom_fields={"notes": "x"})
    for param in ("cf_notes", "cf_missing", "cf_region", "cf_"):
        response = await api.get(LEADS, params={param: "x"}, headers=world.admin.headers)
        refused(response, 400, param)
    await assert_invisible_to_other_org(api, world.other, lead["id"])


# --- What a list costs ------------------------------------------------------------------


async def test_list_costs_the_same_whatever_the_page_size(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    for i in range(50):
        await create_lead(
            api,
            world.admin,
            title=f"Lead {i}",
            assigned_to=world.user.profile_id,
            source="website_form",
            tags=["t"],
        )
    counts = {}
    for size in (1, 50):
        with count_statements(app) as counter:
            response = await api.get(
                LEADS, params={"page_size": str(size)}, headers=world.admin.headers
            )
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) == size
        assert all(
            r["assigned_to"] == profile_ref(world.user)
            and r["created_by"] == profile_ref(world.admin)
            and r["source"] == "website_form"
            for r in body["results"]
        )
        counts[size] = counter.count
    # The token's lookup, and the page with its count.
    assert counts == {1: 2, 50: 2}, counts
    # Filters add none (a custom field filter reads the definitions: one more).
    with count_statements(app) as counter:
        response = await api.get(
            LEADS,
            params={"status": "new", "source": "website_form", "search": "lead", "tags": "t"},
            headers=world.admin.headers,
        )
    assert response.json()["count"] == 50
    assert counter.count == 2, counter.statements
    assert (await list_leads(api, world.other))["count"] == 0


async def test_detail_costs_two_statements(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    field = await define_field(api, world.admin, "industry", "text")
    lead = await create_lead(
        api,
        world.admin,
        assigned_to=world.user.profile_id,
        source="call",
        custom_fields={"industry": "saas"},
    )
    with count_statements(app) as counter:
        response = await api.get(detail_url(lead["id"]), headers=world.admin.headers)
    assert response.status_code == 200
    assert response.json()["custom_field_definitions"][0]["key"] == "industry"
    # The token's lookup (with the org's custom_fields_version), the record with its links:
    # the definitions, read by the create at this version, are still current.
    assert counter.count == 2, counter.statements

    # A changed definition is read again, once.
    changed = await api.patch(
        f"/api/custom-fields/{field['id']}/", json={"label": "Sector"}, headers=world.admin.headers
    )
    assert changed.status_code == 200, changed.text
    for expected in (3, 2):
        with count_statements(app) as counter:
            response = await api.get(detail_url(lead["id"]), headers=world.admin.headers)
        assert response.json()["custom_field_definitions"][0]["label"] == "Sector"
        assert counter.count == expected, counter.statements
    await assert_invisible_to_other_org(api, world.other, lead["id"])
