"""Every response the suite receives is checked against the app's OpenAPI document: its
status is documented for the operation (path template and method), and its JSON body
validates against the documented schema. A response of an undocumented path (an unknown
one, or a route a test adds) must be an error in its dialect's envelope."""

import re
from functools import cache
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from crm.app import create_app
from crm.config import Settings

# Served by FastAPI itself, and the metrics scrape (Prometheus text): outside the document.
UNDOCUMENTED = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/metrics"})


@cache
def document() -> dict[str, Any]:
    """The document of the app (every app of the suite has the same endpoints; one that a
    test adds is undocumented): built once, its engine never connected."""
    app = create_app(Settings(_env_file=None, database_url="sqlite://"))  # type: ignore[call-arg]
    return app.openapi()


@cache
def templates() -> list[tuple[re.Pattern[str], str]]:
    return [
        (re.compile(re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"), template)
        for template in document()["paths"]
    ]


def template_of(path: str) -> str | None:
    return next((template for pattern, template in templates() if pattern.match(path)), None)


@cache
def validator(pointer: tuple[str, ...]) -> Draft202012Validator:
    """The validator of the schema at `pointer` in the document, compiled once."""
    schema: Any = document()
    for key in pointer:
        schema = schema[key]
    root = {**schema, "components": document()["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def error_pointer(path: str) -> tuple[str, ...]:
    name = "BaseErrors" if path == "/v2" or path.startswith("/v2/") else "ApiErrors"
    return ("components", "schemas", name)


def check(response: httpx.Response) -> None:
    request = response.request
    path, method, status = request.url.path, request.method.lower(), response.status_code
    where = f"{request.method} {path} answered {status}"
    if method == "options" and "access-control-request-method" in request.headers:
        return  # a CORS preflight, answered by the CORS layer, outside the document
    template = template_of(path)
    operations = document()["paths"].get(template, {}) if template else {}
    operation = operations.get("get" if method == "head" else method)
    if operation is None:
        if path in UNDOCUMENTED and status < 400:
            return
        assert status >= 400, f"{where}: neither documented nor an error"
        pointer = error_pointer(path)
    else:
        documented = operation["responses"]
        assert str(status) in documented, f"{where}: status not in the document"
        content = documented[str(status)].get("content")
        if content is None or method == "head":
            assert method == "head" or not response.content, f"{where}: a body, none documented"
            return
        if "text/csv" in content:  # an export
            assert response.headers.get("content-type", "").startswith("text/csv"), where
            return
        media = ("content", "application/json", "schema")
        pointer = ("paths", template, method, "responses", str(status), *media)
    assert response.headers.get("content-type", "").startswith("application/json"), where
    errors = sorted(validator(pointer).iter_errors(response.json()), key=str)
    assert not errors, f"{where}: the body does not match the document: {errors[0]}"


async def acheck(response: httpx.Response) -> None:
    await response.aread()
    check(response)


def sync_check(response: httpx.Response) -> None:
    response.read()
    check(response)


def hooks() -> dict[str, list[Any]]:
    """event_hooks of an httpx.AsyncClient whose every response is checked."""
    return {"response": [acheck]}


def sync_hooks() -> dict[str, list[Any]]:
    return {"response": [sync_check]}
