"""Members of several orgs: an invitation and its answer, through HTTP."""

import httpx

from tests.conftest import Identity


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def invite(api: httpx.AsyncClient, admin: Identity, email: str, role: str = "user") -> str:
    """The id of the profile to which the admin's org invites an existing user."""
    response = await api.post(
        "/api/users/", json={"email": email, "role": role}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "invited"
    profile_id: str = response.json()["id"]
    return profile_id


async def invite_and_accept(
    api: httpx.AsyncClient, admin: Identity, member: Identity, role: str = "user"
) -> str:
    """The admin's org invites the member of another org, who accepts: its new profile."""
    profile_id = await invite(api, admin, member.email, role)
    accepted = await api.post(f"/api/auth/invitations/{profile_id}/accept/", headers=member.headers)
    assert accepted.status_code == 200, accepted.text
    return profile_id
