"""Case-insensitive means for every letter, not only ASCII, on both databases."""

import asyncio
import shutil
import sqlite3
import subprocess
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from crm.db import async_url, folded
from crm.leads.models import Lead
from tests.conftest import World


async def test_source_names_fold_every_letter(api: httpx.AsyncClient, world: World) -> None:
    first = await api.post(
        "/v2/lead_sources", json={"data": {"name": "Über"}}, headers=world.admin.headers
    )
    assert first.status_code == 200
    duplicate = await api.post(
        "/v2/lead_sources", json={"data": {"name": "über"}}, headers=world.admin.headers
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["error"]["field"] == "name"
    lead = await api.post(
        "/api/leads/", json={"title": "Fair", "source": "ÜBER"}, headers=world.admin.headers
    )
    assert lead.status_code == 201
    assert lead.json()["source"] == "Über"
    # Another org has no such source.
    theirs = await api.post(
        "/api/leads/", json={"title": "Fair", "source": "Über"}, headers=world.other.headers
    )
    assert theirs.status_code == 400
    assert "source" in theirs.json()["errors"]


async def test_lead_email_and_search_fold_every_letter(
    api: httpx.AsyncClient, world: World
) -> None:
    created = await api.post(
        "/api/leads/",
        json={"title": "ÉCOLE normale", "email": "Ünï@example.com"},
        headers=world.admin.headers,
    )
    assert created.status_code == 201
    duplicate = await api.post(
        "/api/leads/",
        json={"title": "Other", "email": "ünï@EXAMPLE.com"},
        headers=world.admin.headers,
    )
    assert duplicate.status_code == 400
    assert "email" in duplicate.json()["errors"]
    found = await api.get("/api/leads/", params={"search": "école"}, headers=world.admin.headers)
    assert [lead["id"] for lead in found.json()["results"]] == [created.json()["id"]]
    elsewhere = await api.get(
        "/api/leads/", params={"search": "école"}, headers=world.other.headers
    )
    assert elsewhere.json()["count"] == 0


# --- one folding on both databases: Unicode's full lowercase mapping (str.lower) -------

# (first email, second email, whether they are the same address once folded)
EMAIL_PAIRS = [
    ("İnfo@example.com", "i̇nfo@example.com", True),  # İ folds to i + combining dot above
    ("İnfo@example.com", "info@example.com", False),  # … so not to a plain i
    ("STRAẞE@example.com", "straße@example.com", True),  # capital sharp s is ß
    ("strasse@example.com", "straße@example.com", False),  # ß is no "ss" (that is casefold)
    ("ΟΔΟΣ@example.com", "οδος@example.com", True),  # a final capital sigma is ς
    ("ΟΔΟΣ@example.com", "οδοσ@example.com", False),
    ("\u212aelvin@example.com", "kelvin@example.com", True),  # the Kelvin sign is a K
    ("ǅemal@example.com", "ǆemal@example.com", True),  # title-case digraph
]


async def test_lead_email_uniqueness_folds_as_unicode_lowercase(
    api: httpx.AsyncClient, world: World
) -> None:
    for number, (first, second, same) in enumerate(EMAIL_PAIRS):
        assert (first.lower() == second.lower()) is same  # the folding is Python's str.lower
        # A domain of its own for each pair, so that pairs do not meet.
        first, second = (email.replace("@", f"@{number}.") for email in (first, second))
        created = await api.post(
            "/api/leads/", json={"title": "One", "email": first}, headers=world.admin.headers
        )
        assert created.status_code == 201, created.text
        again = await api.post(
            "/api/leads/", json={"title": "Two", "email": second}, headers=world.admin.headers
        )
        if same:
            assert again.status_code == 400, (first, second, again.text)
            assert set(again.json()["errors"]) == {"email"}
        else:
            assert again.status_code == 201, (first, second, again.text)
        # Unique per org only: the other org takes it.
        theirs = await api.post(
            "/api/leads/", json={"title": "Theirs", "email": first}, headers=world.other.headers
        )
        assert theirs.status_code == 201, theirs.text
    listed = await api.get("/api/leads/", headers=world.other.headers)
    assert {lead["title"] for lead in listed.json()["results"]} == {"Theirs"}


async def test_the_unique_index_folds_as_the_check_does(
    app: FastAPI, api: httpx.AsyncClient, world: World
) -> None:
    """A write that skips the check (as a concurrent one may) meets the index, which folds
    the same way."""
    created = await api.post(
        "/api/leads/",
        json={"title": "One", "email": "İnfo@example.com"},
        headers=world.admin.headers,
    )
    other = await api.post(
        "/api/leads/", json={"title": "Two", "email": "b@example.com"}, headers=world.admin.headers
    )
    assert created.status_code == other.status_code == 201
    lead_id = uuid.UUID(other.json()["id"])

    async def set_email(email: str) -> None:
        async with app.state.db.write_sessionmaker() as session:
            await session.execute(update(Lead).where(Lead.id == lead_id).values(email=email))
            await session.commit()

    # PostgreSQL names the index, SQLite the columns of it.
    with pytest.raises(IntegrityError, match=r"uq_leads_org_id_email|leads\.org_id, leads\.email"):
        await set_email("i̇nfo@example.com")
    await set_email("info@example.com")
    got = await api.get(f"/api/leads/{lead_id}/", headers=world.admin.headers)
    assert got.json()["email"] == "info@example.com"
    assert (await api.get(f"/api/leads/{lead_id}/", headers=world.other.headers)).status_code == 404


SEARCHED_TITLES = ("İSTANBUL fair", "istanbul plain", "ΟΔΟΣ ΑΘΗΝΑ", "GROẞE Messe", "\u212aELVIN")
# (term, the titles it finds)
SEARCHES = [
    ("i̇stanbul", {"İSTANBUL fair"}),
    ("İstanbul", {"İSTANBUL fair"}),
    ("istanbul", {"istanbul plain"}),  # a dotted capital I keeps its dot, as é its accent
    ("οδος", {"ΟΔΟΣ ΑΘΗΝΑ"}),
    ("ΟΔΟΣ", {"ΟΔΟΣ ΑΘΗΝΑ"}),
    ("große", {"GROẞE Messe"}),
    ("kelvin", {"\u212aELVIN"}),
]


async def test_search_folds_as_unicode_lowercase(api: httpx.AsyncClient, world: World) -> None:
    for title in SEARCHED_TITLES:
        created = await api.post("/api/leads/", json={"title": title}, headers=world.admin.headers)
        assert created.status_code == 201, created.text
    for term, titles in SEARCHES:
        assert titles == {title for title in SEARCHED_TITLES if term.lower() in title.lower()}
        found = await api.get("/api/leads/", params={"search": term}, headers=world.admin.headers)
        assert {lead["title"] for lead in found.json()["results"]} == titles, term
        theirs = await api.get("/api/leads/", params={"search": term}, headers=world.other.headers)
        assert theirs.json()["count"] == 0


async def test_source_names_fold_as_unicode_lowercase(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    first = await api.post("/v2/lead_sources", json={"data": {"name": "İzmir"}}, headers=headers)
    assert first.status_code == 200, first.text
    same = await api.post("/v2/lead_sources", json={"data": {"name": "i̇zmir"}}, headers=headers)
    assert same.status_code == 422
    assert same.json()["errors"][0]["error"]["field"] == "name"
    plain = await api.post("/v2/lead_sources", json={"data": {"name": "izmir"}}, headers=headers)
    assert plain.status_code == 200, plain.text
    lead = await api.post("/api/leads/", json={"title": "Fair", "source": "İZMIR"}, headers=headers)
    assert lead.status_code == 201, lead.text
    assert lead.json()["source"] == "İzmir"
    theirs = await api.get("/v2/lead_sources", headers=world.other.headers)
    assert {"İzmir", "izmir"}.isdisjoint(item["data"]["name"] for item in theirs.json()["items"])


async def test_the_folding_is_python_lowercase_for_every_cased_letter(app: FastAPI) -> None:
    """On PostgreSQL (ICU) as on SQLite (Python): every code point that has a case."""
    letters = [
        chr(code)
        for code in range(0x20000)  # the last cased letters are Adlam's, U+1E9xx
        if not 0xD800 <= code <= 0xDFFF and chr(code).lower() != chr(code).upper()
    ]
    text = "\n".join(letters)
    async with app.state.db.sessionmaker() as session:
        assert await session.scalar(select(folded(text))) == text.lower()


# --- a file another SQLite reads: the stored folded values, not the app's lower() ------

# Each case-insensitive unique rule: where it is written, a first body, a second body that
# differs from it only in case, and the field a refusal names.
UNIQUE_RULES = [
    ("/api/leads/", {"title": "One", "email": "ÉMILE@x.test"}, {"email": "émile@X.TEST"}),
    ("/api/contacts/", {"first_name": "One", "email": "İNFO@x.test"}, {"email": "i̇nfo@x.test"}),
    ("/api/accounts/", {"name": "GROẞE Handel"}, {"name": "große HANDEL"}),
]


def second_body(url: str, body: dict[str, str]) -> dict[str, str]:
    required = {"/api/leads/": {"title": "Two"}, "/api/contacts/": {"first_name": "Two"}}
    return {**required.get(url, {}), **body}


async def reindex_without_the_app(database_url: str) -> None:
    """What an administrator's own tool does to the file or server: check it (SQLite's
    integrity check) and rebuild every index, without the app's functions."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = str(url.database)
        plain = sqlite3.connect(path)
        try:
            assert plain.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            plain.execute("REINDEX")
            plain.commit()
            assert plain.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            plain.close()
        if shutil.which("sqlite3"):  # the command-line tool, where it is installed
            checked = await asyncio.to_thread(
                subprocess.run,
                ["sqlite3", path, "PRAGMA integrity_check"],
                capture_output=True,
                text=True,
            )
            assert checked.stdout.strip() == "ok", checked.stdout + checked.stderr
        return
    engine = create_async_engine(async_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for table in ("leads", "contacts", "accounts", "lead_sources"):
                await conn.execute(text(f"REINDEX TABLE {table}"))
    finally:
        await engine.dispose()


async def test_unique_rules_hold_after_a_reindex_by_another_tool(
    api: httpx.AsyncClient, world: World, database_url: str
) -> None:
    """Every case-insensitive unique rule, its rows written by a JSON create, an update and
    an upload, still refuses a value differing only in case after the file (or server) was
    checked and reindexed by a tool that does not have the app's lower()."""
    headers = world.admin.headers
    for url, first, _ in UNIQUE_RULES:
        created = await api.post(url, json=first, headers=headers)
        assert created.status_code == 201, created.text
    source = await api.post("/v2/lead_sources", json={"data": {"name": "ẞÜD"}}, headers=headers)
    assert source.status_code == 200, source.text
    changed = await api.post("/api/leads/", json={"title": "Changed"}, headers=headers)
    patched = await api.patch(
        f"/api/leads/{changed.json()['id']}/", json={"email": "ÅSA@x.test"}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    uploaded = await api.post(
        "/api/leads/upload/",
        files={"file": ("leads.csv", "title,email\nUploaded,ZOË@x.test\n".encode(), "text/csv")},
        headers=headers,
    )
    assert uploaded.status_code == 200 and uploaded.json()["created"], uploaded.text

    await reindex_without_the_app(database_url)

    rules = [*UNIQUE_RULES]
    rules += [
        ("/api/leads/", {}, {"email": "åsa@x.test"}),
        ("/api/leads/", {}, {"email": "zoë@x.test"}),
    ]
    for url, _, second in rules:
        again = await api.post(url, json=second_body(url, second), headers=headers)
        assert again.status_code == 400, (url, again.text)
        assert set(again.json()["errors"]) == set(second), again.text
        # Unique per org only: the other org takes it.
        theirs = await api.post(url, json=second_body(url, second), headers=world.other.headers)
        assert theirs.status_code == 201, theirs.text
    duplicate = await api.post("/v2/lead_sources", json={"data": {"name": "ßüd"}}, headers=headers)
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["error"]["field"] == "name"
