"""The official `basecrm` client from PyPI against a real `crm serve` over TCP: what it sends
(its User-Agent, Accept, a `{"data": ...}` body) and what it expects (envelopes it unwraps,
a 64-character token, errors it raises from the Base envelope) for lead sources."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import basecrm
import httpx
import pytest

from crm.lead_sources.models import DEFAULT_SOURCES
from tests.conftest import PASSWORD, unique_email
from tests.openapi_check import sync_hooks
from tests.servers import crm_server


@dataclass
class Member:
    token: str
    client: basecrm.Client


@dataclass
class Org:
    admin: Member
    user: Member


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    with crm_server(database_url) as base_url:
        yield base_url


def client_for(base_url: str, token: str) -> basecrm.Client:
    return basecrm.Client(access_token=token, base_url=base_url)


def personal_token(http: httpx.Client, access_token: str) -> str:
    response = http.post(
        "/api/auth/tokens/",
        json={"name": "basecrm client"},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    assert len(token) == 64
    return token


def new_org(base_url: str) -> Org:
    """An org registered through the real server, with an admin and a user, each holding a
    personal token as an integration would."""
    with httpx.Client(base_url=base_url, event_hooks=sync_hooks()) as http:
        registered = http.post(
            "/api/auth/register/",
            json={
                "org_name": f"Org {uuid.uuid4().hex[:6]}",
                "email": unique_email("admin"),
                "password": PASSWORD,
            },
        )
        assert registered.status_code == 201, registered.text
        admin_access = registered.json()["access_token"]
        email = unique_email("user")
        added = http.post(
            "/api/users/",
            json={"email": email, "password": PASSWORD, "role": "user"},
            headers={"Authorization": f"Bearer {admin_access}"},
        )
        assert added.status_code == 201, added.text
        login = http.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        admin_token = personal_token(http, admin_access)
        user_token = personal_token(http, login.json()["access_token"])
    return Org(
        admin=Member(admin_token, client_for(base_url, admin_token)),
        user=Member(user_token, client_for(base_url, user_token)),
    )


def assert_source(source: Any, name: str) -> None:
    assert set(source) == {
        "id",
        "creator_id",
        "name",
        "resource_type",
        "created_at",
        "updated_at",
    }
    assert isinstance(source.id, int)
    assert isinstance(source.creator_id, int)
    assert source.name == name
    assert source.resource_type == "lead"
    assert source.created_at.endswith("Z")
    assert source.updated_at.endswith("Z")


def test_the_client_lists_creates_retrieves_updates_and_destroys(server: str) -> None:
    ours = new_org(server)
    theirs = new_org(server)
    sources = ours.admin.client.lead_sources

    # list: the defaults, unwrapped from items[].data
    listed = sources.list()
    assert [source.name for source in listed] == list(DEFAULT_SOURCES)
    for source in listed:
        assert_source(source, source.name)
    default_ids = [source.id for source in listed]

    # create
    tom = sources.create(name="Tom", resource_type="lead")
    assert_source(tom, "Tom")
    assert tom.creator_id == listed[0].creator_id
    assert tom.id not in default_ids

    # retrieve
    got = sources.retrieve(tom.id)
    assert got == tom

    # update: only the name changes
    updated = sources.update(tom.id, name="Tom referral")
    assert_source(updated, "Tom referral")
    assert updated.id == tom.id
    assert updated.created_at == tom.created_at
    assert updated.creator_id == tom.creator_id
    # The client sends back what it read (it keeps name and resource_type only).
    assert sources.update(tom.id, dict(updated)) == updated

    # Another org's client sees none of it.
    other = theirs.admin.client.lead_sources
    for call in (
        lambda: other.retrieve(tom.id),
        lambda: other.update(tom.id, name="Ours"),
        lambda: other.destroy(tom.id),
    ):
        with pytest.raises(basecrm.RequestError) as raised:
            call()
        assert raised.value.http_status == 404
        assert raised.value.errors[0].code == "not_found"
        assert raised.value.logref
    assert tom.id not in [source.id for source in other.list(per_page=100)]
    assert other.list(ids=str(tom.id)) == []
    assert other.list(name="Tom referral") == []

    # destroy: a bare 204 the client reads as True
    assert sources.destroy(tom.id) is True
    with pytest.raises(basecrm.RequestError) as gone:
        sources.retrieve(tom.id)
    assert gone.value.http_status == 404
    assert [source.id for source in sources.list()] == default_ids


def test_the_client_passes_every_list_parameter(server: str) -> None:
    ours = new_org(server)
    theirs = new_org(server)
    sources = ours.admin.client.lead_sources
    extra = [sources.create(name=name) for name in ("Alpha", "beta", "Gamma")]
    names = [*DEFAULT_SOURCES, "Alpha", "beta", "Gamma"]
    every_id = [source.id for source in sources.list(per_page=100)]
    assert len(every_id) == len(names)

    # page and per_page
    first = sources.list(page=1, per_page=4)
    second = sources.list(page=2, per_page=4)
    third = sources.list(page=3, per_page=4)
    assert [s.id for s in first + second + third] == every_id
    assert len(third) == 3
    assert sources.list(page=4, per_page=4) == []

    # sort_by, one field or several
    assert [s.name for s in sources.list(sort_by="name")] == sorted(names, key=str.lower)
    assert [s.name for s in sources.list(sort_by="name:desc")] == sorted(
        names, key=str.lower, reverse=True
    )
    assert [s.id for s in sources.list(sort_by="id:desc")] == every_id[::-1]
    newest = sources.list(sort_by="created_at:desc,name", per_page=3)
    assert [s.name for s in newest] == ["Gamma", "beta", "Alpha"]
    assert [s.name for s in sources.list(sort_by="updated_at", per_page=100)][-3:] == [
        "Alpha",
        "beta",
        "Gamma",
    ]

    # ids: comma-separated, or a list the client repeats
    wanted = [extra[0].id, every_id[0]]
    assert [s.id for s in sources.list(ids=f"{wanted[0]},{wanted[1]}")] == sorted(wanted)
    assert [s.id for s in sources.list(ids=wanted)] == sorted(wanted)

    # name: exact
    assert [s.id for s in sources.list(name="beta")] == [extra[1].id]
    assert sources.list(name="Beta") == []

    # Bad parameters: a RequestError carrying the Base envelope.
    for params, field in (
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"sort_by": "title"}, "sort_by"),
        ({"ids": "one,two"}, "ids"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(basecrm.RequestError) as raised:
            sources.list(**params)
        assert raised.value.http_status == 400
        assert raised.value.errors[0].field == field
        assert raised.value.logref

    # The other org's list shows none of ours, with any parameter.
    other = theirs.admin.client.lead_sources
    assert [s.name for s in other.list(per_page=100)] == list(DEFAULT_SOURCES)
    assert other.list(ids=",".join(str(s.id) for s in extra)) == []
    assert other.list(name="Alpha") == []


def test_the_client_raises_the_errors_it_knows(server: str) -> None:
    ours = new_org(server)
    theirs = new_org(server)
    sources = ours.admin.client.lead_sources

    # 422: ResourceError, naming the field.
    tom = sources.create(name="Tom")
    for attributes, field in (
        ({"name": "tom"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"resource_type": "lead"}, "name"),
        ({"name": "Ok", "resource_type": "deal"}, "resource_type"),
    ):
        with pytest.raises(basecrm.ResourceError) as invalid:
            sources.create(**attributes)
        assert invalid.value.http_status == 422
        assert invalid.value.errors[0].field == field
        assert invalid.value.errors[0].code == "invalid"
        assert invalid.value.logref
    with pytest.raises(basecrm.ResourceError):
        sources.update(tom.id, name="CALL")
    # Its own name in another case is fine.
    assert sources.update(tom.id, name="TOM").name == "TOM"

    # 403: a plain user reads but does not write.
    user_sources = ours.user.client.lead_sources
    assert user_sources.retrieve(tom.id).name == "TOM"
    assert len(user_sources.list()) == len(DEFAULT_SOURCES) + 1
    for call in (
        lambda: user_sources.create(name="Mine"),
        lambda: user_sources.update(tom.id, name="Mine"),
        lambda: user_sources.destroy(tom.id),
    ):
        with pytest.raises(basecrm.RequestError) as refused:
            call()
        assert refused.value.http_status == 403
        assert refused.value.errors[0].code == "forbidden"

    # 401: a token of the right length that is no token.
    stranger = client_for(server, "x" * 64).lead_sources
    with pytest.raises(basecrm.RequestError) as unknown:
        stranger.list()
    assert unknown.value.http_status == 401
    assert unknown.value.errors[0].code == "unauthorized"
    assert unknown.value.logref

    # The client itself refuses a token that is not 64 characters long.
    with pytest.raises(basecrm.ConfigurationError):
        client_for(server, "short")

    with pytest.raises(basecrm.RequestError) as hidden:
        theirs.admin.client.lead_sources.retrieve(tom.id)
    assert hidden.value.http_status == 404
    assert sources.retrieve(tom.id).name == "TOM"
