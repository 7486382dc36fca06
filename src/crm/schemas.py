"""The shapes the API answers with, as Pydantic models for the OpenAPI document: the two
error envelopes, the list envelope, and the finishing of the document (the errors every
operation can answer, named request bodies, no 422 where the API sends 400).

The endpoints build their answers as plain dicts, for speed; the test suite validates every
response it receives against the document, which keeps the two from drifting."""

import uuid
from datetime import datetime
from functools import cache
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.json_schema import models_json_schema

from crm.errors import is_v2

REF = "#/components/schemas/{model}"


class Answer(BaseModel):
    """An answer's shape: exactly these keys, so that a key the code adds and the document
    lacks fails the suite's check."""

    model_config = ConfigDict(extra="forbid")


class Status(Answer):
    status: Literal["ok"] = "ok"


class ApiErrors(Answer):
    """The error envelope of the /api/ dialect."""

    errors: dict[str, str] = Field(
        description="Reasons by field (`custom_fields.<key>` for a custom field), or under"
        " `detail` for anything that is not one field.",
        examples=[{"email": "A lead with this email already exists."}],
    )


class BaseError(Answer):
    code: str = Field(examples=["invalid"])
    message: str
    details: str
    resource: str | None = None
    field: str | None = Field(default=None, description="The attribute at fault, if one is.")


class BaseErrorMeta(Answer):
    type: Literal["error"] = "error"


class BaseErrorItem(Answer):
    error: BaseError
    meta: BaseErrorMeta


class BaseErrorsMeta(Answer):
    type: Literal["errors"] = "errors"
    http_status: str = Field(examples=["422 Unprocessable Entity"])
    logref: str = Field(description="The request id (`X-Request-Id`).")


class BaseErrors(Answer):
    """The error envelope of the /v2/ dialect (Zendesk Sell / Base CRM)."""

    errors: list[BaseErrorItem]
    meta: BaseErrorsMeta


class ProfileRef(Answer):
    """A member, as a record's `assigned_to` and `created_by` read."""

    id: uuid.UUID
    email: str
    name: str | None
    is_active: bool = Field(description="False once deactivated or removed from the org.")


class CustomFieldDefinition(Answer):
    id: uuid.UUID
    entity: str = Field(examples=["lead"])
    key: str = Field(examples=["industry"])
    label: str
    type: Literal["text", "number", "date", "checkbox", "dropdown"]
    options: list[str] | None = Field(description="A dropdown's options; null otherwise.")
    required: bool
    filterable: bool


class UserRef(Answer):
    id: uuid.UUID
    email: str
    name: str | None


class OrgRef(Answer):
    id: uuid.UUID
    name: str


class LoginErrors(ApiErrors):
    """A login's 400: the error envelope, with the orgs to choose from when `org_id` is
    missing for a member of several orgs."""

    orgs: list[OrgRef] | None = Field(
        default=None, description="The orgs of the user's active memberships: give one's id."
    )


class RoleRef(Answer):
    id: uuid.UUID = Field(description="The profile: the membership of the user in the org.")
    role: Literal["admin", "user"]


class Me(Answer):
    user: UserRef
    org: OrgRef
    profile: RoleRef


class Session(Me):
    access_token: str = Field(min_length=64, max_length=64)
    refresh_token: str = Field(min_length=64, max_length=64)
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the access token expires.")


class PersonalToken(Answer):
    id: uuid.UUID
    name: str
    scopes: list[Literal["read", "write"]]
    created_at: datetime
    expires_at: datetime | None


class NewPersonalToken(PersonalToken):
    token: str = Field(min_length=64, max_length=64, description="Shown this once only.")


class Member(Answer):
    """A profile of the org."""

    id: uuid.UUID
    email: str
    name: str | None
    role: Literal["admin", "user"]
    is_active: bool
    status: Literal["active", "inactive", "invited"] = Field(
        description="`invited`: no access until the user accepts; not yet a member."
    )


class Reassigned(RootModel[dict[str, int]]):
    """How many records moved, by entity (its URL's name: `leads`, `contacts`, ...)."""


class Invitation(Answer):
    """A profile to which the caller's user is invited."""

    id: uuid.UUID = Field(description="The profile, and the invitation's id.")
    org: OrgRef
    role: Literal["admin", "user"]
    status: Literal["invited", "active"]
    created_at: datetime


class UploadedRow(Answer):
    row: int = Field(description="The spreadsheet line: the header is line 1.")
    id: uuid.UUID


class RefusedRow(Answer):
    row: int = Field(description="The spreadsheet line: the header is line 1.")
    errors: dict[str, str] = Field(examples=[{"email": "value is not a valid email address"}])


class SkippedRow(Answer):
    row: int = Field(description="The spreadsheet line: the header is line 1.")
    id: uuid.UUID | None = Field(
        description="The record an earlier upload of the file created from the row; null"
        " when the caller does not see it (or it was deleted since)."
    )
    reason: str


