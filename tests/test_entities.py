"""The five /api/ entities on one suite (CONTRACT §2, §3, §6): every test runs for leads,
contacts, accounts, opportunities and tasks, from the table in tests/entities_support.py."""

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import World, count_statements
from tests.entities_support import (
    ENTITIES,
    SERVER_DERIVED,
    UNKNOWN_ID,
    Entity,
    as_read,
    assert_invisible_to_other_org,
    create,
    define_custom_fields,
    linked_records,
    listed_ids,
    listing,
    new_tag,
    profile_ref,
    read,
    reads,
    refused_naming,
    resolve,
)
from tests.leads_support import CUSTOM_FIELDS, refused

each_entity = pytest.mark.parametrize("entity", ENTITIES, ids=lambda entity: entity.name)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def without_definitions(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "custom_field_definitions"}


def profiles_of(world: World) -> dict[str, str]:
    return {who.profile_id: who.email for who in (world.admin, world.user)}


def new_record_defaults(entity: Entity) -> dict[str, Any]:
    """What each writable (and server-derived entity) field reads when a body left it out."""
    return {
        **entity.defaults,
        "assigned_to": None,
        "tags": [],
        "custom_fields": {},
        **entity.read_only,
    }


# --- Create, read, change, delete, restore ------------------------------------------------


