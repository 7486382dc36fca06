"""What a person reads when a body is refused (CONTRACT §6): our own sentence naming the
rule for every kind of problem, never the validation library's wording, in both dialects;
every problem of a body in one answer; one email rule; amounts held exactly."""

import uuid
from typing import Any, get_args

import httpx
import pytest
from pydantic_core.core_schema import ErrorType

from tests.conftest import PASSWORD, World, unique_email
from tests.entities_support import (
    BY_NAME,
    LEADS,
    OPPORTUNITIES,
    TASKS,
    assert_invisible_to_other_org,
    create,
    listed_ids,
    read,
)
from tests.leads_support import CUSTOM_FIELDS, define_field, refused

# The library's own phrasing: none of it may reach a body.
LIBRARY_WORDING = (
    "Input should",
    "String should",
    "List should",
    "Value error",
    "value error",
    "pydantic",
    "Field required",
    "Extra inputs",
    "should have",
    "valid dictionary",
    "invalid character",
)

EMAIL = "Enter a valid email address, like name@example.com."
UUID = "Must be a UUID."
LEAD_STATUSES = "Must be one of: new, assigned, in_process, qualified, recycled, closed."


def assert_ours(response: httpx.Response) -> None:
    for wording in LIBRARY_WORDING:
        assert wording not in response.text, response.text


