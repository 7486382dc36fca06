"""Helpers shared by the lead tests: create leads and custom fields through HTTP, read lists."""

import uuid
from typing import Any

import httpx

from tests.conftest import Identity

LEADS = "/api/leads/"
CUSTOM_FIELDS = "/api/custom-fields/"

# The seed's create example, word for word.
SEED_BODY: dict[str, Any] = {
    "title": "Acme renewal interest",
    "first_name": "Jane",
    "last_name": "Doe",
    "email": "jane@acme.com",
    "phone": "+1 555 1234",
    "status": "new",
    "source": "website_form",
    "custom_fields": {"industry": "saas", "bant_score": 72},
}

# Every field a lead reads (the detail adds custom_field_definitions).
LEAD_KEYS = {
    "id",
    "number",
    "title",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "status",
    "source",
    "description",
    "assigned_to",
    "created_by",
    "tags",
    "custom_fields",
    "converted_at",
    "converted_account",
    "converted_contact",
    "converted_opportunity",
    "created_at",
    "updated_at",
}


def detail_url(lead_id: str) -> str:
    return f"{LEADS}{lead_id}/"


async def create_lead(api: httpx.AsyncClient, who: Identity, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Lead {uuid.uuid4().hex[:8]}", **fields}
    response = await api.post(LEADS, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def define_field(
    api: httpx.AsyncClient, admin: Identity, key: str, kind: str, **extra: Any
) -> dict[str, Any]:
    body = {"entity": "lead", "key": key, "label": key.replace("_", " ").title(), "type": kind}
    response = await api.post(CUSTOM_FIELDS, json={**body, **extra}, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def seed_fields(api: httpx.AsyncClient, admin: Identity) -> None:
    """The custom fields the seed's examples use."""
    await define_field(api, admin, "industry", "text", filterable=True)
    await define_field(api, admin, "bant_score", "number")


async def list_leads(api: httpx.AsyncClient, who: Identity, params: Any = None) -> dict[str, Any]:
    response = await api.get(LEADS, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed_ids(api: httpx.AsyncClient, who: Identity, params: Any = None) -> list[str]:
    """The ids of the first page (up to 100) of a list."""
    merged = {"page_size": "100", **dict(params or {})}
    return [lead["id"] for lead in (await list_leads(api, who, merged))["results"]]


def refused(response: httpx.Response, status: int, *fields: str) -> dict[str, str]:
    """The response is an /api/ error with this status naming exactly these fields (or,
    with no fields given, a `detail`)."""
    assert response.status_code == status, response.text
    errors: dict[str, str] = response.json()["errors"]
    assert set(errors) == (set(fields) or {"detail"}), errors
    assert all(isinstance(reason, str) and reason for reason in errors.values())
    return errors


async def assert_invisible_to_other_org(
    api: httpx.AsyncClient, other: Identity, lead_id: str
) -> None:
    """Another org's admin neither lists nor reads the lead."""
    assert lead_id not in await listed_ids(api, other)
    response = await api.get(detail_url(lead_id), headers=other.headers)
    refused(response, 404)
