"""What each hot request costs in SQL statements, per entity: a list page, a detail, a create
and a PATCH that set every link, tags, an assignment and custom fields. The figures are the
ceiling: a change that costs one more statement fails here, and one that saves a statement
lowers the figure."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import World, count_statements
from tests.entities_support import (
    ENTITIES,
    Entity,
    assert_invisible_to_other_org,
    create,
    define_custom_fields,
    linked_records,
    new_tag,
    resolve,
)

# entity: (list, detail, create, PATCH)
STATEMENTS: dict[str, tuple[int, int, int, int]] = {
    "leads": (3, 3, 7, 5),
    "contacts": (3, 3, 7, 5),
    "accounts": (3, 3, 6, 5),
    "opportunities": (4, 4, 11, 6),
    "tasks": (3, 3, 6, 5),
}


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda entity: entity.name)
async def test_statements_per_request(
    api: httpx.AsyncClient, app: FastAPI, world: World, entity: Entity
) -> None:
    await define_custom_fields(api, world.admin, entity)
    ids = await linked_records(api, world.admin, entity.link_bodies("")[0])

    def fields() -> dict[str, Any]:
        return {
            **resolve(entity.link_bodies(new_tag())[0], ids),
            "assigned_to": world.user.profile_id,
            "tags": ["hot", "q3"],
            "custom_fields": {"tier": "gold", "score": 7},
        }

    for _ in range(4):
        await create(api, world.admin, entity, **fields())

    with count_statements(app) as creating:
        response = await api.post(entity.url, json=fields(), headers=world.admin.headers)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["custom_fields"] == {"tier": "gold", "score": 7}

    with count_statements(app) as listing:
        response = await api.get(entity.url, params={"page_size": "5"}, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 5

    with count_statements(app) as reading:
        response = await api.get(entity.detail(record["id"]), headers=world.admin.headers)
    assert response.status_code == 200, response.text

    with count_statements(app) as patching:
        response = await api.patch(
            entity.detail(record["id"]),
            json={"tags": ["cold"], "custom_fields": {"score": 8}, "assigned_to": None},
            headers=world.admin.headers,
        )
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["cold"]
    assert response.json()["custom_fields"] == {"tier": "gold", "score": 8}

    measured = (listing.count, reading.count, creating.count, patching.count)
    assert measured == STATEMENTS[entity.name], {
        "measured (list, detail, create, patch)": measured,
        "create": creating.statements,
        "patch": patching.statements,
    }
    await assert_invisible_to_other_org(api, world.other, entity, record["id"])