def raw_json(text: str, headers: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments sending `text` as a JSON body exactly as written (numbers too)."""
    return {"content": text.encode(), "headers": {**headers, "Content-Type": "application/json"}}


def refused_with(response: httpx.Response, status: int, field: str, message: str) -> None:
    assert_ours(response)
    assert response.status_code == status, response.text
    assert response.json()["errors"].get(field) == message, response.text


# --- Every kind of problem, through HTTP ------------------------------------------------

# (the library's error type, method, path, body, the field named, our message). `{lead}` in
# a path is a lead of the admin's org.
CASES: list[tuple[str, str, str, Any, str, str]] = [
    ("missing", "POST", "/api/leads/", {}, "title", "This field is required."),
    ("missing", "POST", "/api/users/", None, "detail", "The body must be a JSON object."),
    (
        "model_attributes_type",
        "POST",
        "/api/users/",
        [1],
        "detail",
        "The body must be a JSON object.",
    ),
    (
        "extra_forbidden",
        "POST",
        "/api/users/",
        {"email": "x@example.com", "password": PASSWORD, "role": "user", "colour": "red"},
        "colour",
        "Unknown field.",
    ),
    ("string_type", "POST", "/api/leads/", {"title": 5}, "title", "Must be a string."),
    (
        "string_too_short",
        "POST",
        "/api/leads/",
        {"title": "   "},
        "title",
        "This field may not be blank.",
    ),
    (
        "string_too_short",
        "PATCH",
        "/api/leads/{lead}/",
        {"title": ""},
        "title",
        "This field may not be blank.",
    ),
    (
        "string_too_short",
        "POST",
        "/api/auth/register/",
        {"org_name": "Acme", "email": "a@example.com", "password": "short"},
        "password",
        "At least 8 characters.",
    ),
    (
        "string_too_short",
        "POST",
        "/api/auth/register/",
        {"org_name": "   ", "email": "a@example.com", "password": PASSWORD},
        "org_name",
        "This field may not be blank.",
    ),
    (
        "string_too_short",
        "POST",
        "/api/auth/tokens/",
        {"name": " \t "},
        "name",
        "This field may not be blank.",
    ),
    (
        "string_too_short",
        "POST",
        "/api/leads/{lead}/convert/",
        {"account_name": "   "},
        "account_name",
        "This field may not be blank.",
    ),
    (
        "string_too_long",
        "POST",
        "/api/leads/",
        {"title": "x" * 256},
        "title",
        "At most 255 characters.",
    ),
    (
        "literal_error",
        "POST",
        "/api/leads/",
        {"title": "t", "status": "won"},
        "status",
        LEAD_STATUSES,
    ),
    (
        "literal_error",
        "PATCH",
        "/api/leads/{lead}/",
        {"status": "Qualified"},
        "status",
        LEAD_STATUSES,
    ),
    (
        "value_error",
        "POST",
        "/api/leads/",
        {"title": "t", "status": "converted"},
        "status",
        "'converted' is set only by converting the lead.",
    ),
    (
        "enum",
        "POST",
        "/api/users/",
        {"email": "x@example.com", "password": PASSWORD, "role": "boss"},
        "role",
        "Must be one of: admin, user.",
    ),
    (
        "enum",
        "POST",
        "/api/custom-fields/",
        {"entity": "lead", "key": "k", "label": "K", "type": "colour"},
        "type",
        "Must be one of: text, number, date, checkbox, dropdown.",
    ),
    (
        "uuid_parsing",
        "POST",
        "/api/leads/",
        {"title": "t", "assigned_to": "I"},
        "assigned_to",
        UUID,
    ),
    ("uuid_type", "POST", "/api/leads/", {"title": "t", "assigned_to": 5}, "assigned_to", UUID),
    (
        "uuid_parsing",
        "POST",
        "/api/auth/login/",
        {"email": "a@example.com", "password": PASSWORD, "org_id": "nope"},
        "org_id",
        UUID,
    ),
    (
        "uuid_parsing",
        "POST",
        "/api/opportunities/",
        {"name": "n", "contacts": ["I"]},
        "contacts.0",
        UUID,
    ),
    (
        "bool_type",
        "POST",
        "/api/custom-fields/",
        {"entity": "lead", "key": "k", "label": "K", "type": "text", "required": "yes"},
        "required",
        "Must be true or false.",
    ),
    (
        "datetime_from_date_parsing",
        "POST",
        "/api/auth/tokens/",
        {"name": "ci", "expires_at": "tomorrow"},
        "expires_at",
        "Must be an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z.",
    ),
    (
        "datetime_type",
        "POST",
        "/api/auth/tokens/",
        {"name": "ci", "expires_at": [2030]},
        "expires_at",
        "Must be an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z.",
    ),
    ("list_type", "POST", "/api/leads/", {"title": "t", "tags": "vip"}, "tags", "Must be a list."),
    (
        "too_long",
        "POST",
        "/api/leads/",
        {"title": "t", "tags": [str(n) for n in range(101)]},
        "tags",
        "At most 100 items.",
    ),
    (
        "dict_type",
        "POST",
        "/api/leads/",
        {"title": "t", "custom_fields": "x"},
        "custom_fields",
        "Must be an object.",
    ),
    ("value_error", "POST", "/api/leads/", {"title": "t", "email": "jane@acme"}, "email", EMAIL),
    (
        "value_error",
        "POST",
        "/api/users/",
        {"email": "pat@host", "password": PASSWORD, "role": "user"},
        "email",
        EMAIL,
    ),
    (
        "value_error",
        "POST",
        "/api/auth/register/",
        {"org_name": "Acme", "email": "pat@host", "password": PASSWORD},
        "email",
        EMAIL,
    ),
    (
        "value_error",
        "POST",
        "/api/opportunities/",
        {"name": "n", "amount": "100"},
        "amount",
        "Must be a number, e.g. 24000 or 1234.5.",
    ),
]


@pytest.mark.parametrize(
    ("kind", "method", "path", "body", "field", "message"),
    CASES,
    ids=[f"{case[0]}-{case[2]}-{case[4]}" for case in CASES],
)
async def test_every_problem_is_named_in_our_words(
    api: httpx.AsyncClient,
    world: World,
    kind: str,
    method: str,
    path: str,
    body: Any,
    field: str,
    message: str,
) -> None:
    if "{lead}" in path:
        lead = await create(api, world.admin, LEADS)
        path = path.format(lead=lead["id"])
    sent = {} if body is None else {"json": body}
    response = await api.request(method, path, headers=world.admin.headers, **sent)
    refused_with(response, 400, field, message)
    from crm.errors import MESSAGES

    assert kind in MESSAGES


def test_every_error_type_of_the_library_has_our_message() -> None:
    """A new version of the library that adds a kind of error fails here, not in a body."""
    from crm.errors import MESSAGES

    assert set(get_args(ErrorType)) <= set(MESSAGES)
    for message in MESSAGES.values():
        text = message if isinstance(message, str) else message({})
        assert text and text[0].isupper() and text.endswith("."), text


V2_BODIES: list[Any] = [
    {"data": {}},
    {"data": {"name": 5}},
    {"data": {"name": "   "}},
    {"data": {"name": "x" * 300}},
    {"data": {"name": "Web", "resource_type": "deal"}},
    {"data": {"name": "Web", "colour": "red"}},
    {"data": "Web"},
    ["Web"],
    {"data": {"name": "Web"}, "extra": 1},
]


@pytest.mark.parametrize("body", V2_BODIES, ids=[str(n) for n in range(len(V2_BODIES))])
async def test_v2_bodies_are_refused_in_our_words(
    api: httpx.AsyncClient, world: World, body: Any
) -> None:
    response = await api.post("/v2/lead_sources", json=body, headers=world.admin.headers)
    assert response.status_code == 422, response.text
    assert_ours(response)
    for item in response.json()["errors"]:
        error = item["error"]
        assert error["message"] and error["details"].endswith(error["message"])


# --- Every problem of a body in one answer ----------------------------------------------


async def test_a_body_with_many_problems_names_them_all_at_once(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    await define_field(api, world.admin, "score", "number")
    await define_field(api, world.admin, "met", "date")
    body = {
        "title": "   ",
        "email": "jane@acme",
        "status": "won",
        "assigned_to": "I",
        "source": "No such source",
        "colour": "red",
        "created_at": "2026-01-01T00:00:00Z",
        "custom_fields": {"nope": 1, "score": "high", "met": "31/12/2026"},
        "description": 7,
    }
    expected = {
        "title": "This field may not be blank.",
        "email": EMAIL,
        "status": LEAD_STATUSES,
        "assigned_to": UUID,
        "source": "No source 'No such source' in this org.",
        "colour": "Unknown field.",
        "created_at": "This field is set by the server and cannot be written.",
        "custom_fields.nope": "Unknown custom field.",
        "custom_fields.score": "Must be a number.",
        # One sentence for one kind of problem, a custom field's or a field's.
        "custom_fields.met": "Must be an ISO 8601 date, YYYY-MM-DD.",
        "description": "Must be a string.",
    }
    response = await api.post(LEADS.url, json=body, headers=headers)
    assert_ours(response)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == expected
    assert await listed_ids(api, world.admin, LEADS) == []

    lead = await create(api, world.admin, LEADS, title="Kept")
    url = LEADS.detail(lead["id"])
    response = await api.patch(url, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == expected
    assert (await read(api, world.admin, LEADS, lead["id"]))["title"] == "Kept"
    await assert_invisible_to_other_org(api, world.other, LEADS, lead["id"])


async def test_links_and_one_parent_are_reported_with_the_other_problems(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    unknown = str(uuid.uuid4())
    response = await api.post(
        OPPORTUNITIES.url,
        json={"name": "", "account": unknown, "contacts": [unknown], "stage": "won"},
        headers=headers,
    )
    assert_ours(response)
    errors = refused(response, 400, "name", "account", "contacts", "stage")
    assert errors["account"] == f"No account '{unknown}' in this org."

    lead = await create(api, world.admin, LEADS)
    contact = await create(api, world.admin, BY_NAME["contacts"])
    response = await api.post(
        TASKS.url,
        json={"title": "t", "priority": "urgent", "lead": lead["id"], "contact": contact["id"]},
        headers=headers,
    )
    errors = refused(response, 400, "priority", "lead", "contact")
    assert errors["lead"] == "At most one of lead, contact, account, opportunity may be set."
    assert await listed_ids(api, world.admin, TASKS) == []


# --- One email rule -----------------------------------------------------------------------


async def test_one_email_rule_for_records_and_members(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    for wrong in (
        "pat@host",
        "pat",
        "@host.tld",
        "pat@host.",
        "pat@.tld",
        "pat@host..tld",
        "a b@c.d",
    ):
        for path, body in (
            (LEADS.url, {"title": "t", "email": wrong}),
            ("/api/users/", {"email": wrong, "password": PASSWORD, "role": "user"}),
            ("/api/auth/register/", {"org_name": "Acme", "email": wrong, "password": PASSWORD}),
        ):
            response = await api.post(path, json=body, headers=headers)
            refused_with(response, 400, "email", EMAIL)
    member = unique_email("member")
    response = await api.post(
        "/api/users/", json={"email": member, "password": PASSWORD, "role": "user"}, headers=headers
    )
    assert response.status_code == 201, response.text
    lead = await create(api, world.admin, LEADS, email="  Pat@Host.example  ")
    assert lead["email"] == "Pat@Host.example"
    # Login stays lenient: an address of an older, looser rule is simply unknown (401).
    response = await api.post("/api/auth/login/", json={"email": "pat@host", "password": PASSWORD})
    assert response.status_code == 401, response.text
    await assert_invisible_to_other_org(api, world.other, LEADS, lead["id"])


# --- Amounts held exactly ---------------------------------------------------------------

TWO_DECIMALS = "At most 2 decimals."
AMOUNT_RANGE = "Must be a number from 0 to 9999999999999.99."
REFUSED_AMOUNTS = {
    "1e-400": TWO_DECIMALS,
    "0.001": TWO_DECIMALS,
    "1.005": TWO_DECIMALS,
    "0.1000000000000000055511151231257827": TWO_DECIMALS,
    "1e-999999999999999999999": TWO_DECIMALS,
    "1e400": AMOUNT_RANGE,
    "1E+999999999999999999999": AMOUNT_RANGE,
    "-1e-400": AMOUNT_RANGE,
}
ACCEPTED_AMOUNTS = {"1e2": 100, "-0": 0, "-0.0": 0, "24000.000": 24000, "1234.50": 1234.5}


async def test_an_amount_is_exact_or_refused(api: httpx.AsyncClient, world: World) -> None:
    headers = world.admin.headers
    for text, message in REFUSED_AMOUNTS.items():
        body = f'{{"name": "Deal", "amount": {text}}}'
        response = await api.post(OPPORTUNITIES.url, **raw_json(body, headers))
        refused_with(response, 400, "amount", message)
    assert await listed_ids(api, world.admin, OPPORTUNITIES) == []
    deal = await create(api, world.admin, OPPORTUNITIES, amount=5)
    url = OPPORTUNITIES.detail(deal["id"])
    for text, message in REFUSED_AMOUNTS.items():
        response = await api.patch(url, **raw_json(f'{{"amount": {text}}}', headers))
        refused_with(response, 400, "amount", message)
    assert (await read(api, world.admin, OPPORTUNITIES, deal["id"]))["amount"] == 5
    for text, amount in ACCEPTED_AMOUNTS.items():
        response = await api.patch(url, **raw_json(f'{{"amount": {text}}}', headers))
        assert response.status_code == 200, (text, response.text)
        assert response.json()["amount"] == amount
        assert f'"amount":{amount}' in response.text.replace(" ", "")
    await assert_invisible_to_other_org(api, world.other, OPPORTUNITIES, deal["id"])


async def test_convert_amounts_are_exact_or_refused(api: httpx.AsyncClient, world: World) -> None:
    lead = await create(api, world.admin, LEADS)
    url = f"{LEADS.detail(lead['id'])}convert/"
    for text, message in REFUSED_AMOUNTS.items():
        body = f'{{"account_name": "Acme", "create_opportunity": true, "amount": {text}}}'
        response = await api.post(url, **raw_json(body, world.admin.headers))
        refused_with(response, 400, "amount", message)
    assert (await read(api, world.admin, LEADS, lead["id"]))["status"] == "new"
    await assert_invisible_to_other_org(api, world.other, LEADS, lead["id"])


async def test_a_custom_number_that_would_be_lost_is_refused(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    await define_field(api, world.admin, "score", "number", filterable=True)
    too_small = "Too close to 0 to be kept; give 0 or a larger number."
    too_large = "Must be a finite number between -2**63 and 2**63."
    refusals = {
        **dict.fromkeys(("1e-400", "-1e-400", "1e-999999999999999999999"), too_small),
        **dict.fromkeys(("1e400", "1E+999999999999999999999"), too_large),
    }
    for text, message in refusals.items():
        body = f'{{"title": "t", "custom_fields": {{"score": {text}}}}}'
        response = await api.post(LEADS.url, **raw_json(body, headers))
        refused_with(response, 400, "custom_fields.score", message)
    body = '{"title": "t", "custom_fields": {"score": 1e2, "other": 0.5}}'
    response = await api.post(LEADS.url, **raw_json(body, headers))
    refused_with(response, 400, "custom_fields.other", "Unknown custom field.")
    response = await api.get(LEADS.url, params={"cf_score": "1e-400"}, headers=headers)
    refused(response, 400, "cf_score")
    body = '{"title": "t", "custom_fields": {"score": 0.125}}'
    response = await api.post(LEADS.url, **raw_json(body, headers))
    assert response.status_code == 201, response.text
    assert response.json()["custom_fields"] == {"score": 0.125}
    await assert_invisible_to_other_org(api, world.other, LEADS, response.json()["id"])


async def test_csv_cells_hold_amounts_to_the_same_rules(
    api: httpx.AsyncClient, world: World
) -> None:
    headers = world.admin.headers
    await api.post(
        CUSTOM_FIELDS,
        json={"entity": "opportunity", "key": "score", "label": "Score", "type": "number"},
        headers=headers,
    )
    cells = [*REFUSED_AMOUNTS, *ACCEPTED_AMOUNTS]
    lines = ["name,amount,cf_score", *(f"Deal {n},{cell},1" for n, cell in enumerate(cells))]
    lines.append("Deal tiny score,1,1e-400")
    response = await api.post(
        f"{OPPORTUNITIES.url}upload/",
        files={"file": ("deals.csv", "\n".join(lines).encode(), "text/csv")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert_ours(response)
    errors = {entry["row"]: entry["errors"] for entry in report["errors"]}
    for n, (cell, message) in enumerate(REFUSED_AMOUNTS.items()):
        assert errors[n + 2] == {"amount": message}, (cell, errors.get(n + 2))
    tiny_row = len(cells) + 2
    assert errors[tiny_row] == {"cf_score": "Too close to 0 to be kept; give 0 or a larger number."}
    created = {entry["row"]: entry["id"] for entry in report["created"]}
    for n, (cell, amount) in enumerate(ACCEPTED_AMOUNTS.items(), start=len(REFUSED_AMOUNTS) + 2):
        record = await read(api, world.admin, OPPORTUNITIES, created[n])
        assert record["amount"] == amount, cell
    await assert_invisible_to_other_org(api, world.other, OPPORTUNITIES, created[n])
