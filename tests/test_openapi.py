"""The OpenAPI document tells the truth: every operation's body and answers are named
schemas, every error it can answer is documented in its dialect's envelope, and a client
generated from it works against a real server. (Every response the suite receives is also
checked against it: tests/openapi_check.py.)"""

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm.app import ENTITIES
from tests.conftest import PASSWORD, unique_email
from tests.openapi_check import check, sync_hooks
from tests.openapi_check import document as app_document
from tests.servers import CRM, crm_server

BODY_METHODS = ("post", "put", "patch")


@pytest.fixture(scope="module", name="document")
async def served_document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["openapi"].startswith("3.1")
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def schema_of(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content")
    return content["application/json"]["schema"] if content else None


def named(schema: dict[str, Any] | None, document: dict[str, Any]) -> str:
    assert schema is not None and set(schema) == {"$ref"}, schema
    name = schema["$ref"].removeprefix("#/components/schemas/")
    assert name in document["components"]["schemas"]
    return name


def test_every_operation_has_named_bodies_and_answers(document: dict[str, Any]) -> None:
    seen = 0
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        seen += 1
        assert operation.get("tags") and operation.get("summary"), where
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert len(successes) == 1, where
        success = responses[successes[0]]
        if successes[0] == "204":
            assert "content" not in success, where
        elif path.endswith("/export/"):
            assert set(success["content"]) == {"text/csv"}, where
        else:
            named(schema_of(success), document)
        if path.endswith("/upload/"):
            form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert form["required"] == ["file"], where
        elif method in BODY_METHODS and not path.endswith(
            ("/restore/", "/logout/", "/accept/", "/decline/")
        ):
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            named(body, document)
    # records with their upload and export, convert, auth, users, fields, v2
    assert seen == 5 * 9 + 1 + 13 + 5 + 5 + 5 + 2


def test_every_error_is_documented_in_its_dialects_envelope(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        errors = {status for status in responses if int(status) >= 400}
        if path in ("/healthz", "/readyz"):
            assert errors == ({"405", "500", "503"} if path == "/readyz" else {"405", "500"})
            continue
        expected = {"400", "403", "405", "413", "429", "500", "503"}
        if operation.get("security") or path in ("/api/auth/login/", "/api/auth/refresh/"):
            expected.add("401")
        if "{" in path:
            expected.add("404")
        if method in (*BODY_METHODS, "delete"):
            expected.add("409")  # waited too long for another request's writes
        if method in BODY_METHODS and not path.endswith("/upload/"):
            expected.add("415")
        v2 = path.startswith("/v2/")
        if v2 and method in BODY_METHODS:
            expected.add("422")
        # No FastAPI 422 "Validation Error" where the API answers 400.
        assert errors == expected, where
        envelope = "BaseErrors" if v2 else "ApiErrors"
        for status in errors:
            # A login's 400 is the envelope with the orgs to choose from.
            own = "LoginErrors" if (path, status) == ("/api/auth/login/", "400") else envelope
            assert named(schema_of(responses[status]), document) == own, (where, status)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas


def test_each_entity_has_its_record_detail_list_and_bodies(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for spec in ENTITIES:
        name = spec.singular.capitalize()
        record = schemas[name]
        # Every key the record reads is documented, and no other.
        assert record["additionalProperties"] is False
        assert set(record["required"]) == set(record["properties"])
        assert {"id", "assigned_to", "tags", "custom_fields", "created_by"} <= set(
            record["required"]
        )
        detail = document["paths"][f"/api/{spec.name}/{{record_id}}/"]["get"]
        assert named(schema_of(detail["responses"]["200"]), document) == f"{name}Detail"
        assert "custom_field_definitions" in schemas[f"{name}Detail"]["properties"]
        listed = document["paths"][f"/api/{spec.name}/"]["get"]
        assert named(schema_of(listed["responses"]["200"]), document) == f"{name}List"
        envelope = {"count", "count_estimated", "next", "previous", "results"}
        assert envelope == set(schemas[f"{name}List"]["required"])
    converted = schemas["Converted"]["properties"]
    assert set(converted) == {"lead", "account", "contact", "opportunity"}
    assert schemas["Opportunity"]["properties"]["amount"]["anyOf"][0] == {"type": "number"}


def test_bearer_scheme_and_seed_examples(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A 64-character access or personal token.",
    }
    create = document["paths"]["/api/leads/"]["post"]["requestBody"]["content"]
    assert create["application/json"]["example"]["title"] == "Acme renewal interest"
    convert = document["components"]["schemas"]["ConvertIn"]
    assert convert["examples"][0]["account_name"] == "Acme Corp"


def response(method: str, path: str, status: int, body: Any) -> httpx.Response:
    request = httpx.Request(method, f"http://testserver{path}")
    return httpx.Response(status, json=body, request=request)


async def test_the_check_catches_an_answer_that_drifts_from_the_document(
    api: httpx.AsyncClient, world: Any
) -> None:
    """The suite's check of every response refuses a key the document lacks, a status it
    does not list, and an error outside its envelope."""
    created = await api.post("/api/leads/", json={"title": "Drift"}, headers=world.admin.headers)
    assert created.status_code == 201
    lead = created.json()
    check(response("POST", "/api/leads/", 201, lead))
    refused = [
        response("POST", "/api/leads/", 201, {**lead, "surprise": 1}),
        response("POST", "/api/leads/", 202, lead),
        response("GET", f"/api/leads/{lead['id']}/", 404, {"detail": "Not found."}),
        response("GET", "/api/no-such-thing/", 404, {"errors": [{"detail": "Not found."}]}),
        response("GET", "/api/no-such-thing/", 200, {}),
    ]
    for answer in refused:
        with pytest.raises(AssertionError):
            check(answer)
    other = await api.get(f"/api/leads/{lead['id']}/", headers=world.other.headers)
    assert other.status_code == 404


GENERATOR_CONFIG = "post_hooks: []\n"  # no formatter run over the generated code


def start_generator(document: dict[str, Any], where: Path, package: str) -> Any:
    """openapi-python-client generating `package` from `document`, in the background."""
    (where / "openapi.json").write_bytes(json.dumps(document).encode())
    (where / "config.yaml").write_text(GENERATOR_CONFIG)
    command = [
        str(CRM.with_name("openapi-python-client")),
        "generate",
        *("--path", str(where / "openapi.json"), "--meta", "none"),
        *("--output-path", str(where / package), "--config", str(where / "config.yaml")),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def import_generated(generator: Any, where: Path, package: str) -> Any:
    output, _ = generator.communicate(timeout=120)
    assert generator.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(where))


def test_a_generated_client_creates_reads_lists_and_deletes_a_lead(
    database_url: str, tmp_path: Path
) -> None:
    package = f"crm_client_{uuid.uuid4().hex[:8]}"
    # Generated while the server starts; from the document that the server serves.
    generator = start_generator(app_document(), tmp_path, package)
    try:
        with crm_server(database_url, rate_limit="off") as base_url:
            assert httpx.get(f"{base_url}/openapi.json").json() == app_document()
            client_package = import_generated(generator, tmp_path, package)
            models = importlib.import_module(f"{package}.models")
            register = importlib.import_module(f"{package}.api.auth.register_endpoint")
            leads = {
                operation: importlib.import_module(f"{package}.api.leads.{operation}_leads")
                for operation in ("create", "retrieve", "list", "delete")
            }
            hooks = {"event_hooks": sync_hooks()}

            def session_for(org_name: str) -> Any:
                anonymous = client_package.Client(base_url=base_url, httpx_args=hooks)
                body = models.RegisterIn(org_name=org_name, email=unique_email(), password=PASSWORD)
                session = register.sync(client=anonymous, body=body)
                assert isinstance(session, models.Session), session
                return client_package.AuthenticatedClient(
                    base_url=base_url, token=session.access_token, httpx_args=hooks
                )

            admin, other = session_for("Acme"), session_for("Globex")
            lead_in = models.LeadIn(title="Acme renewal interest", email=unique_email("jane"))
            created = leads["create"].sync(client=admin, body=lead_in)
            assert isinstance(created, models.Lead), created
            assert (created.title, created.status, created.email) == (
                "Acme renewal interest",
                "new",
                lead_in.email,
            )
            read = leads["retrieve"].sync(client=admin, record_id=str(created.id))
            assert isinstance(read, models.LeadDetail), read
            assert read.id == created.id and read.custom_field_definitions == []
            listed = leads["list"].sync(client=admin)
            assert isinstance(listed, models.LeadList), listed
            assert [lead.id for lead in listed.results] == [created.id] and listed.count == 1
            hidden = leads["retrieve"].sync_detailed(client=other, record_id=str(created.id))
            assert hidden.status_code == 404 and isinstance(hidden.parsed, models.ApiErrors)
            deleted = leads["delete"].sync_detailed(client=admin, record_id=str(created.id))
            assert deleted.status_code == 204
            gone = leads["retrieve"].sync_detailed(client=admin, record_id=str(created.id))
            assert gone.status_code == 404
            assert gone.parsed.errors.additional_properties == {"detail": "Not found."}
    finally:
        if generator.poll() is None:  # the server failed before the client was imported
            generator.kill()
            generator.communicate()
