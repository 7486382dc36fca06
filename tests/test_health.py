import httpx

from tests.conftest import World


async def test_healthz_and_readyz(api: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = await api.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["X-Request-Id"]


async def test_register_then_me(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get("/api/auth/me/", headers=world.admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["profile"] == {"id": world.admin.profile_id, "role": "admin"}
    assert body["org"]["name"] == "Acme"
    other = await api.get("/api/auth/me/", headers=world.other.headers)
    assert other.json()["org"]["id"] != world.admin.org_id