class UploadReport(Answer):
    """A CSV upload's answer: one entry per data row."""

    created: list[UploadedRow]
    updated: list[UploadedRow]
    errors: list[RefusedRow]
    skipped: list[SkippedRow] = Field(
        description="Rows without a natural key that an earlier upload of the same file"
        " created a record from: not created again."
    )


@cache
def list_of(item: type[BaseModel]) -> type[BaseModel]:
    """The list envelope {"count", "count_estimated", "next", "previous", "results"} of
    `item`s."""
    return create_model(
        f"{item.__name__}List",
        __base__=Answer,
        count=(int, Field(description="The number of results over all pages.")),
        count_estimated=(
            bool,
            Field(
                description="True when `count` is the database's estimate: a record list"
                " counts exactly up to CRM_EXACT_COUNT_LIMIT results (1,000 by default),"
                " and above that on PostgreSQL answers the query planner's estimate."
            ),
        ),
        next=(str | None, Field(description="The next page's absolute URL; null on the last.")),
        previous=(
            str | None,
            Field(description="The previous page's absolute URL; null on the first."),
        ),
        results=(list[item], ...),  # type: ignore[valid-type]
    )


# --- the errors every operation can answer ----------------------------------------------

WHEN = {
    400: "Validation failed, malformed JSON, or an unknown field or parameter.",
    401: "The token is missing, unknown, expired or revoked (with `WWW-Authenticate`).",
    403: "The role or the record's visibility forbids it.",
    404: "No such record in the caller's org.",
    405: "The path exists, but not with this method (with `Allow`).",
    413: "The body is over its limit.",
    409: "Another request is writing the same records, or importing the same file, at this"
    " moment (with `Retry-After`); try again.",
    415: "The body is not JSON in UTF-8 sent as `Content-Type: application/json`.",
    422: "The body failed validation (`field` names the attribute).",
    429: "Rate limit exceeded (with `Retry-After`).",
    500: "An unexpected error; never a stack trace: the body carries the request id.",
    503: "The database or Redis does not answer; try again shortly.",
}
BODY_METHODS = frozenset({"post", "put", "patch"})
WRITE_METHODS = BODY_METHODS | {"delete"}
UPLOAD_SUFFIX = "/upload/"
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})

# Request bodies named by the endpoints (openapi_extra), added to the components.
_BODIES: dict[str, type[BaseModel]] = {}


def body_doc(model: type[BaseModel], example: Any = None) -> dict[str, Any]:
    """openapi_extra of an endpoint that reads its JSON body itself: `model` documents it,
    as a named component."""
    _BODIES[model.__name__] = model
    media: dict[str, Any] = {"schema": {"$ref": REF.format(model=model.__name__)}}
    if example is not None:
        media["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


def error_doc(status: int) -> dict[int | str, dict[str, Any]]:
    """`responses` of an endpoint that answers `status` beyond those every one of its kind
    does (e.g. a 401 without a bearer token)."""
    return {status: {"model": ApiErrors, "description": described(status)}}


def described(status: int) -> str:
    return f"{HTTPStatus(status).phrase}: {WHEN[status]}"


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, beyond those it declares itself."""
    if path in HEALTH_PATHS:
        return [405, 500, *([503] if path == "/readyz" else [])]
    statuses = [400, 403, 405, 413, 429, 500, 503]
    if operation.get("security"):
        statuses.append(401)
    if "{" in path:
        statuses.append(404)
    if method in WRITE_METHODS:
        statuses.append(409)  # a wait for another transaction's writes that ran out
    if method in BODY_METHODS and not path.endswith(UPLOAD_SUFFIX):  # an upload is multipart
        statuses.append(415)
        if is_v2(path):
            statuses.append(422)
    return statuses


def finish(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    shared = [(model, "validation") for model in _BODIES.values()]
    shared += [(ApiErrors, "serialization"), (BaseErrors, "serialization")]
    _, definitions = models_json_schema(shared, ref_template=REF)  # type: ignore[arg-type]
    schemas.update(definitions.get("$defs", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)  # FastAPI's 422, which this API never answers
    for path, item in document["paths"].items():
        envelope = REF.format(model="BaseErrors" if is_v2(path) else "ApiErrors")
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "$ref" in body["schema"]:  # named by body_doc: the model alone
                body["schema"] = {"$ref": body["schema"]["$ref"]}
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's; /v2/ gets its own below
            for status in error_statuses(path, method, operation):
                responses.setdefault(
                    str(status),
                    {
                        "description": described(status),
                        "content": {"application/json": {"schema": {"$ref": envelope}}},
                    },
                )
    return document


def install(app: FastAPI) -> None:
    """Serve the finished document at /openapi.json (built once, on the first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
