"""Hostile input (CONTRACT §6): arbitrary text in list parameters, JSON bodies and CSV files,
drawn by hypothesis, is answered with a clear error (400 naming what is wrong; 422 in /v2/)
or a correct answer, never a 500, and a refusal writes nothing. Then the classic payloads:
SQL metacharacters in every parameter and text field, megabyte strings, lone surrogates, a
CSV with 10,000 columns or a 10 MB cell.

Covered elsewhere and not repeated: huge numbers (test_long_numbers.py, test_bad_input.py),
deep nesting, duplicate keys and bodies in other encodings (test_json_bodies.py), NUL
(test_nul.py, test_leads.py, test_lead_lists.py), invalid UTF-8 in a path or query string
(test_server_refusals.py), a body or file over its limit (test_pipeline.py, test_upload.py).

Every response is also checked against the OpenAPI document (tests/openapi_check.py)."""

import csv
import io
import json
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import World
from tests.entities_support import ENTITIES, Entity, create, listing, read
from tests.leads_support import refused
from tests.test_lead_sources_v2 import assert_base_error

# Text as people and attackers type it: any code point but surrogates, which no UTF-8
# client can send (they are tried as JSON escapes below).
TEXT = st.text(max_size=30)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
SQL = (
    "' OR '1'='1",
    "'; DROP TABLE leads; --",
    '" OR ""="',
    "1) UNION SELECT * FROM users --",
    "\\'; SELECT pg_sleep(5); --",
    "%' AND 1=1 --",
    "_%\\",
    "$1 :name ? {0}",
)
BY_ENTITY = [pytest.param(entity, id=entity.name) for entity in ENTITIES]


def list_parameters(entity: Entity) -> list[str]:
    """Every parameter the entity's list takes (cf_tier: defined by the tests)."""
    return [
        "page",
        "page_size",
        "search",
        "ordering",
        "assigned_to",
        "tags",
        "created_at__gte",
        "created_at__lte",
        "cf_tier",
        *(f.param for f in entity.filters),
    ]


def assert_clear_400(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    errors: dict[str, str] = response.json()["errors"]
    assert errors and all(isinstance(reason, str) and reason for reason in errors.values())
    return errors


async def define_tier(api: httpx.AsyncClient, world: World, entity: Entity) -> None:
    body = {"entity": entity.singular, "key": "tier", "label": "Tier", "type": "text"}
    response = await api.post(
        "/api/custom-fields/", json={**body, "filterable": True}, headers=world.admin.headers
    )
    assert response.status_code == 201, response.text


def send_json(body: Any) -> bytes:
    # NaN and Infinity included, as a careless client writes them.
    return json.dumps(body, allow_nan=True).encode()


# --- Drawn by hypothesis ----------------------------------------------------------------


@pytest.fixture
async def record(api: httpx.AsyncClient, world: World, entity: Entity) -> dict[str, Any]:
    """One record of the entity in the admin's org, which defines the `tier` custom field:
    made once for all the examples of a test."""
    await define_tier(api, world, entity)
    return await create(api, world.admin, entity)


def any_parameters(entity: Entity) -> Any:
    names = st.sampled_from(list_parameters(entity)) | TEXT
    return st.lists(st.tuples(names, TEXT), max_size=4)


@pytest.mark.parametrize("entity", BY_ENTITY)
@given(data=st.data())
async def test_list_parameters_take_any_text(
    api: httpx.AsyncClient, world: World, entity: Entity, record: dict[str, Any], data: Any
) -> None:
    params = data.draw(any_parameters(entity))
    response = await api.get(entity.url, params=params, headers=world.admin.headers)
    if response.status_code != 200:
        errors = assert_clear_400(response)
        assert set(errors) <= {name for name, _ in params} | {"detail"}, (params, errors)
    # Whatever was asked, the record is still there and still the org's alone.
    assert record["id"] in [
        item["id"] for item in (await listing(api, world.admin, entity))["results"]
    ]
    refused(await api.get(entity.detail(record["id"]), headers=world.other.headers), 404)


@example(title="0\x1f")  # trimmed by Python, not by the body's validation
@given(title=st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t and t.strip()))
async def test_search_finds_any_text_it_was_given(
    api: httpx.AsyncClient, world: World, title: str
) -> None:
    """The correct answer: a lead whose title is the text is found by searching for it."""
    leads = ENTITIES[0]
    created = await api.post(leads.url, json={"title": title}, headers=world.admin.headers)
    assert created.status_code == 201, created.text
    # Titles are trimmed of white space (Unicode's; Python's str.strip also takes \x1c-\x1f).
    stored = created.json()["title"]
    assert stored in title and stored.strip() == title.strip()
    term = title.strip()
    found = await listing(api, world.admin, leads, {"search": term, "page_size": "100"})
    assert created.json()["id"] in [item["id"] for item in found["results"]], term
    assert (await listing(api, world.other, leads, {"search": term}))["count"] == 0


def any_body(entity: Entity) -> Any:
    names = st.sampled_from(sorted(entity.writable)) | TEXT
    return st.dictionaries(names, JSON_VALUES, max_size=5) | JSON_VALUES


