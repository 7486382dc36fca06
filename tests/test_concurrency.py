"""Writes at the same moment: each gets a number of its own, and uniqueness holds."""

import asyncio

import httpx

from tests.conftest import PASSWORD, Identity, World, add_member, register, unique_email
from tests.openapi_check import hooks
from tests.servers import crm_server


async def test_concurrent_source_creates_get_distinct_ids(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/v2/lead_sources",
                json={"data": {"name": f"Fair {i}"}},
                headers=world.admin.headers,
            )
            for i in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [200] * 8
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 8
    listed = await api.get(
        "/v2/lead_sources", params={"per_page": 100}, headers=world.other.headers
    )
    assert not ids & {item["data"]["id"] for item in listed.json()["items"]}


async def test_concurrent_lead_creates_keep_email_unique(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/api/leads/",
                json={"title": f"Lead {i}", "email": f"same-{i % 2}@example.com"},
                headers=world.admin.headers,
            )
            for i in range(8)
        ]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 201] + [400] * 6
    for response in responses:
        if response.status_code == 400:
            assert "email" in response.json()["errors"]
    mine = await api.get("/api/leads/", headers=world.admin.headers)
    assert mine.json()["count"] == 2
    theirs = await api.get("/api/leads/", headers=world.other.headers)
    assert theirs.json()["count"] == 0


async def test_concurrent_registrations_get_distinct_user_numbers(api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/api/auth/register/",
                json={"org_name": f"Org {i}", "email": unique_email(), "password": PASSWORD},
            )
            for i in range(6)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 6
    creators = set()
    for response in responses:
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        sources = await api.get("/v2/lead_sources", headers=headers)
        items = sources.json()["items"]
        assert len(items) == 8  # each org got exactly its own defaults
        creators |= {item["data"]["creator_id"] for item in items}
    assert len(creators) == 6


async def test_concurrent_patches_of_custom_fields_all_land(
    api: httpx.AsyncClient, world: World
) -> None:
    for i in range(8):
        response = await api.post(
            "/api/custom-fields/",
            json={"entity": "lead", "key": f"k{i}", "label": f"K{i}", "type": "text"},
            headers=world.admin.headers,
        )
        assert response.status_code == 201
    lead = await api.post("/api/leads/", json={"title": "Busy"}, headers=world.admin.headers)
    lead_id = lead.json()["id"]
    responses = await asyncio.gather(
        *[
            api.patch(
                f"/api/leads/{lead_id}/",
                json={"custom_fields": {f"k{i}": "v"}},
                headers=world.admin.headers,
            )
            for i in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [200] * 8
    final = await api.get(f"/api/leads/{lead_id}/", headers=world.admin.headers)
    assert final.json()["custom_fields"] == {f"k{i}": "v" for i in range(8)}
    other = await api.get(f"/api/leads/{lead_id}/", headers=world.other.headers)
    assert other.status_code == 404


async def test_deleting_a_source_while_leads_link_to_it(
    api: httpx.AsyncClient, world: World
) -> None:
    source = await api.post(
        "/v2/lead_sources", json={"data": {"name": "Roadshow"}}, headers=world.admin.headers
    )
    source_id = source.json()["data"]["id"]
    creates = [
        api.post(
            "/api/leads/",
            json={"title": f"Visitor {i}", "source": "Roadshow"},
            headers=world.admin.headers,
        )
        for i in range(4)
    ]
    delete = api.delete(f"/v2/lead_sources/{source_id}", headers=world.admin.headers)
    *created, deleted = await asyncio.gather(*creates, delete)
    assert deleted.status_code == 204
    for response in created:
        # Either it linked before the delete (and was unlinked by it) or it came after
        # and found no such source.
        assert response.status_code in (201, 400), response.text
        if response.status_code == 400:
            assert "source" in response.json()["errors"]
    leads = await api.get("/api/leads/", headers=world.admin.headers)
    assert all(lead["source"] is None for lead in leads.json()["results"])
    assert len(leads.json()["results"]) == sum(r.status_code == 201 for r in created)
    theirs = await api.get("/api/leads/", headers=world.other.headers)
    assert theirs.json()["count"] == 0


LAST_ADMIN_ROUNDS = 16


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    api: httpx.AsyncClient, database_url: str
) -> None:
    """In an org of two admins, each demotes (or deactivates) the other at the same moment,
    against two workers: one change wins, the other is refused, never both. Without a lock
    both checks saw two admins in about a third of the rounds on PostgreSQL."""

    async def org_of_two_admins() -> tuple[Identity, Identity]:
        first = await register(api)
        return first, await add_member(api, first, "admin")

    # The orgs are made in process (cheap hashing); the race runs over TCP.
    orgs = await asyncio.gather(*[org_of_two_admins() for _ in range(LAST_ADMIN_ROUNDS)])
    outsider = await register(api, "Globex")
    with crm_server(database_url, workers=2, rate_limit="off") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks=hooks()) as client:
            for round_, (first, second) in enumerate(orgs):
                change = {"role": "user"} if round_ % 2 else {"is_active": False}
                responses = await asyncio.gather(
                    client.patch(
                        f"/api/users/{second.profile_id}/", json=change, headers=first.headers
                    ),
                    client.patch(
                        f"/api/users/{first.profile_id}/", json=change, headers=second.headers
                    ),
                )
                statuses = [r.status_code for r in responses]
                assert statuses.count(200) == 1, (round_, [r.text for r in responses])
                # The loser is refused by the check or, when the winner was quicker, is no
                # longer an (active) admin by the time its token is read.
                refused = next(r for r in responses if r.status_code != 200)
                if refused.status_code == 400:
                    assert refused.json() == {
                        "errors": {"detail": "The org must keep at least one active admin."}
                    }
                else:
                    assert refused.status_code == (403 if "role" in change else 401), refused.text
                # The winner still is the org's one active admin and can act for it.
                winner = first if statuses[0] == 200 else second
                listed = await client.get("/api/users/", headers=winner.headers)
                assert listed.status_code == 200, listed.text
                admins = [
                    p["id"]
                    for p in listed.json()["results"]
                    if p["role"] == "admin" and p["is_active"]
                ]
                assert admins == [winner.profile_id]
            # Another org's admin cannot touch these profiles.
            foreign = await client.patch(
                f"/api/users/{orgs[0][0].profile_id}/",
                json={"role": "user"},
                headers=outsider.headers,
            )
            assert foreign.status_code == 404
