"""CSV upload for every entity (CONTRACT §5): rows created, updated and refused with their
spreadsheet row numbers, natural keys within the org only, cells as people type them, the
JSON API's messages, dry runs, whole-file errors, and set-based writes."""

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from crm.records import csvfile, importer
from tests.apps import client_of, fresh_app
from tests.conftest import Identity, World, count_statements, register, unique_email


@dataclass(frozen=True)
class Entity:
    name: str  # the URL's plural
    singular: str
    required: str  # the required column
    key: str | None  # the natural key

    @property
    def url(self) -> str:
        return f"/api/{self.name}/"

    def key_value(self) -> str:
        """A fresh natural key (an email, or an account's name)."""
        return unique_email("k") if self.key == "email" else f"Firm {uuid.uuid4().hex[:8]}"


ENTITIES = [
    Entity("leads", "lead", "title", "email"),
    Entity("contacts", "contact", "first_name", "email"),
    Entity("accounts", "account", "name", "name"),
    Entity("opportunities", "opportunity", "name", None),
    Entity("tasks", "task", "title", None),
]
KEYED = [entity for entity in ENTITIES if entity.key is not None]


def ids(entities: list[Entity]) -> list[str]:
    return [entity.name for entity in entities]


def csv_text(*lines: str, end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode()


async def upload(
    api: httpx.AsyncClient, who: Identity, entity: Entity, content: bytes, **params: str
) -> httpx.Response:
    return await api.post(
        f"{entity.url}upload/",
        params=params,
        files={"file": ("import.csv", content, "text/csv")},
        headers=who.headers,
    )


def report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"created", "updated", "errors", "skipped"}
    return body


def rows(entries: list[dict[str, Any]]) -> list[int]:
    return [entry["row"] for entry in entries]