@pytest.mark.parametrize("entity", BY_ENTITY)
@given(data=st.data(), method=st.sampled_from(["POST", "PATCH", "PUT"]))
async def test_bodies_of_any_shape_are_taken_or_refused_whole(
    api: httpx.AsyncClient,
    world: World,
    entity: Entity,
    record: dict[str, Any],
    data: Any,
    method: str,
) -> None:
    body = data.draw(any_body(entity))
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    if method == "POST":
        path, before = entity.url, (await listing(api, world.admin, entity))["count"]
    else:
        path, before = (
            entity.detail(record["id"]),
            await read(api, world.admin, entity, record["id"]),
        )
    response = await api.request(method, path, content=send_json(body), headers=headers)
    if response.status_code in (200, 201):
        made = response.json()["id"]
        assert method == "POST" or made == record["id"]
        refused(await api.get(entity.detail(made), headers=world.other.headers), 404)
        return
    assert_clear_400(response)
    if method == "POST":
        assert (await listing(api, world.admin, entity))["count"] == before
    else:
        assert await read(api, world.admin, entity, record["id"]) == before


FIELD_KEYS = st.sampled_from(
    ["entity", "key", "label", "type", "options", "required", "filterable"]
)
SOURCE_KEYS = st.sampled_from(["name", "resource_type", "id", "creator_id"])


@given(
    field=st.dictionaries(FIELD_KEYS | TEXT, JSON_VALUES, max_size=6),
    source=st.dictionaries(SOURCE_KEYS | TEXT, JSON_VALUES, max_size=4),
    wrap=st.booleans(),
)
async def test_custom_field_and_lead_source_bodies_of_any_shape(
    api: httpx.AsyncClient, world: World, field: dict[str, Any], source: dict[str, Any], wrap: bool
) -> None:
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    made = await api.post("/api/custom-fields/", content=send_json(field), headers=headers)
    if made.status_code != 201:
        assert_clear_400(made)
    body = {"data": source, "meta": {"type": "source"}} if wrap else source
    answer = await api.post("/v2/lead_sources", content=send_json(body), headers=headers)
    if answer.status_code != 200:
        assert answer.status_code in (400, 422), answer.text
        assert_base_error(answer, answer.status_code, field=any_field(answer))


def any_field(response: httpx.Response) -> str | None:
    """The `field` a Base error names, if it names one."""
    field: str | None = response.json()["errors"][0]["error"].get("field")
    return field


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def any_file(entity: Entity) -> Any:
    columns = st.sampled_from(sorted({*entity.writable, "cf_tier"})) | TEXT
    files = st.builds(
        lambda header, rows: csv_bytes([header, *rows]),
        st.lists(columns, min_size=1, max_size=5),
        st.lists(st.lists(TEXT, max_size=5), max_size=5),
    )
    return files | st.binary(max_size=200) | TEXT.map(str.encode)


@pytest.mark.parametrize("entity", BY_ENTITY)
@given(data=st.data(), dry_run=st.booleans())
async def test_the_importer_takes_any_text(
    api: httpx.AsyncClient,
    world: World,
    entity: Entity,
    record: dict[str, Any],
    data: Any,
    dry_run: bool,
) -> None:
    content = data.draw(any_file(entity))
    before = (await listing(api, world.admin, entity))["count"]
    response = await api.post(
        f"{entity.url}upload/",
        params={"dry_run": "true"} if dry_run else {},
        files={"file": ("import.csv", content, "text/csv")},
        headers=world.admin.headers,
    )
    after = (await listing(api, world.admin, entity))["count"]
    if response.status_code != 200:
        assert_clear_400(response)
        assert after == before
        return
    report = response.json()
    numbers = [entry["row"] for key in ("created", "updated", "errors") for entry in report[key]]
    assert len(numbers) == len(set(numbers)) and all(n >= 2 for n in numbers), report
    assert after == before + (0 if dry_run else len(report["created"]))
    refused(await api.get(entity.detail(record["id"]), headers=world.other.headers), 404)


# --- The classic payloads ---------------------------------------------------------------


def text_fields(entity: Entity) -> list[str]:
    """The entity's free-text fields: those its search looks in, and its unsearched one."""
    names = [name for name in entity.search if name != "email"]
    return names + ([entity.unsearched] if entity.unsearched else [])


