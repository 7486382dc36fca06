"""/v2/lead_sources: the Zendesk Sell (Base CRM) Core API v2 dialect of the lead sources
service. It only translates: query parameters and body envelopes in, records and
collections out, the service's errors into the Base error envelope (errors.py renders every
ApiError of a /v2/ path in it, with `logref` = the request id)."""

from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.db import SessionDep
from crm.errors import ApiError, not_found
from crm.lead_sources import service
from crm.lead_sources.service import (
    ID_MAX,
    NAME_MAX,
    SORT_FIELDS,
    InvalidSource,
    SortKey,
    Source,
    SourceNotFound,
    SourcePage,
    SourceQuery,
)
from crm.links import absolute_url
from crm.responses import JSONResponse
from crm.schemas import Answer, body_doc
from crm.validation import NUL_REASON, contains_nul, parse_digits

router = APIRouter(prefix="/v2/lead_sources", tags=["lead sources (/v2/)"])

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
# Far past any real end, yet an offset every database can hold.
MAX_PAGE = 10**15
MAX_IDS = 1000
QUERY_PARAMETERS = ("page", "per_page", "sort_by", "ids", "name")
WRITABLE = ("name", "resource_type")
# What a client sends back of what it read: ignored in a body.
READ_ONLY = ("id", "creator_id", "created_at", "updated_at")


# --- the documented shapes (OpenAPI) ---------------------------------------------------


class SourceData(Answer):
    id: int = Field(description="Unique identifier of the lead source.")
    creator_id: int | None = Field(description="The number of the user that created it.")
    name: str = Field(max_length=NAME_MAX, description="Unique in the org, whatever its case.")
    resource_type: Literal["lead"]
    created_at: str = Field(description="ISO 8601, UTC.")
    updated_at: str = Field(description="ISO 8601, UTC.")


class SourceMeta(Answer):
    type: Literal["source"] = "source"


class SourceRecord(Answer):
    data: SourceData
    meta: SourceMeta


class CollectionLinks(Answer):
    self: str
    next_page: str | None = Field(default=None, description="Absent on the last page.")
    prev_page: str | None = Field(default=None, description="Absent on the first page.")


class CollectionMeta(Answer):
    type: Literal["collection"] = "collection"
    count: int = Field(description="The number of items in this page.")
    links: CollectionLinks


class SourceCollection(Answer):
    items: list[SourceRecord]
    meta: CollectionMeta


class SourceAttributes(BaseModel):
    """What a body's `data` may hold; the read-only attributes are ignored."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    resource_type: Literal["lead"] = "lead"
    id: int | None = Field(default=None, description="Ignored.")
    creator_id: int | None = Field(default=None, description="Ignored.")
    created_at: str | None = Field(default=None, description="Ignored.")
    updated_at: str | None = Field(default=None, description="Ignored.")


class SourceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: SourceAttributes
    meta: dict[str, Any] | None = Field(default=None, examples=[{"type": "source"}])


BODY_DOC = body_doc(SourceBody, {"data": {"name": "Tom"}, "meta": {"type": "source"}})


# --- translation -----------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with `Z`, to the second, as the Base API writes times."""
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(source: Source) -> dict[str, Any]:
    return {
        "data": {
            "id": source.id,
            "creator_id": source.creator_number,
            "name": source.name,
            "resource_type": source.resource_type,
            "created_at": iso(source.created_at),
            "updated_at": iso(source.updated_at),
        },
        "meta": {"type": "source"},
    }


def refuse(error: service.SourceError) -> NoReturn:
    """The service's error as the dialect answers it."""
    if isinstance(error, InvalidSource):
        raise ApiError(422, {error.field: error.reason}) from None
    if isinstance(error, SourceNotFound):
        raise not_found() from None
    raise error


def path_id(raw: str) -> int:
    """An id from the URL; anything that cannot be one is answered like a missing source."""
    value = parse_digits(raw, ID_MAX)
    if value is None or not 1 <= value <= ID_MAX:
        raise not_found()
    return value


def bad_parameter(name: str, reason: str) -> ApiError:
    return ApiError(400, {name: reason})


def whole_number(name: str, raw: str, maximum: int) -> int:
    value = parse_digits(raw.strip(), maximum)
    if value is None:
        raise bad_parameter(name, "A whole number is required.")
    if not 1 <= value <= maximum:
        raise bad_parameter(name, f"Must be between 1 and {maximum}.")
    return value


def parse_sort(raw: str) -> tuple[SortKey, ...]:
    parts = raw.split(",")
    # Each field at most once, so never more keys than fields (SQLite takes at most 2,000).
    if len(parts) > len(SORT_FIELDS):
        raise bad_parameter("sort_by", f"At most {len(SORT_FIELDS)} fields, each once.")
    keys: list[SortKey] = []
    for part in parts:
        field, _, direction = part.strip().partition(":")
        if field not in SORT_FIELDS:
            raise bad_parameter(
                "sort_by", f"Unknown sort field '{field}'; one of: {', '.join(SORT_FIELDS)}."
            )
        if direction not in ("", "asc", "desc"):
            raise bad_parameter("sort_by", f"Unknown sort order '{direction}'; asc or desc.")
        if any(key.field == field for key in keys):
            raise bad_parameter("sort_by", f"'{field}' is given more than once.")
        keys.append(SortKey(field, descending=direction == "desc"))
    return tuple(keys)


