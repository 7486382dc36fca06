"""Small truths of the API's answers: a 405's `Allow` names only the methods that would not
404, /readyz's 503 names the request id its header carries, and every request example of the
OpenAPI document succeeds on a fresh org."""

import re
from typing import Any

import httpx

from crm.app import create_app
from tests.apps import client_of
from tests.conftest import Identity, World, make_settings, register
from tests.servers import free_port


async def test_allow_names_only_the_methods_that_would_not_404(
    api: httpx.AsyncClient, world: World
) -> None:
    upload = await api.request("TRACE", "/api/leads/upload/", headers=world.admin.headers)
    assert upload.status_code == 405
    assert upload.headers["allow"] == "POST"
    # Each method it leaves out is indeed a 404 there; the one it names is not.
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        answer = await api.request(method, "/api/leads/upload/", headers=world.admin.headers)
        assert answer.status_code == 404, (method, answer.text)
    posted = await api.post(
        "/api/leads/upload/",
        files={"file": ("leads.csv", b"title\nAllowed\n")},
        headers=world.admin.headers,
    )
    assert posted.status_code == 200, posted.text
    # Paths with an id still name every method of the record.
    lead = posted.json()["created"][0]["id"]
    record = await api.request("TRACE", f"/api/leads/{lead}/", headers=world.admin.headers)
    assert record.headers["allow"] == "GET, PUT, PATCH, DELETE"
    listing = await api.request("TRACE", "/api/leads/", headers=world.admin.headers)
    assert listing.headers["allow"] == "GET, POST"
    # Another org does not see the lead made here.
    hidden = await api.get(f"/api/leads/{lead}/", headers=world.other.headers)
    assert hidden.status_code == 404


async def test_readyz_503_names_the_request_id() -> None:
    away = make_settings(f"postgresql://crm@127.0.0.1:{free_port()}/crm")
    async with client_of(create_app(away)) as client:
        ready = await client.get("/readyz", headers={"X-Request-Id": "ready-check-1"})
    assert ready.status_code == 503
    assert ready.headers["x-request-id"] == "ready-check-1"
    errors = ready.json()["errors"]
    assert set(errors) == {"database"}
    assert "request id ready-check-1" in errors["database"]


def request_examples(document: dict[str, Any], operation: dict[str, Any]) -> list[Any]:
    """The request examples an operation documents: its media type's, and its schema's."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return []
    examples = [body["example"]] if "example" in body else []
    examples += [example["value"] for example in body.get("examples", {}).values()]
    schema = body.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return examples + list(schema.get("examples", []))


def created_id(body: Any) -> Any:
    return body["data"]["id"] if "data" in body else body["id"]


async def test_every_documented_request_example_succeeds_on_a_fresh_org(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    admin: Identity = await register(api, "Fresh")
    other: Identity = await register(api, "Elsewhere")
    operations = [
        (path, method.upper(), example)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        for example in request_examples(document, operation)
    ]
    assert {(path, method) for path, method, _ in operations} >= {
        ("/api/leads/", "POST"),
        ("/api/leads/{record_id}/convert/", "POST"),
    }
    # Collections first: what they create is what the paths with an id name; convert last,
    # as a converted lead's status no longer changes.
    operations.sort(key=lambda operation: ("{" in operation[0], "/convert/" in operation[0]))
    made: dict[str, Any] = {}
    for path, method, example in operations:
        collection = path.split("{", 1)[0].rstrip("/")
        url = re.sub(r"\{[^}]+\}", str(made.get(collection, "")), path)
        answer = await api.request(method, url, json=example, headers=admin.headers)
        assert answer.is_success, (method, path, answer.text)
        if "{" not in path:
            made[collection] = created_id(answer.json())
            # Another org does not see it.
            record = f"{collection}/{made[collection]}" + ("/" if path.endswith("/") else "")
            seen = await api.get(record, headers=other.headers)
            assert seen.status_code == 404, (path, seen.text)
