"""Case-insensitive means for every letter, not only ASCII, on both databases."""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from crm.db import folded
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

    with pytest.raises(IntegrityError, match="uq_leads_org_id_email"):
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
