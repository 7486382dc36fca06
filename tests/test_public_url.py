"""A forged Host header steers no link: with CRM_PUBLIC_URL every absolute link starts with
it, and with CRM_ALLOWED_HOSTS a request for another host is refused (400) on both dialects."""

import pytest

from tests.apps import client_of, fresh_app
from tests.conftest import World

PUBLIC = "https://crm.example.com"
FORGED = {"Host": "evil.example"}


async def test_api_list_links_use_the_public_url(database_url: str, world: World) -> None:
    async with client_of(fresh_app(database_url, public_url=PUBLIC + "/")) as client:
        headers = {**world.admin.headers, **FORGED}
        first = await client.get("/api/users/?page_size=1", headers=headers)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["count"] == 2
        assert body["next"] == f"{PUBLIC}/api/users/?page_size=1&page=2"
        assert body["previous"] is None

        second = await client.get("/api/users/?page_size=1&page=2", headers=headers)
        assert second.status_code == 200, second.text
        assert second.json()["previous"] == f"{PUBLIC}/api/users/?page_size=1&page=1"
        emails = {first.json()["results"][0]["email"], second.json()["results"][0]["email"]}
        assert emails == {world.admin.email, world.user.email}

        # The other org lists only its own.
        other = await client.get("/api/users/?page_size=1", headers=world.other.headers)
        assert other.json()["count"] == 1
        assert other.json()["results"][0]["email"] == world.other.email


async def test_v2_collection_links_use_the_public_url(database_url: str, world: World) -> None:
    async with client_of(fresh_app(database_url, public_url=PUBLIC)) as client:
        headers = {**world.admin.headers, **FORGED}
        response = await client.get("/v2/lead_sources?per_page=1&page=2", headers=headers)
        assert response.status_code == 200, response.text
        links = response.json()["meta"]["links"]
        assert links == {
            "self": f"{PUBLIC}/v2/lead_sources?per_page=1&page=2",
            "next_page": f"{PUBLIC}/v2/lead_sources?per_page=1&page=3",
            "prev_page": f"{PUBLIC}/v2/lead_sources?per_page=1&page=1",
        }
        [item] = response.json()["items"]
        theirs = await client.get(
            f"/v2/lead_sources/{item['data']['id']}", headers=world.other.headers
        )
        assert theirs.status_code == 404


async def test_without_a_public_url_links_follow_the_request(
    database_url: str, world: World
) -> None:
    async with client_of(fresh_app(database_url)) as client:
        response = await client.get("/api/users/?page_size=1", headers=world.admin.headers)
        assert response.json()["next"] == "http://testserver/api/users/?page_size=1&page=2"


@pytest.mark.parametrize("path", ["/api/users/", "/v2/lead_sources"])
async def test_a_host_not_allowed_is_refused(database_url: str, world: World, path: str) -> None:
    app = fresh_app(database_url, allowed_hosts="crm.example.com, API.example.com")
    async with client_of(app) as client:
        refused = await client.get(path, headers={**world.admin.headers, **FORGED})
        assert refused.status_code == 400, refused.text
        request_id = refused.headers["x-request-id"]
        reason = "This server does not serve the host 'evil.example'."
        if path.startswith("/v2/"):
            [item] = refused.json()["errors"]
            assert item["error"]["message"] == reason
            assert refused.json()["meta"]["logref"] == request_id
        else:
            assert refused.json() == {"errors": {"detail": reason}}

        for host in ("crm.example.com", "api.example.com:8443"):
            served = await client.get(path, headers={**world.admin.headers, "Host": host})
            assert served.status_code == 200, served.text


async def test_health_answers_whatever_the_host(database_url: str) -> None:
    async with client_of(fresh_app(database_url, allowed_hosts="crm.example.com")) as client:
        response = await client.get("/healthz", headers=FORGED)
        assert response.status_code == 200
        assert (await client.get("/api/auth/me/", headers=FORGED)).status_code == 400