async def records(api: httpx.AsyncClient, who: Identity, entity: Entity) -> list[dict[str, Any]]:
    response = await api.get(entity.url, params={"page_size": "100"}, headers=who.headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def define(
    api: httpx.AsyncClient, admin: Identity, entity: Entity, key: str, kind: str, **extra: Any
) -> None:
    body = {"entity": entity.singular, "key": key, "label": key, "type": kind, **extra}
    response = await api.post("/api/custom-fields/", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text


async def json_errors(
    api: httpx.AsyncClient, who: Identity, entity: Entity, body: dict[str, Any]
) -> dict[str, str]:
    """What the JSON API answers for this body (it must refuse it)."""
    response = await api.post(entity.url, json=body, headers=who.headers)
    assert response.status_code == 400, response.text
    errors: dict[str, str] = response.json()["errors"]
    return errors


async def assert_unseen_by_other_org(
    api: httpx.AsyncClient, other: Identity, entity: Entity, record_id: str
) -> None:
    response = await api.get(f"{entity.url}{record_id}/", headers=other.headers)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("entity", ENTITIES, ids=ids(ENTITIES))
async def test_rows_are_created_updated_and_refused_by_spreadsheet_row(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    await define(api, world.admin, entity, "score", "number")
    await define(api, world.admin, entity, "vip", "checkbox")
    await define(api, world.admin, entity, "since", "date")
    await define(api, world.admin, entity, "tier", "dropdown", options=["gold", "silver"])
    key = entity.key_value() if entity.key else ""
    key_column = f",{entity.key.title()}" if entity.key and entity.key != entity.required else ""
    key_cell = f",{key}" if key_column else ""
    first = key if entity.key == entity.required else "First"
    again = key.upper() if entity.key == entity.required else "Again"
    again_key = f",{key.upper()}" if key_column else ""
    content = csv_text(
        f"{entity.required.replace('_', ' ').title()}{key_column},Tags,Assigned To,"
        "cf_score,CF_VIP,cf_since,cf_tier,Description",
        f"{first}{key_cell},hot; vip,{world.user.email.upper()},72,yes,2026-01-31,gold,",
        f"Bad{',' + unique_email() if key_column else ''},,nobody@example.com,abc,maybe,"
        "2026-02-30,bronze,",
        f'{again}{again_key},cold,,,0,,,"Said ""hi"", then\nleft"',
        "",
        "",
        end="\r\n",
    )
    body = report(await upload(api, world.admin, entity, content))

    bad_cf = {"score": "abc", "vip": "maybe", "since": "2026-02-30", "tier": "bronze"}
    expected = await json_errors(
        api, world.admin, entity, {entity.required: "x", "custom_fields": bad_cf}
    )
    assert body["errors"] == [
        {
            "row": 3,
            "errors": {
                "assigned_to": "Not an active member of this org.",
                **{
                    f"cf_{name.removeprefix('custom_fields.')}": reason
                    for name, reason in expected.items()
                },
            },
        }
    ]
    assert rows(body["created"]) == ([2] if entity.key else [2, 4])
    assert rows(body["updated"]) == ([4] if entity.key else [])
    got = await records(api, world.admin, entity)
    assert len(got) == len(body["created"])
    last = next(record for record in got if record["id"] == body["created"][-1]["id"])
    assert last["description"] == 'Said "hi", then\nleft'
    assert last["tags"] == ["cold"]
    if entity.key:
        # The second row updated the first's record with its non-empty cells only.
        assert body["updated"][0]["id"] == body["created"][0]["id"]
        assert last["assigned_to"]["id"] == world.user.profile_id
        assert last["custom_fields"] == {
            "score": 72,
            "vip": False,
            "since": "2026-01-31",
            "tier": "gold",
        }
    else:
        first_record = next(record for record in got if record["id"] == body["created"][0]["id"])
        assert first_record["tags"] == ["hot", "vip"]
        assert first_record["assigned_to"]["id"] == world.user.profile_id
        assert first_record["custom_fields"] == {
            "score": 72,
            "vip": True,
            "since": "2026-01-31",
            "tier": "gold",
        }
        assert last["custom_fields"] == {"vip": False}
    await assert_unseen_by_other_org(api, world.other, entity, last["id"])
    assert await records(api, world.other, entity) == []


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_keys_match_live_records_of_the_org_only(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    assert entity.key is not None
    key = entity.key_value()
    base = {entity.required: "Stored"} if entity.key != entity.required else {}
    mine = await api.post(entity.url, json={**base, entity.key: key}, headers=world.admin.headers)
    theirs = await api.post(entity.url, json={**base, entity.key: key}, headers=world.other.headers)
    assert mine.status_code == theirs.status_code == 201
    header = entity.required if entity.key == entity.required else f"{entity.required},{entity.key}"
    cells = key.upper() if entity.key == entity.required else f"Renamed,{key.upper()}"
    content = csv_text(header + ",tags", cells + ",new")
    body = report(await upload(api, world.admin, entity, content))
    assert body == {
        "created": [],
        "updated": [{"row": 2, "id": mine.json()["id"]}],
        "errors": [],
        "skipped": [],
    }
    got = await api.get(f"{entity.url}{mine.json()['id']}/", headers=world.admin.headers)
    assert got.json()["tags"] == ["new"]
    # The other org's record with the same key is untouched and never matched.
    untouched = await api.get(f"{entity.url}{theirs.json()['id']}/", headers=world.other.headers)
    assert untouched.json()["tags"] == []
    await assert_unseen_by_other_org(api, world.other, entity, mine.json()["id"])


def keyed_line(entity: Entity, key: str, tags: str) -> str:
    """A row of a `required,key,tags` file (`key,tags` when the key is the required field)."""
    return f"{key},{tags}" if entity.key == entity.required else f"Row,{key},{tags}"


def keyed_header(entity: Entity) -> str:
    assert entity.key is not None
    if entity.key == entity.required:
        return f"{entity.key},tags"
    return f"{entity.required},{entity.key},tags"


async def record_of(
    api: httpx.AsyncClient, who: Identity, entity: Entity, record_id: str
) -> httpx.Response:
    return await api.get(f"{entity.url}{record_id}/", headers=who.headers)


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_a_file_uploaded_again_updates_what_its_keys_match(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    """The same bytes again are applied again: a record deleted since is created anew, one
    edited since gets the file's cells back."""
    lines = [keyed_line(entity, entity.key_value(), tag) for tag in ("a", "b")]
    content = csv_text(keyed_header(entity), *lines)
    first = report(await upload(api, world.admin, entity, content))
    assert rows(first["created"]) == [2, 3]
    gone, edited = (entry["id"] for entry in first["created"])
    deleted = await api.delete(f"{entity.url}{gone}/", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text
    patched = await api.patch(
        f"{entity.url}{edited}/", json={"tags": ["edited"]}, headers=world.admin.headers
    )
    assert patched.status_code == 200, patched.text

    second = report(await upload(api, world.admin, entity, content))
    assert rows(second["created"]) == [2] and second["created"][0]["id"] != gone
    assert second["updated"] == [{"row": 3, "id": edited}]
    assert second["errors"] == second["skipped"] == []
    assert (await record_of(api, world.admin, entity, gone)).status_code == 404
    assert (await record_of(api, world.admin, entity, edited)).json()["tags"] == ["b"]
    anew = await record_of(api, world.admin, entity, second["created"][0]["id"])
    assert anew.json()["tags"] == ["a"]
    assert len(await records(api, world.admin, entity)) == 2
    await assert_unseen_by_other_org(api, world.other, entity, edited)


KEYLESS = [entity for entity in ENTITIES if entity.name != "accounts"]  # a row may lack its key


@pytest.mark.parametrize("entity", KEYLESS, ids=ids(KEYLESS))
async def test_rows_without_a_key_are_skipped_when_uploaded_again(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    """What an earlier upload of the file created from a row without a natural key is not
    created again, even once deleted; the answer says so instead of claiming an update."""
    column = entity.required
    content = csv_text(f"{column},tags", "One,a", "Two,b", "")
    first = report(await upload(api, world.admin, entity, content))
    assert rows(first["created"]) == [2, 3]
    kept, gone = (entry["id"] for entry in first["created"])
    deleted = await api.delete(f"{entity.url}{gone}/", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text

    for _ in range(2):
        again = report(await upload(api, world.admin, entity, content))
        assert (again["created"], again["updated"], again["errors"]) == ([], [], [])
        assert again["skipped"] == [
            {"row": 2, "id": kept, "reason": importer.MADE_BEFORE},
            {"row": 3, "id": None, "reason": importer.MADE_BEFORE},
        ]
    assert [record["id"] for record in await records(api, world.admin, entity)] == [kept]
    # Another org importing the same file gets its own records.
    theirs = report(await upload(api, world.other, entity, content))
    assert rows(theirs["created"]) == [2, 3]
    assert {entry["id"] for entry in theirs["created"]}.isdisjoint([kept, gone])
    await assert_unseen_by_other_org(api, world.other, entity, kept)


async def test_a_row_refused_before_is_created_once_then_skipped(
    api: httpx.AsyncClient, world: World
) -> None:
    """A row an earlier upload refused is applied again; once created, it is skipped."""
    entity = ENTITIES[3]  # opportunities: no natural key
    firm = f"Firm {uuid.uuid4().hex[:8]}"
    content = csv_text("name,account", f"Deal,{firm}")
    refused = report(await upload(api, world.admin, entity, content))
    assert rows(refused["errors"]) == [2] and refused["created"] == []
    made = await api.post("/api/accounts/", json={"name": firm}, headers=world.admin.headers)
    assert made.status_code == 201, made.text
    created = report(await upload(api, world.admin, entity, content))
    assert rows(created["created"]) == [2] and created["errors"] == []
    again = report(await upload(api, world.admin, entity, content))
    assert again["skipped"] == [
        {"row": 2, "id": created["created"][0]["id"], "reason": importer.MADE_BEFORE}
    ]
    assert (again["created"], again["updated"], again["errors"]) == ([], [], [])
    assert len(await records(api, world.admin, entity)) == 1


@pytest.mark.parametrize("entity", KEYLESS[:1] + KEYLESS[2:3], ids=["leads", "opportunities"])
async def test_a_user_uploading_an_admins_file_again_gets_no_ids_it_may_not_see(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    lines = ["One", "Two"] if entity.key is None else ["Keyed,", "Keyless,"]
    if entity.key is not None:
        lines[0] += entity.key_value()
    header = entity.required if entity.key is None else f"{entity.required},{entity.key}"
    content = csv_text(header, *lines)
    first = report(await upload(api, world.admin, entity, content))
    assert rows(first["created"]) == [2, 3]

    response = await upload(api, world.user, entity, content)
    body = report(response)
    assert (body["created"], body["updated"]) == ([], [])
    if entity.key is None:
        assert body["errors"] == []
        assert body["skipped"] == [
            {"row": 2, "id": None, "reason": importer.MADE_BEFORE},
            {"row": 3, "id": None, "reason": importer.MADE_BEFORE},
        ]
    else:
        reason = importer.INVISIBLE.format(key=entity.key)
        assert body["errors"] == [{"row": 2, "errors": {entity.key: reason}}]
        assert body["skipped"] == [{"row": 3, "id": None, "reason": importer.MADE_BEFORE}]
    assert all(entry["id"] not in response.text for entry in first["created"])
    assert await records(api, world.user, entity) == []
    assert len(await records(api, world.admin, entity)) == 2


@pytest.mark.parametrize("entity", ENTITIES, ids=ids(ENTITIES))
async def test_a_dry_run_answers_the_same_and_writes_nothing(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    content = csv_text(f"{entity.required},tags", f"{entity.key_value()},a", ",b")
    dry = report(await upload(api, world.admin, entity, content, dry_run="true"))
    assert rows(dry["created"]) == [2]
    # Row 3 gives a tag but not the required field.
    assert dry["errors"] == [{"row": 3, "errors": {entity.required: "This field is required."}}]
    assert await records(api, world.admin, entity) == []
    real = report(await upload(api, world.admin, entity, content))
    assert rows(real["created"]) == [2] and real["errors"] == dry["errors"]
    assert len(await records(api, world.admin, entity)) == 1


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_a_user_may_update_only_records_it_sees(
    api: httpx.AsyncClient, world: World, entity: Entity
) -> None:
    assert entity.key is not None
    hidden_key, own_key = entity.key_value(), entity.key_value()
    base = {entity.required: "Stored"} if entity.key != entity.required else {}
    hidden = await api.post(
        entity.url, json={**base, entity.key: hidden_key}, headers=world.admin.headers
    )
    own = await api.post(entity.url, json={**base, entity.key: own_key}, headers=world.user.headers)
    assert hidden.status_code == own.status_code == 201
    header = entity.required if entity.key == entity.required else f"{entity.required},{entity.key}"

    def line(key: str) -> str:
        return f"{key},x" if entity.key == entity.required else f"N,{key},x"

    body = report(
        await upload(
            api, world.user, entity, csv_text(f"{header},tags", line(hidden_key), line(own_key))
        )
    )
    assert body["created"] == []
    assert body["updated"] == [{"row": 3, "id": own.json()["id"]}]
    assert rows(body["errors"]) == [2] and set(body["errors"][0]["errors"]) == {entity.key}
    got = await api.get(f"{entity.url}{hidden.json()['id']}/", headers=world.admin.headers)
    assert got.json()["tags"] == []


async def test_links_by_id_or_natural_key_any_case(api: httpx.AsyncClient, world: World) -> None:
    admin = world.admin.headers
    account = await api.post("/api/accounts/", json={"name": "Initech"}, headers=admin)
    contact = await api.post(
        "/api/contacts/",
        json={"first_name": "Ann", "email": "ann@initech.com"},
        headers=world.admin.headers,
    )
    other = await api.post(
        "/api/contacts/",
        json={"first_name": "Bob", "email": "bob@initech.com"},
        headers=world.admin.headers,
    )
    theirs = await api.post("/api/accounts/", json={"name": "Globex"}, headers=world.other.headers)
    account_id, contact_id = account.json()["id"], contact.json()["id"]
    opportunities = ENTITIES[3]
    content = csv_text(
        "name,account,contacts,amount,currency,stage,probability,close_date,source",
        f"Big,INITECH,ANN@initech.com; {other.json()['id']},24000.50,EUR,proposal,60,"
        "2026-12-31,CALL",
        f"Small,{account_id},,12,USD,,,,",
        "Theirs,Globex,nobody@example.com,-1,eur,won,101,31/12/2026,nowhere",
    )
    body = report(await upload(api, world.admin, opportunities, content))
    assert rows(body["created"]) == [2, 3]
    expected = await json_errors(
        api,
        world.admin,
        opportunities,
        {
            "name": "x",
            "amount": -1,
            "currency": "eur",
            "stage": "won",
            "probability": 101,
            "close_date": "31/12/2026",
            "source": "nowhere",
        },
    )
    assert body["errors"] == [
        {
            "row": 4,
            "errors": {
                "account": "No account 'Globex' in this org.",
                "contacts": "No such record in this org: nobody@example.com.",
                **{name: reason for name, reason in expected.items() if name != "source"},
                "source": "No source 'nowhere' in this org.",
            },
        }
    ]
    assert theirs.status_code == 201
    got = (await api.get(f"/api/opportunities/{body['created'][0]['id']}/", headers=admin)).json()
    assert got["account"] == account_id
    assert sorted(got["contacts"]) == sorted([contact_id, other.json()["id"]])
    assert (got["amount"], got["currency"], got["stage"]) == (24000.5, "EUR", "proposal")
    assert (got["probability"], got["close_date"], got["source"]) == (60, "2026-12-31", "call")

    tasks = ENTITIES[4]
    body = report(
        await upload(
            api,
            world.admin,
            tasks,
            csv_text(
                "title,due_date,contact,account,priority",
                "Call,2026-12-31T17:00:00+02:00,Ann@Initech.com,,high",
                "Both,,ann@initech.com,initech,",
            ),
        )
    )
    assert rows(body["created"]) == [2]
    assert rows(body["errors"]) == [3]
    assert set(body["errors"][0]["errors"]) == {"contact", "account"}
    task = (await api.get(f"/api/tasks/{body['created'][0]['id']}/", headers=admin)).json()
    assert task["contact"] == contact_id
    assert (task["due_date"], task["priority"]) == ("2026-12-31T15:00:00Z", "high")

    leads = ENTITIES[0]
    body = report(
        await upload(
            api,
            world.admin,
            leads,
            csv_text(
                "First Name,Title,Status,Source",
                "Jo,Lead one,qualified,Website_Form",
                "Al,Lead two,converted,",
            ),
        )
    )
    assert rows(body["created"]) == [2]
    expected = await json_errors(api, world.admin, leads, {"title": "x", "status": "converted"})
    assert body["errors"] == [{"row": 3, "errors": expected}]
    lead = (await api.get(f"/api/leads/{body['created'][0]['id']}/", headers=admin)).json()
    assert (lead["first_name"], lead["status"]) == ("Jo", "qualified")
    assert lead["source"] == "website_form"
    await assert_unseen_by_other_org(api, world.other, leads, lead["id"])


@pytest.mark.parametrize("entity", ENTITIES, ids=ids(ENTITIES))
async def test_whole_file_errors(api: httpx.AsyncClient, world: World, entity: Entity) -> None:
    async def refused(response: httpx.Response, *fields: str) -> None:
        assert response.status_code == 400, response.text
        assert set(response.json()["errors"]) == set(fields), response.text

    url = f"{entity.url}upload/"
    await refused(await api.post(url, headers=world.admin.headers), "file")
    await refused(
        await api.post(url, data={"file": "text, not a file"}, headers=world.admin.headers), "file"
    )
    good = f"{entity.required}\nOne\n"
    await refused(await upload(api, world.admin, entity, b""), "file")
    await refused(await upload(api, world.admin, entity, b"\n\nOne\n"), "file")
    await refused(await upload(api, world.admin, entity, good.encode("utf-16")), "file")
    latin = f"{good}caf\xe9\n".encode("latin-1")
    await refused(await upload(api, world.admin, entity, latin), "file")
    await refused(await upload(api, world.admin, entity, b"description\nx\n"), entity.required)
    await refused(
        await upload(api, world.admin, entity, f"{entity.required},colour\nOne,red\n".encode()),
        "colour",
    )
    await refused(
        await upload(api, world.admin, entity, f"{entity.required},cf_nope\nOne,x\n".encode()),
        "cf_nope",
    )
    await refused(
        await upload(api, world.admin, entity, f"{entity.required},org\nOne,x\n".encode()), "org"
    )
    twice = f"{entity.required},Tags,tags\nOne,a,b\n".encode()
    await refused(await upload(api, world.admin, entity, twice), "tags")
    await refused(await upload(api, world.admin, entity, good.encode(), dry_run="maybe"), "dry_run")
    assert await records(api, world.admin, entity) == []
    # A BOM is fine.
    body = report(await upload(api, world.admin, entity, good.encode("utf-8-sig")))
    assert rows(body["created"]) == [2]


async def test_a_file_over_the_upload_limit_is_413(database_url: str) -> None:
    app = fresh_app(database_url, upload_max_bytes=1000)
    async with client_of(app) as client:
        admin = await register(client)
        small = await upload(client, admin, ENTITIES[0], b"title\nOne\n")
        assert small.status_code == 200, small.text
        big = await upload(client, admin, ENTITIES[0], b"title\n" + b"x" * 2000 + b"\n")
        assert big.status_code == 413, big.text
        listed = await client.get("/api/leads/", headers=admin.headers)
        assert listed.json()["count"] == 1


async def test_rows_with_more_cells_than_the_header_are_errors(
    api: httpx.AsyncClient, world: World
) -> None:
    body = report(await upload(api, world.admin, ENTITIES[0], csv_text("title", "a", "b,c", "d")))
    assert rows(body["created"]) == [2, 4]
    assert rows(body["errors"]) == [3]


@pytest.mark.parametrize("entity", ENTITIES, ids=ids(ENTITIES))
async def test_statements_do_not_grow_with_rows(
    api: httpx.AsyncClient, app: FastAPI, world: World, entity: Entity
) -> None:
    await define(api, world.admin, entity, "score", "number")

    async def statements(count: int) -> int:
        lines = [f"{entity.required},tags,assigned_to,cf_score"]
        lines += [f"{entity.key_value()},a; b,{world.user.email},{n}" for n in range(count)]
        with count_statements(app) as counter:
            body = report(await upload(api, world.admin, entity, csv_text(*lines)))
        assert len(body["created"]) == count
        return counter.count

    await statements(1)  # reads the new definitions, which the process then keeps
    assert await statements(10) == await statements(200)


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_earlier_rows_count_across_batches(
    api: httpx.AsyncClient, world: World, entity: Entity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row repeating a key of an earlier batch finds the record that batch wrote (in the
    same transaction), and repeats within a batch update the record about to be written."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    first, second = entity.key_value(), entity.key_value()
    if entity.key == entity.required:
        header = f"tags,{entity.key}"
        lines = [f"a,{first}", f"b,{second}", f"c,{first.upper()}", f"e,{second}"]
    else:
        header = f"tags,{entity.required},{entity.key}"
        lines = [f"a,One,{first}", f"b,Two,{second}", f"c,,{first.upper()}", f"d,,{second}"]
        lines.append(f"e,,{second}")
    body = report(await upload(api, world.admin, entity, csv_text(header, *lines)))
    assert rows(body["created"]) == [2, 3] and body["errors"] == []
    created = {entry["row"]: entry["id"] for entry in body["created"]}
    expected_updates = [4, 5] if entity.key == entity.required else [4, 5, 6]
    assert rows(body["updated"]) == expected_updates
    assert body["updated"][0]["id"] == created[2]
    assert all(entry["id"] == created[3] for entry in body["updated"][1:])
    got = {record["id"]: record for record in await records(api, world.admin, entity)}
    assert set(got) == set(created.values())
    assert got[created[2]]["tags"] == ["c"]
    assert got[created[3]]["tags"] == ["e"]


@pytest.mark.parametrize("entity", KEYED, ids=ids(KEYED))
async def test_a_record_changed_by_batch_after_batch_keeps_every_change(
    api: httpx.AsyncClient, world: World, entity: Entity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that exists before the upload, and one the upload creates, changed again by
    the next batch, by the one after and by one further on: each change lands on what the
    batches before wrote (custom fields merged, the last tags)."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    await define(api, world.admin, entity, "score", "number")
    await define(api, world.admin, entity, "tier", "text")
    old, new = entity.key_value(), entity.key_value()
    body = {entity.required: "Before", entity.key: old, "custom_fields": {"tier": "gold"}}
    if entity.key == entity.required:
        body = {entity.key: old, "custom_fields": {"tier": "gold"}}
    created = await api.post(entity.url, json=body, headers=world.admin.headers)
    assert created.status_code == 201, created.text
    old_id = created.json()["id"]
    if entity.key == entity.required:
        header = f"{entity.key},tags,cf_score,cf_tier"
        first = f"{new},n1,,bronze"
    else:
        header = f"{entity.required},{entity.key},tags,cf_score,cf_tier"
        first = f"New,{new},n1,,bronze"

    def change(key: str, tags: str, score: str, tier: str) -> str:
        cells = [key, tags, score, tier]
        return ",".join(cells if entity.key == entity.required else ["", *cells])

    lines = [
        change(old, "a", "1", ""),  # batch 1 (rows 2, 3)
        first,
        change(old.upper(), "b", "", ""),  # batch 2: both again
        change(new, "", "7", ""),
        change(old, "", "3", "silver"),  # batch 3: both again
        change(new.upper(), "c", "", ""),
        first.replace(new, entity.key_value()),  # batch 4: neither
        first.replace(new, entity.key_value()),
        change(old, "d", "", ""),  # batch 5: both, two batches on
        change(new, "", "", "iron"),
    ]
    answer = report(await upload(api, world.admin, entity, csv_text(header, *lines)))
    assert answer["errors"] == []
    assert rows(answer["created"]) == [3, 8, 9]
    new_id = answer["created"][0]["id"]
    updated = {entry["row"]: entry["id"] for entry in answer["updated"]}
    assert updated == {
        2: old_id,
        4: old_id,
        6: old_id,
        10: old_id,
        5: new_id,
        7: new_id,
        11: new_id,
    }
    got = {record["id"]: record for record in await records(api, world.admin, entity)}
    assert got[old_id]["tags"] == ["d"]
    assert got[old_id]["custom_fields"] == {"score": 3, "tier": "silver"}
    assert got[new_id]["tags"] == ["c"]
    assert got[new_id]["custom_fields"] == {"score": 7, "tier": "iron"}


async def test_a_later_batch_that_is_not_utf8_leaves_nothing_written(
    api: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is refused while an earlier batch may still be being written: a 400, and the
    upload's earlier batches are not kept."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    entity = ENTITIES[0]
    good = [f"Lead {n},{entity.key_value()}" for n in range(6)]
    content = csv_text("title,email", *good) + "Caf\xe9,x@example.com\n".encode("latin-1")
    response = await upload(api, world.admin, entity, content)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == {"file": "The file is not UTF-8 text."}
    assert await records(api, world.admin, entity) == []


BROKEN_QUOTING = {
    # A quote opened and never closed: the rest of the file would be one cell.
    "unclosed": (
        [
            "title,email,description",
            "Good,g@x.test,fine",
            'Broken "quote,b@x.test,"unterminated',
            "Another,a@x.test,x",
        ],
        "the quote opened on line 3 is never closed",
    ),
    # A quote inside a cell that does not start with one.
    "stray": (
        ["title,email", "Good,g@x.test", 'Bro"ken,b@x.test', "Another,a@x.test"],
        "line 3: a quote inside a cell",
    ),
    # Text after the closing quote of a cell, on the second line of a record.
    "after closing": (
        ["title,email,description", "Good,g@x.test,fine", 'Two,t@x.test,"one', 'two"x', "A,a@x.t,"],
        "line 4: a quoted cell must end at its closing quote",
    ),
}


@pytest.mark.parametrize("case", BROKEN_QUOTING)
async def test_broken_quoting_refuses_the_whole_file_naming_the_line(
    api: httpx.AsyncClient, world: World, case: str
) -> None:
    lines, words = BROKEN_QUOTING[case]
    for end in ("\n", "\r\n"):
        response = await upload(api, world.admin, ENTITIES[0], csv_text(*lines, end=end))
        assert response.status_code == 400, response.text
        (reason,) = response.json()["errors"].values()
        assert set(response.json()["errors"]) == {"file"}
        assert reason.startswith("The file is not valid CSV: ") and words in reason, reason
    assert await records(api, world.admin, ENTITIES[0]) == []
    assert await records(api, world.other, ENTITIES[0]) == []


async def test_quotes_where_csv_allows_them_are_read(api: httpx.AsyncClient, world: World) -> None:
    content = csv_text(
        "title,email,description",
        '"Say ""hi""",q1@x.test,"one, two"',
        'Plain,q2@x.test,"over',
        'two lines"',
        '"Q3",q3@x.test,""""',
        "Ends,q4@x.test,x",
    )
    body = report(await upload(api, world.admin, ENTITIES[0], content))
    assert rows(body["created"]) == [2, 3, 4, 5] and body["errors"] == []
    got = {lead["email"]: lead for lead in await records(api, world.admin, ENTITIES[0])}
    assert got["q1@x.test"]["title"] == 'Say "hi"'
    assert got["q1@x.test"]["description"] == "one, two"
    assert got["q2@x.test"]["description"] == "over\ntwo lines"
    assert got["q3@x.test"]["description"] == '"'


async def test_an_id_column_matches_by_id_before_the_natural_key(
    api: httpx.AsyncClient, world: World
) -> None:
    leads = ENTITIES[0]
    made = {}
    for name, body in (
        ("ann", {"title": "Ann", "email": "ann@x.test"}),
        ("bob", {"title": "Bob", "email": "bob@x.test"}),
        ("nokey", {"title": "No email"}),
        ("theirs", {"title": "User's", "assigned_to": world.user.profile_id}),
        ("gone", {"title": "Gone"}),
    ):
        created = await api.post(leads.url, json=body, headers=world.admin.headers)
        assert created.status_code == 201, created.text
        made[name] = created.json()
    gone = await api.delete(f"{leads.url}{made['gone']['id']}/", headers=world.admin.headers)
    assert gone.status_code == 204
    elsewhere = await api.post(leads.url, json={"title": "Other's"}, headers=world.other.headers)
    assert elsewhere.status_code == 201
    other_id = elsewhere.json()["id"]
    content = csv_text(
        "ID,title,email,number,created_at,updated_at,created_by",
        f"{made['nokey']['id']},Renamed,,7,never,then,nobody",  # by id: no key needed
        f"{made['ann']['id']},Ann again,bob@x.test,,,,",  # another lead's email: refused
        f"{made['ann']['id']},Ann Two,ann2@x.test,,,,",  # the id wins over the old email
        f"{uuid.uuid4()},Nobody,,,,,",
        f"{made['gone']['id']},Deleted,,,,,",
        f"{other_id},Another org's,,,,,",
        "not-an-id,Bad,,,,,",
        ",Ann by email,ANN2@x.test,,,,",  # the email the row above wrote
    )
    body = report(await upload(api, world.admin, leads, content))
    assert body["created"] == []
    assert body["updated"] == [
        {"row": 2, "id": made["nokey"]["id"]},
        {"row": 4, "id": made["ann"]["id"]},
        {"row": 9, "id": made["ann"]["id"]},
    ]
    no_such = "No lead with this id in this org."
    assert body["errors"] == [
        {"row": 3, "errors": {"email": "A lead with this email already exists."}},
        {"row": 5, "errors": {"id": no_such}},
        {"row": 6, "errors": {"id": no_such}},
        {"row": 7, "errors": {"id": no_such}},
        {"row": 8, "errors": {"id": no_such}},
    ]
    got = {lead["id"]: lead for lead in await records(api, world.admin, leads)}
    assert got[made["nokey"]["id"]]["title"] == "Renamed"
    assert got[made["nokey"]["id"]]["created_at"] == made["nokey"]["created_at"]
    assert (got[made["ann"]["id"]]["title"], got[made["ann"]["id"]]["email"]) == (
        "Ann by email",
        "ANN2@x.test",
    )
    assert got[made["bob"]["id"]] == made["bob"]
    theirs = await api.get(f"{leads.url}{other_id}/", headers=world.other.headers)
    assert theirs.json()["title"] == "Other's"
    await assert_unseen_by_other_org(api, world.other, leads, made["ann"]["id"])

    # A user updates by id only what it sees.
    content = csv_text("id,title", f"{made['theirs']['id']},Mine now", f"{made['bob']['id']},No")
    body = report(await upload(api, world.user, leads, content))
    assert body["updated"] == [{"row": 2, "id": made["theirs"]["id"]}]
    invisible = "A record with this id exists, but it is neither yours nor assigned to you."
    assert body["errors"] == [{"row": 3, "errors": {"id": invisible}}]


@given(st.lists(st.lists(st.text(), min_size=1, max_size=4), min_size=1, max_size=5))
def test_what_a_csv_writer_writes_reads_back_strictly(rows: list[list[str]]) -> None:
    """The strict reading refuses no file that CSV's own quoting wrote, and an export's cell
    marks give every text back."""
    out = io.StringIO()
    csv.writer(out).writerows([[csvfile.neutralised(cell) for cell in row] for row in rows])
    stream = io.StringIO(out.getvalue(), newline="")
    read = [[csvfile.typed_back(cell) for cell in row] for row in csvfile.read_records(stream)]
    assert read == rows