@pytest.mark.parametrize("entity", BY_ENTITY)
async def test_sql_metacharacters_are_plain_text(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_tier(api, world, entity)
    ids = []
    for payload in SQL:
        body = {name: payload for name in text_fields(entity)}
        if "email" in entity.search:
            body["email"] = f"o'hara{len(ids)}--@example.com"
        record = await create(
            api, world.admin, entity, **body, tags=[payload], custom_fields={"tier": payload}
        )
        for name, value in body.items():
            assert record[name] == value
        assert record["tags"] == [payload] and record["custom_fields"] == {"tier": payload}
        ids.append(record["id"])
    for n, payload in enumerate(SQL):
        # Found as text, by itself only.
        for param in ("search", "tags", "cf_tier"):
            found = await listing(api, world.admin, entity, {param: payload})
            assert [item["id"] for item in found["results"]] == [ids[n]], (param, payload)
    # Every parameter, and one named by a payload, each with a payload of its own.
    for n, param in enumerate([*list_parameters(entity), SQL[1]]):
        payload = SQL[n % len(SQL)]
        response = await api.get(entity.url, params={param: payload}, headers=world.admin.headers)
        if response.status_code != 200:
            assert set(assert_clear_400(response)) == {param}, (param, payload)
    assert (await listing(api, world.admin, entity))["count"] == len(SQL)
    assert (await listing(api, world.other, entity))["count"] == 0


async def test_sql_metacharacters_in_the_v2_dialect(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    made = []
    for payload in SQL:
        response = await api.post(
            "/v2/lead_sources", json={"data": {"name": payload}}, headers=headers
        )
        assert response.status_code == 200, response.text
        made.append(response.json()["data"])
        assert made[-1]["name"] == payload
        found = await api.get("/v2/lead_sources", params={"name": payload}, headers=headers)
        assert [item["data"]["id"] for item in found.json()["items"]] == [made[-1]["id"]]
        for param in ("sort_by", "ids", "page", "per_page", payload):
            answer = await api.get("/v2/lead_sources", params={param: payload}, headers=headers)
            assert_base_error(answer, 400, field=any_field(answer))
            assert any_field(answer) in (param, None)
    listed = await api.get("/v2/lead_sources", params={"per_page": "100"}, headers=headers)
    assert len(listed.json()["items"]) == 8 + len(SQL)


@pytest.mark.parametrize("entity", BY_ENTITY)
async def test_a_megabyte_string_is_refused_naming_the_field(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define_tier(api, world, entity)
    record = await create(api, world.admin, entity)
    before = await read(api, world.admin, entity, record["id"])
    megabyte = "x" * 1_000_000  # under the body limit of 1 MiB: each field's own limit says no
    bodies = {name: {name: megabyte} for name in (*text_fields(entity), *entity.required)}
    bodies["tags.0"] = {"tags": [megabyte]}
    bodies["custom_fields.tier"] = {"custom_fields": {"tier": megabyte}}
    for n, (named, body) in enumerate(bodies.items()):
        # Creates and updates, alternately: one megabyte string after another is slow.
        if n % 2:
            method, path, full = "PATCH", entity.detail(record["id"]), body
        else:
            method, path, full = "POST", entity.url, {**entity.minimal("mb"), **body}
        response = await api.request(method, path, json=full, headers=world.admin.headers)
        assert set(assert_clear_400(response)) == {named}, (method, named)
    assert await read(api, world.admin, entity, record["id"]) == before
    assert (await listing(api, world.admin, entity))["count"] == 1
    refused(await api.get(entity.detail(record["id"]), headers=world.other.headers), 404)


async def test_a_lone_surrogate_escape_is_refused_naming_the_field(
    api: httpx.AsyncClient, world: World
) -> None:
    """ "\\ud800" is valid JSON but no text: no database could store it."""
    headers = {**world.admin.headers, "Content-Type": "application/json"}
    for body, named in (
        (b'{"title": "a\\ud800"}', "title"),
        (b'{"title": "t", "tags": ["\\udfff"]}', "tags.0"),
    ):
        refused(await api.post("/api/leads/", content=body, headers=headers), 400, named)
    answer = await api.post(
        "/v2/lead_sources", content=b'{"data": {"name": "\\ud800"}}', headers=headers
    )
    assert_base_error(answer, 422)
    upload = await api.post(
        "/api/leads/upload/",
        files={"file": ("a.csv", b"title\n\xed\xa0\x80\n", "text/csv")},
        headers=world.admin.headers,
    )
    refused(upload, 400, "file")
    assert (await listing(api, world.admin, ENTITIES[0]))["count"] == 0


async def test_a_csv_with_10000_columns_or_a_10_mb_cell_is_refused(
    api: httpx.AsyncClient, world: World
) -> None:
    leads = ENTITIES[0]

    async def upload(content: bytes) -> httpx.Response:
        return await api.post(
            f"{leads.url}upload/",
            files={"file": ("import.csv", content, "text/csv")},
            headers=world.admin.headers,
        )

    wide = ["title", *(f"c{n}" for n in range(9_999))]
    errors = assert_clear_400(await upload(csv_bytes([wide, ["t"] * len(wide)])))
    assert set(errors) == set(wide[1:])  # every unknown column named
    errors = assert_clear_400(await upload(csv_bytes([["title"], ["x" * 10_000_000]])))
    assert set(errors) == {"file"} and "line 2: a cell of more than 131,072" in errors["file"]
    # A row with 10,000 cells under a header of one is that row's error.
    report = (await upload(csv_bytes([["title"], ["t"] * 10_000, ["ok"]]))).json()
    assert [entry["row"] for entry in report["errors"]] == [2]
    assert [entry["row"] for entry in report["created"]] == [3]
    assert (await listing(api, world.admin, leads))["count"] == 1