def parse_ids(values: list[str]) -> tuple[int, ...]:
    ids: list[int] = []
    for part in ",".join(values).split(","):
        value = parse_digits(part.strip(), ID_MAX)
        if value is None or not 1 <= value <= ID_MAX:
            raise bad_parameter("ids", "Must be a comma-separated list of lead source ids.")
        ids.append(value)
    if len(ids) > MAX_IDS:
        raise bad_parameter("ids", f"At most {MAX_IDS} ids.")
    return tuple(dict.fromkeys(ids))


def parse_query(request: Request) -> SourceQuery:
    query = request.query_params
    unknown = [key for key in query if key not in QUERY_PARAMETERS]
    if unknown:
        raise ApiError(400, {key: "Unknown parameter." for key in unknown})
    for key in QUERY_PARAMETERS:
        if key != "ids" and len(query.getlist(key)) > 1:
            raise bad_parameter(key, "Given more than once.")
        if any(contains_nul(value) for value in query.getlist(key)):
            raise bad_parameter(key, NUL_REASON)
    return SourceQuery(
        page=whole_number("page", query["page"], MAX_PAGE) if "page" in query else 1,
        per_page=(
            whole_number("per_page", query["per_page"], MAX_PER_PAGE)
            if "per_page" in query
            else DEFAULT_PER_PAGE
        ),
        sort=parse_sort(query["sort_by"]) if "sort_by" in query else (),
        ids=parse_ids(query.getlist("ids")) if "ids" in query else None,
        name=query.get("name"),
    )


def collection(request: Request, query: SourceQuery, page: SourcePage) -> dict[str, Any]:
    links = {"self": absolute_url(request)}
    if page.has_next:
        links["next_page"] = absolute_url(request, page=query.page + 1)
    if query.page > 1:
        previous = query.page - 1
        if page.last_page is not None:  # past the end: back to the last page with items
            previous = min(previous, page.last_page)
        links["prev_page"] = absolute_url(request, page=previous)
    return {
        "items": [record(source) for source in page.items],
        "meta": {"type": "collection", "count": len(page.items), "links": links},
    }


async def attributes(request: Request) -> dict[str, object]:
    """The attributes of a `{"data": {...}, "meta"?: {...}}` body: read-only ones dropped,
    anything else refused (422, naming it)."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise ApiError(422, "Malformed JSON: the body could not be parsed.") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError(422, {"data": 'The body must be an object with a "data" object.'})
    extra = [key for key in body if key not in ("data", "meta")]
    if extra:
        raise ApiError(422, {extra[0]: "Unknown key; a body has data and meta."})
    data: dict[str, object] = body["data"]
    for key in data:
        if key not in WRITABLE and key not in READ_ONLY:
            raise ApiError(422, {key: "Unknown attribute of a lead source."})
    return {key: value for key, value in data.items() if key in WRITABLE}


# --- endpoints -------------------------------------------------------------------------


@router.get("", response_model=SourceCollection, summary="Retrieve all sources")
async def list_sources(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    """Every member reads. `page` (from 1), `per_page` (1 to 100, default 25), `sort_by`
    (`id`, `name`, `updated_at`, `created_at`, each optionally `:desc`, comma-separated),
    `ids` (comma-separated) and `name` (exact)."""
    query = parse_query(request)
    page = await service.list_sources(session, principal.org_id, query)
    return JSONResponse(collection(request, query, page))


@router.post("", response_model=SourceRecord, summary="Create a source", openapi_extra=BODY_DOC)
async def create_source(
    request: Request, principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    """Admins only. The name must be unique in the org, whatever its case (422)."""
    data = await attributes(request)
    try:
        source = await service.create_source(
            session,
            principal.org_id,
            principal.profile_id,
            data.get("name"),
            data.get("resource_type", "lead"),
        )
    except service.SourceError as error:
        refuse(error)
    return JSONResponse(record(source))


@router.get("/{source_id}", response_model=SourceRecord, summary="Retrieve a single source")
async def retrieve_source(
    source_id: str, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    try:
        source = await service.get_source(session, principal.org_id, path_id(source_id))
    except service.SourceError as error:
        refuse(error)
    return JSONResponse(record(source))


@router.put(
    "/{source_id}", response_model=SourceRecord, summary="Update a source", openapi_extra=BODY_DOC
)
async def update_source(
    source_id: str, request: Request, principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    """Admins only. Only the attributes given change; read-only ones are ignored."""
    ident = path_id(source_id)
    data = await attributes(request)
    try:
        source = await service.update_source(session, principal.org_id, ident, data)
    except service.SourceError as error:
        refuse(error)
    return JSONResponse(record(source))


@router.delete(
    "/{source_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a source",
    responses={204: {"description": "Deleted; no body."}},
)
async def delete_source(source_id: str, principal: AdminPrincipal, session: SessionDep) -> Response:
    """Admins only. Leads that used the source keep working with `source: null`."""
    try:
        await service.delete_source(session, principal.org_id, path_id(source_id))
    except service.SourceError as error:
        refuse(error)
    return Response(status_code=204)