@each_entity
async def test_create_answers_the_full_record(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_custom_fields(api, world.admin, entity)
    # Another entity's custom field is not this one's.
    elsewhere = next(other for other in ENTITIES if other is not entity)
    response = await api.post(
        CUSTOM_FIELDS,
        json={"entity": elsewhere.singular, "key": "region", "label": "Region", "type": "text"},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    body = {**entity.minimal(new_tag()), "custom_fields": {"region": "emea"}}
    refused(
        await api.post(entity.url, json=body, headers=world.admin.headers),
        400,
        "custom_fields.region",
    )
    # The minimal body: every other field at its default.
    minimal = entity.minimal(new_tag())
    response = await api.post(entity.url, json=minimal, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    bare = response.json()
    assert set(bare) == entity.keys
    uuid.UUID(bare["id"])
    assert bare["created_by"] == profile_ref(world.admin)
    assert bare["created_at"].endswith("Z")
    assert bare["created_at"] == bare["updated_at"]
    defaults = new_record_defaults(entity)
    assert {name: bare[name] for name in defaults} == {**defaults, **minimal}

    # Every field, links included: each reads back as written.
    ids = await linked_records(api, world.admin, entity.full(""))
    full = resolve(
        {
            **entity.full(new_tag()),
            "assigned_to": world.user.profile_id,
            "custom_fields": {"tier": "gold", "score": 7},
        },
        ids,
    )
    # The table's full body writes every field (a task's other parents are in its variants).
    assert set(full).union(*entity.link_bodies("")) == entity.writable
    response = await api.post(entity.url, json=full, headers=world.admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == entity.keys
    assert reads(entity, created, full) == as_read(entity, full, profiles_of(world))

    # The detail is the same record with the entity's custom field definitions.
    detail = await read(api, world.admin, entity, created["id"])
    definitions = detail.pop("custom_field_definitions")
    assert detail == created
    assert sorted((d["entity"], d["key"]) for d in definitions) == [
        (entity.singular, "score"),
        (entity.singular, "tier"),
    ]
    # The list reads the same records.
    listed = await listing(api, world.admin, entity, {"ordering": "created_at"})
    assert listed["results"] == [bare, created]
    await assert_invisible_to_other_org(api, world.other, entity, created["id"])


@each_entity
async def test_patch_put_delete_restore(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_custom_fields(api, world.admin, entity)
    ids = await linked_records(api, world.admin, entity.full(""))
    full = resolve(
        {
            **entity.full(new_tag()),
            "assigned_to": world.user.profile_id,
            "custom_fields": {"tier": "gold", "score": 7},
        },
        ids,
    )
    record = await create(api, world.admin, entity, **full)
    url = entity.detail(record["id"])
    headers = world.admin.headers

    # PATCH: only the fields in the body change.
    name = entity.required[0]
    response = await api.patch(url, json={name: "Renamed"}, headers=headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert moment(patched["updated_at"]) > moment(record["updated_at"])
    assert patched == {**record, name: "Renamed", "updated_at": patched["updated_at"]}
    # custom_fields: the keys given are replaced, the others kept; null removes one.
    response = await api.patch(url, json={"custom_fields": {"score": 8}}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["custom_fields"] == {"tier": "gold", "score": 8}
    response = await api.patch(url, json={"custom_fields": {"tier": None}}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["custom_fields"] == {"score": 8}

    # PUT: a writable field left out returns to its default.
    minimal = entity.minimal(new_tag())
    response = await api.put(url, json=minimal, headers=headers)
    assert response.status_code == 200, response.text
    put = response.json()
    assert set(put) == entity.keys
    defaults = new_record_defaults(entity)
    assert {name: put[name] for name in defaults} == {**defaults, **minimal}
    for kept in ("id", "created_by", "created_at"):
        assert put[kept] == record[kept]
    assert without_definitions(await read(api, world.admin, entity, record["id"])) == put

    # DELETE: 204, then 404 everywhere and absent from lists.
    response = await api.delete(url, headers=headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    refused(await api.get(url, headers=headers), 404)
    refused(await api.patch(url, json={name: "Again"}, headers=headers), 404)
    refused(await api.put(url, json=minimal, headers=headers), 404)
    refused(await api.delete(url, headers=headers), 404)
    assert record["id"] not in await listed_ids(api, world.admin, entity)

    # Restore (an admin): 200 with the record, which is back.
    response = await api.post(f"{url}restore/", headers=headers)
    assert response.status_code == 200, response.text
    restored = without_definitions(response.json())
    assert {**restored, "updated_at": None} == {**put, "updated_at": None}
    assert without_definitions(await read(api, world.admin, entity, record["id"])) == restored
    assert await listed_ids(api, world.admin, entity) == [record["id"]]
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])


# --- Who may do what ------------------------------------------------------------------------


@each_entity
async def test_a_user_reaches_only_what_it_created_or_is_assigned(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    name = entity.required[0]
    ids = await linked_records(api, world.admin, entity.full(""))
    admins = await create(api, world.admin, entity)
    assigned = await create(api, world.admin, entity, assigned_to=world.user.profile_id)
    # A user may link to any live record of its org (the admin created those).
    own = await create(api, world.user, entity, **resolve(entity.full(new_tag()), ids))
    assert own["created_by"] == profile_ref(world.user)
    user = world.user.headers
    assert sorted(await listed_ids(api, world.user, entity)) == sorted([assigned["id"], own["id"]])

    url = entity.detail(admins["id"])
    refused(await api.get(url, headers=user), 403)
    refused(await api.patch(url, json={name: "Mine"}, headers=user), 403)
    refused(await api.put(url, json=entity.minimal(new_tag()), headers=user), 403)
    refused(await api.delete(url, headers=user), 403)
    assert without_definitions(await read(api, world.admin, entity, admins["id"])) == admins

    # What it sees, it may change and delete; restoring is for admins.
    response = await api.patch(entity.detail(assigned["id"]), json={name: "Mine"}, headers=user)
    assert response.status_code == 200, response.text
    assert response.json()[name] == "Mine"
    own_url = entity.detail(own["id"])
    assert (await api.delete(own_url, headers=user)).status_code == 204
    refused(await api.post(f"{own_url}restore/", headers=user), 403)
    refused(await api.get(own_url, headers=user), 404)
    response = await api.post(f"{own_url}restore/", headers=world.admin.headers)
    assert response.status_code == 200, response.text
    assert without_definitions(await read(api, world.user, entity, own["id"]))["id"] == own["id"]
    await assert_invisible_to_other_org(api, world.other, entity, own["id"])


@each_entity
async def test_another_org_gets_404_and_anonymous_401(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    record = await create(api, world.admin, entity)
    url = entity.detail(record["id"])
    name = entity.required[0]
    body = entity.minimal(new_tag())
    other = world.other.headers
    missing = await api.get(entity.detail(UNKNOWN_ID), headers=other)
    refused(missing, 404)
    theirs = await api.get(url, headers=other)
    assert (theirs.status_code, theirs.json()) == (404, missing.json())
    refused(await api.get(entity.detail("not-an-id"), headers=other), 404)
    refused(await api.patch(url, json={name: "Theirs"}, headers=other), 404)
    refused(await api.put(url, json=body, headers=other), 404)
    refused(await api.delete(url, headers=other), 404)
    refused(await api.post(f"{url}restore/", headers=other), 404)
    # Soft-deleted, it is still not theirs to restore.
    assert (await api.delete(url, headers=world.admin.headers)).status_code == 204
    refused(await api.post(f"{url}restore/", headers=other), 404)
    assert (await api.post(f"{url}restore/", headers=world.admin.headers)).status_code == 200

    # The path exists, not with that method.
    response = await api.delete(entity.url, headers=world.admin.headers)
    refused(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}

    for response in (
        await api.get(entity.url),
        await api.post(entity.url, json=body),
        await api.get(url),
        await api.patch(url, json={name: "Anonymous"}),
        await api.put(url, json=body),
        await api.delete(url),
        await api.post(f"{url}restore/"),
    ):
        refused(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    # Nothing they tried changed anything.
    assert (
        without_definitions(await read(api, world.admin, entity, record["id"]))[name]
        == (record[name])
    )
    assert await listed_ids(api, world.admin, entity) == [record["id"]]
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])


# --- Bodies refused ---------------------------------------------------------------------------


@each_entity
async def test_bodies_are_refused_naming_the_field(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_custom_fields(api, world.admin, entity)
    record = await create(api, world.admin, entity, custom_fields={"tier": "gold"})
    url = entity.detail(record["id"])
    headers = world.admin.headers
    minimal = entity.minimal(new_tag())
    derived = {**SERVER_DERIVED, **dict.fromkeys(entity.read_only, UNKNOWN_ID)}

    # Server-derived fields, and fields the entity does not have: each is named.
    refused(
        await api.post(entity.url, json={**minimal, "id": UNKNOWN_ID}, headers=headers), 400, "id"
    )
    wrong = {**derived, "colour": "red"}
    refused(await api.post(entity.url, json={**minimal, **wrong}, headers=headers), 400, *wrong)
    refused(await api.patch(url, json=wrong, headers=headers), 400, *wrong)
    refused(await api.put(url, json={**minimal, **wrong}, headers=headers), 400, *wrong)

    # The fields every record has: an assignee is a member of the org, tags a list of
    # strings, custom_fields an object.
    for name, value in (
        ("assigned_to", world.other.profile_id),
        ("assigned_to", "me"),
        ("tags", "hot"),
        ("tags", [1]),
        ("custom_fields", ["tier"]),
    ):
        body = {**minimal, name: value}
        refused_naming(await api.post(entity.url, json=body, headers=headers), name)
    # A body that is no JSON object.
    refused(await api.post(entity.url, json=[minimal], headers=headers), 400)
    malformed = await api.post(
        entity.url, content=b'{"x": ', headers={**headers, "Content-Type": "application/json"}
    )
    refused(malformed, 400)

    # Required fields.
    refused(await api.post(entity.url, json={}, headers=headers), 400, *entity.required)
    refused(await api.put(url, json={}, headers=headers), 400, *entity.required)
    for name in entity.required:
        refused(await api.post(entity.url, json={**minimal, name: ""}, headers=headers), 400, name)
        refused(await api.patch(url, json={name: None}, headers=headers), 400, name)

    # Values of the wrong kind.
    for name, value in entity.invalid:
        body = {**minimal, name: value}
        refused_naming(await api.post(entity.url, json=body, headers=headers), name)
    name, value = entity.invalid[0]
    refused_naming(await api.patch(url, json={name: value}, headers=headers), name)

    # Custom fields: a wrong type or an unknown key names custom_fields.<key>.
    for values, names in (
        ({"score": "high"}, ("custom_fields.score",)),
        ({"tier": 5}, ("custom_fields.tier",)),
        ({"nope": 1}, ("custom_fields.nope",)),
    ):
        body = {**minimal, "custom_fields": values}
        refused(await api.post(entity.url, json=body, headers=headers), 400, *names)
    refused(
        await api.patch(url, json={"custom_fields": {"score": "high"}}, headers=headers),
        400,
        "custom_fields.score",
    )

    # Nothing was created or changed.
    assert without_definitions(await read(api, world.admin, entity, record["id"])) == record
    assert await listed_ids(api, world.admin, entity) == [record["id"]]
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])


@each_entity
async def test_custom_field_definitions_rule_the_records(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    tier, score = await define_custom_fields(api, world.admin, entity)
    headers = world.admin.headers
    record = await create(api, world.admin, entity, custom_fields={"tier": "gold", "score": 1})
    # Required: a record without it is refused.
    response = await api.patch(
        f"{CUSTOM_FIELDS}{score['id']}/", json={"required": True}, headers=headers
    )
    assert response.status_code == 200, response.text
    minimal = entity.minimal(new_tag())
    refused(await api.post(entity.url, json=minimal, headers=headers), 400, "custom_fields.score")
    # Deleted: no longer accepted, filtered on, or returned in any record.
    assert (await api.delete(f"{CUSTOM_FIELDS}{tier['id']}/", headers=headers)).status_code == 204
    assert (await read(api, world.admin, entity, record["id"]))["custom_fields"] == {"score": 1}
    body = {**minimal, "custom_fields": {"tier": "gold", "score": 2}}
    refused(await api.post(entity.url, json=body, headers=headers), 400, "custom_fields.tier")
    refused(await api.get(entity.url, params={"cf_tier": "gold"}, headers=headers), 400, "cf_tier")
    assert await listed_ids(api, world.admin, entity) == [record["id"]]
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])


@pytest.mark.parametrize(
    "entity", [e for e in ENTITIES if e.unique], ids=[e.name for e in ENTITIES if e.unique]
)
async def test_unique_field_among_live_records_any_case(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    assert entity.unique is not None
    name, value, other_case = entity.unique
    headers = world.admin.headers
    first = await create(api, world.admin, entity, **{name: value})
    body = {**entity.minimal(new_tag()), name: other_case}
    refused(await api.post(entity.url, json=body, headers=headers), 400, name)
    second = await create(api, world.admin, entity)
    url = entity.detail(second["id"])
    refused(await api.patch(url, json={name: other_case}, headers=headers), 400, name)
    # Another org has its own; a deleted record frees the value.
    assert (await api.post(entity.url, json=body, headers=world.other.headers)).status_code == 201
    assert (await api.delete(entity.detail(first["id"]), headers=headers)).status_code == 204
    third = await create(api, world.admin, entity, **{name: other_case})
    assert third[name] == other_case
    assert sorted(await listed_ids(api, world.admin, entity)) == sorted([second["id"], third["id"]])
    await assert_invisible_to_other_org(api, world.other, entity, third["id"])


# --- Lists ------------------------------------------------------------------------------------


@each_entity
async def test_pages_links_and_ties(api: httpx.AsyncClient, world: World, entity: Entity) -> None:
    records = [await create(api, world.admin, entity, tags=["p"]) for _ in range(3)]
    await create(api, world.admin, entity)  # not tagged: left out
    ids = [record["id"] for record in records]
    params = {"tags": "p", "ordering": "created_at", "page_size": "2"}
    kept = {key: [value] for key, value in params.items()}

    first = await listing(api, world.admin, entity, params)
    assert first["count"] == 3
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert first["previous"] is None
    assert first["next"].startswith(f"http://testserver{entity.url}?")
    assert query_of(first["next"]) == {**kept, "page": ["2"]}
    response = await api.get(first["next"], headers=world.admin.headers)
    assert response.status_code == 200, response.text
    second = response.json()
    assert [r["id"] for r in second["results"]] == ids[2:]
    assert second["next"] is None
    assert second["previous"].startswith(f"http://testserver{entity.url}?")
    assert query_of(second["previous"]) == {**kept, "page": ["1"]}
    past = await listing(api, world.admin, entity, {**params, "page": "3"})
    assert (past["count"], past["results"], past["next"]) == (3, [], None)
    refused(
        await api.get(entity.url, params={"page_size": "101"}, headers=world.admin.headers),
        400,
        "page_size",
    )

    # The three tie on this field: ties are broken by id, so pages never overlap.
    tie = next(name for name in entity.ordering if name not in entity.required)
    for ordering in (tie, f"-{tie}"):
        seen: list[str] = []
        url: str | None = f"{entity.url}?tags=p&ordering={ordering}&page_size=2"
        while url:
            response = await api.get(url, headers=world.admin.headers)
            assert response.status_code == 200, response.text
            seen.extend(r["id"] for r in response.json()["results"])
            url = response.json()["next"]
        assert seen in (sorted(ids), sorted(ids, reverse=True)), ordering

    other = await listing(api, world.other, entity, params)
    assert other == {
        "count": 0,
        "count_estimated": False,
        "next": None,
        "previous": None,
        "results": [],
    }


@each_entity
async def test_exact_match_filters(api: httpx.AsyncClient, world: World, entity: Entity) -> None:
    ids = await linked_records(api, world.admin, [f.body for f in entity.filters])
    matching = {
        f.param: await create(api, world.admin, entity, **resolve(f.body, ids))
        for f in entity.filters
    }
    await create(api, world.admin, entity)
    headers = world.admin.headers
    for f in entity.filters:
        record_id = matching[f.param]["id"]
        match, miss = resolve(f.match, ids), resolve(f.miss, ids)
        assert await listed_ids(api, world.admin, entity, {f.param: match}) == [record_id], f
        assert record_id not in await listed_ids(api, world.admin, entity, {f.param: miss}), f
        if f.bad is not None:
            refused(
                await api.get(entity.url, params={f.param: f.bad}, headers=headers), 400, f.param
            )
        assert await listed_ids(api, world.other, entity, {f.param: match}) == []
    # Another entity's filters are unknown parameters here.
    foreign = {f.param for other in ENTITIES for f in other.filters} - {
        f.param for f in entity.filters
    }
    params = {**dict.fromkeys(foreign, "x"), "colour": "red"}
    refused(await api.get(entity.url, params=params, headers=headers), 400, *params)
    await assert_invisible_to_other_org(api, world.other, entity, record_id)


@each_entity
async def test_assigned_to_tags_created_at_and_custom_field_filters(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_custom_fields(api, world.admin, entity)
    first = await create(api, world.admin, entity)
    second = await create(
        api,
        world.admin,
        entity,
        assigned_to=world.user.profile_id,
        tags=["hot", "vip"],
        custom_fields={"tier": "gold", "score": 7},
    )
    third = await create(api, world.user, entity, tags=["cold"], custom_fields={"tier": "silver"})
    headers = world.admin.headers

    async def matching(params: dict[str, str]) -> list[str]:
        return sorted(await listed_ids(api, world.admin, entity, params))

    def ids(*records: dict[str, Any]) -> list[str]:
        return sorted(record["id"] for record in records)

    assert await matching({"assigned_to": world.user.profile_id}) == ids(second)
    assert await matching({"assigned_to": world.admin.profile_id}) == []
    refused(
        await api.get(entity.url, params={"assigned_to": "me"}, headers=headers), 400, "assigned_to"
    )

    assert await matching({"tags": "vip,cold"}) == ids(second, third)
    assert await matching({"tags": "hot"}) == ids(second)
    assert await matching({"tags": "zzz"}) == []

    middle = second["created_at"]
    assert await matching({"created_at__gte": middle}) == ids(second, third)
    assert await matching({"created_at__lte": middle}) == ids(first, second)
    assert await matching({"created_at__gte": middle, "created_at__lte": middle}) == ids(second)
    day = moment(first["created_at"]).date()
    assert await matching({"created_at__gte": day.isoformat()}) == ids(first, second, third)
    assert await matching({"created_at__lte": (day - timedelta(days=1)).isoformat()}) == []
    refused(
        await api.get(entity.url, params={"created_at__lte": "yesterday"}, headers=headers),
        400,
        "created_at__lte",
    )

    assert await matching({"cf_tier": "gold"}) == ids(second)
    assert await matching({"cf_tier": "bronze"}) == []
    # Not filterable, or no such field of the entity.
    for param in ("cf_score", "cf_nope"):
        refused(await api.get(entity.url, params={param: "7"}, headers=headers), 400, param)
    refused(
        await api.get(entity.url, params={"cf_tier": "gold"}, headers=world.other.headers),
        400,
        "cf_tier",
    )
    assert await listed_ids(api, world.other, entity, {"assigned_to": world.user.profile_id}) == []
    await assert_invisible_to_other_org(api, world.other, entity, second["id"])


@each_entity
async def test_search_looks_in_each_search_field(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    by_field = {
        name: await create(api, world.admin, entity, **{name: value})
        for name, (value, _term) in entity.search.items()
    }
    unsearched = {entity.unsearched: "Echidna"} if entity.unsearched else {}
    await create(api, world.admin, entity, **unsearched)
    for name, (_value, term) in entity.search.items():
        assert await listed_ids(api, world.admin, entity, {"search": term}) == [
            by_field[name]["id"]
        ], name
    if entity.unsearched:
        assert await listed_ids(api, world.admin, entity, {"search": "echidna"}) == []
    # A blank search is no filter.
    assert len(await listed_ids(api, world.admin, entity, {"search": " "})) == len(by_field) + 1
    _value, term = next(iter(entity.search.values()))
    assert await listed_ids(api, world.other, entity, {"search": term}) == []
    await assert_invisible_to_other_org(
        api, world.other, entity, by_field[next(iter(by_field))]["id"]
    )


# Which of three values each record gets, field by field: each field orders them differently.
PERMUTATIONS = ((1, 2, 0), (2, 0, 1), (0, 2, 1), (1, 0, 2), (2, 1, 0), (0, 1, 2))


@each_entity
async def test_ordering_on_every_orderable_field(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    fields = list(entity.ordering)
    records = []
    for k in range(3):
        body = {
            name: entity.ordering[name][PERMUTATIONS[j % len(PERMUTATIONS)][k]]
            for j, name in enumerate(fields)
        }
        records.append(await create(api, world.admin, entity, **body))
    ids = [record["id"] for record in records]
    # The first record changes last.
    touched = entity.detail(ids[0])
    response = await api.patch(touched, json={"tags": ["touched"]}, headers=world.admin.headers)
    assert response.status_code == 200, response.text

    async def order(ordering: str | None) -> list[str]:
        params = {"ordering": ordering} if ordering else {}
        return await listed_ids(api, world.admin, entity, params)

    for j, name in enumerate(fields):
        rank = PERMUTATIONS[j % len(PERMUTATIONS)]
        ascending = [ids[k] for k in sorted(range(3), key=lambda k: rank[k])]
        asc, desc = await order(name), await order(f"-{name}")
        assert desc == asc[::-1], name
        if name in entity.enums:
            # The contract names no order of enum values: by name or as declared.
            declared = entity.enums[name]
            as_declared = [
                ids[k] for k in sorted(range(3), key=lambda k: declared.index(records[k][name]))
            ]
            assert asc in (ascending, as_declared), name
        else:
            assert asc == ascending, name
    assert await order("created_at") == ids
    assert await order("-created_at") == ids[::-1]
    assert await order(None) == ids[::-1]  # the default: newest first
    assert await order("updated_at") == [ids[1], ids[2], ids[0]]
    assert await order("-updated_at") == [ids[0], ids[2], ids[1]]

    for ordering in ("-colour", f"{fields[0]},description"):
        response = await api.get(
            entity.url, params={"ordering": ordering}, headers=world.admin.headers
        )
        refused(response, 400, "ordering")
    assert await listed_ids(api, world.other, entity, {"ordering": fields[0]}) == []
    await assert_invisible_to_other_org(api, world.other, entity, ids[0])


# --- What a list and a detail cost ---------------------------------------------------------------


@each_entity
async def test_statements_do_not_grow_with_the_page_or_the_links(
    api: httpx.AsyncClient, app: FastAPI, world: World, entity: Entity
) -> None:
    bodies = entity.link_bodies("")
    ids = await linked_records(api, world.admin, bodies)
    records = [
        await create(
            api,
            world.admin,
            entity,
            **resolve(entity.link_bodies(new_tag())[k % len(bodies)], ids),
            assigned_to=world.user.profile_id,
        )
        for k in range(5)
    ]
    counts = {}
    for size in (1, 5):
        with count_statements(app) as counter:
            response = await api.get(
                entity.url, params={"page_size": str(size)}, headers=world.admin.headers
            )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert len(results) == size
        assert all(
            r["assigned_to"] == profile_ref(world.user)
            and r["created_by"] == profile_ref(world.admin)
            for r in results
        )
        counts[size] = counter.count
    # Every link is read on this page.
    assert all(any(r[name] for r in results) for name in entity.links()), results
    assert counts[1] == counts[5], counts

    bare = await create(api, world.admin, entity)
    detail_counts = {}
    for record in (bare, records[0]):
        with count_statements(app) as counter:
            response = await api.get(entity.detail(record["id"]), headers=world.admin.headers)
        assert response.status_code == 200, response.text
        detail_counts[record["id"]] = counter.count
    assert len(set(detail_counts.values())) == 1, detail_counts
    await assert_invisible_to_other_org(api, world.other, entity, records[0]["id"])


# Statements of each request, by entity: the token's lookup; a create's INSERT (the unique
# index checks an account's name) and its answer read back; a PATCH's locked read, UPDATE
# and answer; a detail's record (the definitions are kept in the process); a list's page
# with its count. A list field (an opportunity's contacts) is read within the record's
# statement.
STATEMENTS = {
    "leads": {"create": 3, "patch": 4, "detail": 2, "list": 2},
    "contacts": {"create": 3, "patch": 4, "detail": 2, "list": 2},
    "accounts": {"create": 3, "patch": 4, "detail": 2, "list": 2},
    "opportunities": {"create": 3, "patch": 4, "detail": 2, "list": 2},
    "tasks": {"create": 3, "patch": 4, "detail": 2, "list": 2},
}


@each_entity
async def test_what_each_request_costs_in_statements(
    api: httpx.AsyncClient, app: FastAPI, world: World, entity: Entity
) -> None:
    await create(api, world.admin, entity)  # the process reads the definitions once
    counts = {}
    with count_statements(app) as counter:
        response = await api.post(
            entity.url, json=entity.minimal(new_tag()), headers=world.admin.headers
        )
    assert response.status_code == 201, response.text
    counts["create"] = counter.count
    url = entity.detail(response.json()["id"])
    with count_statements(app) as counter:
        patched = await api.patch(url, json={"description": "Changed"}, headers=world.admin.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "Changed"
    counts["patch"] = counter.count
    with count_statements(app) as counter:
        detail = await api.get(url, headers=world.admin.headers)
    assert detail.json()["description"] == "Changed"
    counts["detail"] = counter.count
    with count_statements(app) as counter:
        listed = await api.get(entity.url, headers=world.admin.headers)
    assert listed.json()["count"] == 2
    counts["list"] = counter.count
    assert counts == STATEMENTS[entity.name], counts
    await assert_invisible_to_other_org(api, world.other, entity, response.json()["id"])
