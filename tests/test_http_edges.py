"""HTTP details: HEAD, query parameters where none are taken or given twice, and ids
only in the form the API writes them."""

import httpx

from tests.conftest import World


async def test_head_answers_like_get_without_a_body(api: httpx.AsyncClient, world: World) -> None:
    health = await api.head("/healthz")
    assert health.status_code == 200
    assert health.content == b""
    listed = await api.head("/api/leads/", headers=world.admin.headers)
    assert listed.status_code == 200
    assert listed.content == b""
    assert listed.headers["X-Request-Id"]
    anonymous = await api.head("/api/leads/")
    assert anonymous.status_code == 401


async def test_endpoints_that_take_no_parameters_refuse_them(
    api: httpx.AsyncClient, world: World
) -> None:
    created = await api.post(
        "/api/leads/", params={"foo": "1"}, json={"title": "Kept"}, headers=world.admin.headers
    )
    assert created.status_code == 400
    assert created.json() == {"errors": {"foo": "Unknown parameter."}}
    lead = await api.post("/api/leads/", json={"title": "Kept"}, headers=world.admin.headers)
    lead_id = lead.json()["id"]
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await api.request(
            method,
            f"/api/leads/{lead_id}/",
            params={"foo": "1"},
            json={"title": "Changed"} if method in ("PATCH", "PUT") else None,
            headers=world.admin.headers,
        )
        assert response.status_code == 400, method
        assert response.json() == {"errors": {"foo": "Unknown parameter."}}
    kept = await api.get(f"/api/leads/{lead_id}/", headers=world.admin.headers)
    assert kept.json()["title"] == "Kept"
    listed = await api.get("/api/leads/", headers=world.admin.headers)
    assert listed.json()["count"] == 1
    theirs = await api.get(f"/api/leads/{lead_id}/", headers=world.other.headers)
    assert theirs.status_code == 404


async def test_a_list_parameter_given_twice_is_400(api: httpx.AsyncClient, world: World) -> None:
    for query in ("tags=a&tags=b", "status=new&status=closed", "page=1&page=2"):
        response = await api.get(f"/api/leads/?{query}", headers=world.admin.headers)
        assert response.status_code == 400, query
        name = query.split("=")[0]
        assert response.json() == {"errors": {name: "Given more than once."}}
    users = await api.get("/api/users/?page=1&page=1", headers=world.admin.headers)
    assert users.status_code == 400


async def test_ids_only_in_their_canonical_form(api: httpx.AsyncClient, world: World) -> None:
    lead = await api.post("/api/leads/", json={"title": "Canon"}, headers=world.admin.headers)
    lead_id = lead.json()["id"]
    assert (await api.get(f"/api/leads/{lead_id}/", headers=world.admin.headers)).status_code == 200
    for variant in (f"urn:uuid:{lead_id}", f"{{{lead_id}}}", lead_id.replace("-", "")):
        response = await api.get(f"/api/leads/{variant}/", headers=world.admin.headers)
        assert response.status_code == 404, variant
    theirs = await api.get(f"/api/leads/{lead_id}/", headers=world.other.headers)
    assert theirs.status_code == 404
