"""Tenant isolation, route by route (CONTRACT §2): every route of the app that takes an id is
called, with each of its methods, as another org's admin (404, as for a record that never
existed) and as the org's plain user where the record is invisible to it or the route is for
admins (403); the record is unchanged afterwards. The matrix is compared with the app's route
table, so a new route with an id fails here until it has its case.

Ids and names of another org's rows inside bodies and CSV cells are refused too; the cases
that tests/test_links.py, test_entities.py, test_convert.py and test_upload.py already make
(a contact's `account`, an opportunity's `contacts`, a task's `lead` and `contact`,
`assigned_to`, convert's `account_id`, an account's name in a cell) are not repeated here."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, routing

from crm.app import ENTITIES
from tests.conftest import Identity, World, add_member, register
from tests.leads_support import create_lead, refused
from tests.members_support import invite
from tests.test_lead_sources_v2 import assert_base_error

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Case:
    """A route with an id: how org A makes its record, and what each method sends and
    answers (`user`: the plain user's status; None where it may legitimately read it)."""

    make: Callable[[httpx.AsyncClient, World], Awaitable[str]]
    # Each method: the body it sends, and the plain user's status.
    methods: dict[str, tuple[Any, int | None]]
    # What org A's admin reads of the record, to prove it unchanged.
    read: Callable[[httpx.AsyncClient, World, str], Awaitable[Any]]
    v2: bool = False


async def post_json(api: httpx.AsyncClient, who: Identity, path: str, body: Any) -> Any:
    response = await api.post(path, json=body, headers=who.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def get_json(api: httpx.AsyncClient, who: Identity, path: str) -> Any:
    response = await api.get(path, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def record_case(entity: str, body: dict[str, Any]) -> dict[str, Case]:
    async def make(api: httpx.AsyncClient, world: World) -> str:
        # A name of its own: an account's is unique in the org.
        unique = {key: f"{value} {uuid.uuid4().hex[:8]}" for key, value in body.items()}
        created = await post_json(api, world.admin, f"/api/{entity}/", unique)
        return str(created["id"])

    async def read(api: httpx.AsyncClient, world: World, record_id: str) -> Any:
        return await get_json(api, world.admin, f"/api/{entity}/{record_id}/")

    detail = {
        "GET": (None, 403),
        "PATCH": (body, 403),
        "PUT": (body, 403),
        "DELETE": (None, 403),
    }
    cases = {
        f"/api/{entity}/{{record_id}}/": Case(make, detail, read),
        # Restore is for admins: the user's 403 comes before the record is looked at.
        f"/api/{entity}/{{record_id}}/restore/": Case(make, {"POST": (None, 403)}, read),
    }
    if entity == "leads":
        convert = {"POST": ({"account_name": "Theirs"}, 403)}
        cases["/api/leads/{record_id}/convert/"] = Case(make, convert, read)
    return cases


async def make_token(api: httpx.AsyncClient, world: World) -> str:
    created = await post_json(api, world.admin, "/api/auth/tokens/", {"name": "ci"})
    return str(created["id"])


async def read_tokens(api: httpx.AsyncClient, world: World, token_id: str) -> Any:
    return await get_json(api, world.admin, "/api/auth/tokens/")


async def make_member(api: httpx.AsyncClient, world: World) -> str:
    return (await add_member(api, world.admin, "user")).profile_id


async def read_members(api: httpx.AsyncClient, world: World, profile_id: str) -> Any:
    return await get_json(api, world.admin, "/api/users/")


async def make_invitation(api: httpx.AsyncClient, world: World) -> str:
    """Org A's invitation of a user of a third org: neither the other org's admin nor
    org A's user may answer it."""
    invitee = await register(api, "Invitee")
    return await invite(api, world.admin, invitee.email)


NOBODY = "00000000-0000-4000-8000-000000000000"


FIELD = {"entity": "lead", "key": "tier", "label": "Tier", "type": "text"}


async def make_field(api: httpx.AsyncClient, world: World) -> str:
    return str((await post_json(api, world.admin, "/api/custom-fields/", FIELD))["id"])


async def read_field(api: httpx.AsyncClient, world: World, field_id: str) -> Any:
    return await get_json(api, world.admin, f"/api/custom-fields/{field_id}/")


async def make_source(api: httpx.AsyncClient, world: World) -> str:
    created = await post_json(api, world.admin, "/v2/lead_sources", {"data": {"name": "Fair"}})
    return str(created["data"]["id"])


async def read_source(api: httpx.AsyncClient, world: World, source_id: str) -> Any:
    return await get_json(api, world.admin, f"/v2/lead_sources/{source_id}")


# A valid body of each entity: its one required field.
MINIMAL = {
    "leads": {"title": "Ours"},
    "contacts": {"first_name": "Ours"},
    "accounts": {"name": "Ours"},
    "opportunities": {"name": "Ours"},
    "tasks": {"title": "Ours"},
}
MATRIX: dict[str, Case] = {
    # Only the caller's own tokens: anyone else's id is unknown, to the user as well.
    "/api/auth/tokens/{token_id}/": Case(make_token, {"DELETE": (None, 404)}, read_tokens),
    "/api/users/{profile_id}/": Case(
        make_member, {"PATCH": ({"role": "admin"}, 403), "DELETE": (None, 403)}, read_members
    ),
    "/api/users/{profile_id}/reassign/": Case(
        make_member, {"POST": ({"to": NOBODY}, 403)}, read_members
    ),
    "/api/auth/invitations/{invitation_id}/accept/": Case(
        make_invitation, {"POST": (None, 404)}, read_members
    ),
    "/api/auth/invitations/{invitation_id}/decline/": Case(
        make_invitation, {"POST": (None, 404)}, read_members
    ),
    "/api/custom-fields/{field_id}/": Case(
        make_field,
        {"GET": (None, None), "PATCH": ({"label": "Theirs"}, 403), "DELETE": (None, 403)},
        read_field,
    ),
    "/v2/lead_sources/{source_id}": Case(
        make_source,
        {"GET": (None, None), "PUT": ({"data": {"name": "Theirs"}}, 403), "DELETE": (None, 403)},
        read_source,
        v2=True,
    ),
}
for _spec in ENTITIES:
    MATRIX.update(record_case(_spec.name, MINIMAL[_spec.name]))


def routes_with_an_id(app: FastAPI) -> dict[str, set[str]]:
    """Each path template of the app with a path parameter, and its methods."""
    found: dict[str, set[str]] = {}
    for route in routing.iter_route_contexts(app.routes):
        if "{" in route.path:
            found.setdefault(route.path, set()).update(route.methods or ())
    return found


def assert_refused(response: httpx.Response, status: int, v2: bool) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == status, (where, response.text)
    if v2:
        assert_base_error(response, status)
    else:
        refused(response, status)


def test_the_matrix_covers_every_route_with_an_id(app: FastAPI) -> None:
    table = routes_with_an_id(app)
    assert {path: set(case.methods) for path, case in MATRIX.items()} == table
    assert len(table) == 7 + 2 * len(ENTITIES) + 1


async def test_no_route_with_an_id_reaches_another_orgs_or_an_invisible_record(
    api: httpx.AsyncClient, app: FastAPI, world: World
) -> None:
    table = routes_with_an_id(app)
    for template, case in MATRIX.items():
        record_id = await case.make(api, world)
        before = await case.read(api, world, record_id)
        path = template.replace(template[template.index("{") : template.index("}") + 1], record_id)
        for method in METHODS:
            if method not in table[template]:
                # Not a method of the route: 405 whoever asks, never a way in.
                answer = await api.request(method, path, json={}, headers=world.other.headers)
                assert_refused(answer, 405, case.v2)
                continue
            body, user_status = case.methods[method]
            answer = await api.request(method, path, json=body, headers=world.other.headers)
            assert_refused(answer, 404, case.v2)
            if user_status is not None:
                answer = await api.request(method, path, json=body, headers=world.user.headers)
                assert_refused(answer, user_status, case.v2)
        assert await case.read(api, world, record_id) == before, template


async def test_a_deleted_record_is_not_another_orgs_to_restore(
    api: httpx.AsyncClient, world: World
) -> None:
    """Restore reaches soft-deleted rows, which no other route does: scoped all the same."""
    for spec in ENTITIES:
        url = f"/api/{spec.name}/"
        created = await post_json(api, world.admin, url, MINIMAL[spec.name])
        detail = f"{url}{created['id']}/"
        assert (await api.delete(detail, headers=world.admin.headers)).status_code == 204
        refused(await api.post(f"{detail}restore/", headers=world.other.headers), 404)
        refused(await api.post(f"{detail}restore/", headers=world.user.headers), 403)
        refused(await api.get(detail, headers=world.admin.headers), 404)


async def test_ids_and_names_of_another_org_in_bodies_are_400_naming_the_field(
    api: httpx.AsyncClient, world: World
) -> None:
    theirs = await post_json(api, world.other, "/api/opportunities/", {"name": "Theirs"})
    their_account = await post_json(api, world.other, "/api/accounts/", {"name": "Theirs"})
    await post_json(api, world.other, "/v2/lead_sources", {"data": {"name": "Their fair"}})
    mine = await post_json(api, world.admin, "/api/tasks/", {"title": "Mine"})
    cases = [
        ("POST", "/api/tasks/", {"title": "A", "opportunity": theirs["id"]}, "opportunity"),
        ("PATCH", f"/api/tasks/{mine['id']}/", {"opportunity": theirs["id"]}, "opportunity"),
        ("POST", "/api/tasks/", {"title": "A", "account": their_account["id"]}, "account"),
        ("POST", "/api/leads/", {"title": "A", "source": "Their fair"}, "source"),
        ("POST", "/api/opportunities/", {"name": "A", "source": "Their fair"}, "source"),
    ]
    for method, path, body, field in cases:
        answer = await api.request(method, path, json=body, headers=world.admin.headers)
        refused(answer, 400, field)
    for entity in ("leads", "opportunities"):
        assert (await get_json(api, world.admin, f"/api/{entity}/"))["count"] == 0
    assert (await get_json(api, world.admin, f"/api/tasks/{mine['id']}/"))["opportunity"] is None


async def test_ids_and_names_of_another_org_in_csv_cells_are_row_errors(
    api: httpx.AsyncClient, world: World
) -> None:
    other = world.other
    account = await post_json(api, other, "/api/accounts/", {"name": "Globex"})
    contact = await post_json(api, other, "/api/contacts/", {"first_name": "T", "email": "t@x.io"})
    opportunity = await post_json(api, other, "/api/opportunities/", {"name": "Theirs"})
    lead = await create_lead(api, other, email="l@x.io")
    await post_json(api, other, "/v2/lead_sources", {"data": {"name": "Their fair"}})
    uploads = {
        "leads": ("title,assigned_to,source", [f"A,{other.email},", "B,,Their fair"]),
        "contacts": ("first_name,account", [f"A,{account['id']}", "B,Globex"]),
        "opportunities": (
            "name,contacts,account,source",
            [f"A,{contact['id']},,", "B,t@x.io,,", f"C,,{account['id']},", "D,,,Their fair"],
        ),
        "tasks": (
            "title,lead,contact,account,opportunity,assigned_to",
            [
                f"A,{lead['id']},,,,",
                "B,l@x.io,,,,",
                f"C,,{contact['id']},,,",
                f"D,,,{account['id']},,",
                f"E,,,,{opportunity['id']},",
                f"F,,,,,{other.profile_id}",
            ],
        ),
    }
    for entity, (header, lines) in uploads.items():
        content = "\n".join([header, *lines]).encode()
        response = await api.post(
            f"/api/{entity}/upload/",
            files={"file": ("import.csv", content, "text/csv")},
            headers=world.admin.headers,
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["created"] == report["updated"] == [], (entity, report)
        columns = header.split(",")
        expected = [
            {"row": row, "errors": {columns[next(i for i, v in enumerate(cells) if i and v)]}}
            for row, cells in enumerate((line.split(",") for line in lines), start=2)
        ]
        got = [{"row": e["row"], "errors": set(e["errors"])} for e in report["errors"]]
        assert got == expected, (entity, report)
        assert (await get_json(api, world.admin, f"/api/{entity}/"))["count"] == 0
