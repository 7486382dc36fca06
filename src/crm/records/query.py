"""List queries: filters, search, ordering and pagination, from the query string. One
statement for the page and one for the count."""

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    exists,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import UnaryExpression
from starlette.requests import Request

from crm.auth.tokens import Principal
from crm.customfields.service import definitions, filter_value
from crm.db import folded
from crm.errors import ApiError
from crm.ids import parse_id
from crm.pagination import PageParams, page_params
from crm.records.read import alive, read_bodies, read_statement
from crm.records.scope import scope
from crm.records.spec import EntitySpec
from crm.validation import NUL_REASON, contains_nul

COMMON_PARAMS = (
    "page",
    "page_size",
    "search",
    "ordering",
    "assigned_to",
    "tags",
    "created_at__gte",
    "created_at__lte",
)
ALWAYS_ORDERABLE = ("created_at", "updated_at")
DEFAULT_ORDERING = "-created_at"
CUSTOM_FIELD_PREFIX = "cf_"
SEARCH_MAX = 200


def search_expression(model: Any, fields: tuple[str, ...]) -> ColumnElement[str]:
    """The searched text: the fields joined by spaces. Literals are inlined so that
    PostgreSQL matches this expression with its trigram index."""
    empty: Any = literal_column("''")
    space: Any = literal_column("' '")
    parts = [func.coalesce(getattr(model, name), empty) for name in fields]
    expression: Any = parts[0]
    for part in parts[1:]:
        expression = expression.op("||")(space).op("||")(part)
    return type_coerce(expression, String)


def like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_moment(param: str, raw: str, *, end_of_day: bool) -> datetime:
    """An ISO 8601 date or date-time as UTC; a bare date on an upper bound means the
    whole of that day (up to its last microsecond, so 9999-12-31 is no overflow). A
    date-time whose UTC time falls outside years 1 to 9999 (0001-01-01T00:00:00+01:00)
    is refused."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, {param: "Must be an ISO 8601 date or date-time."}) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            400, {param: "Out of range: the UTC time must be in years 1 to 9999."}
        ) from None


def parse_ordering(spec: EntitySpec, raw: str | None) -> list[UnaryExpression[Any]]:
    model = spec.model
    allowed = set(spec.ordering) | set(ALWAYS_ORDERABLE)
    terms = [term.strip() for term in (raw or DEFAULT_ORDERING).split(",") if term.strip()]
    if not terms:
        raise ApiError(400, {"ordering": "Name at least one field."})
    # Each field at most once, so never more terms than fields (SQLite takes at most 2,000).
    if len(terms) > len(allowed):
        raise ApiError(400, {"ordering": f"At most {len(allowed)} fields, each once."})
    order: list[UnaryExpression[Any]] = []
    seen: set[str] = set()
    for term in terms:
        name = term.removeprefix("-")
        if name not in allowed:
            raise ApiError(
                400,
                {"ordering": f"Cannot order by '{name}'; use one of {', '.join(sorted(allowed))}."},
            )
        if name in seen:
            raise ApiError(400, {"ordering": f"'{name}' is given more than once."})
        seen.add(name)
        column = getattr(model, name)
        order.append(column.desc() if term.startswith("-") else column.asc())
    order.append(model.id.asc())  # ties broken by id, so that pages never overlap
    return order


def tags_condition(model: Any, tags: list[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return type_coerce(model.tags, JSONB).has_any(array(tags, type_=String))
    each = func.json_each(model.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(tags)))


def custom_field_condition(model: Any, key: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        # @> containment, served by the GIN (jsonb_path_ops) index on custom_fields.
        return type_coerce(model.custom_fields, JSONB).contains({key: value})
    return func.json_extract(model.custom_fields, f'$."{key}"') == value


async def filter_conditions(
    session: AsyncSession, spec: EntitySpec, principal: Principal, request: Request, dialect: str
) -> list[ColumnElement[bool]]:
    model = spec.model
    query = request.query_params
    unknown = [
        key
        for key in query
        if key not in COMMON_PARAMS
        and key not in spec.filters
        and not key.startswith(CUSTOM_FIELD_PREFIX)
    ]
    if unknown:
        raise ApiError(400, {key: "Unknown parameter." for key in unknown})
    if nul := [key for key, value in query.multi_items() if contains_nul(value)]:
        raise ApiError(400, dict.fromkeys(nul, NUL_REASON))
    conditions: list[ColumnElement[bool]] = []

    for name in spec.filters:
        if name not in query:
            continue
        conditions.append(exact_match(spec, principal, name, query[name]))
    if "assigned_to" in query:
        conditions.append(
            model.assigned_to_id == parse_filter_id("assigned_to", query["assigned_to"])
        )
    if "tags" in query:
        tags = [tag.strip() for tag in query["tags"].split(",") if tag.strip()]
        if not tags:
            raise ApiError(400, {"tags": "Name at least one tag."})
        conditions.append(tags_condition(model, tags, dialect))
    if "created_at__gte" in query:
        since = parse_moment("created_at__gte", query["created_at__gte"], end_of_day=False)
        conditions.append(model.created_at >= since)
    if "created_at__lte" in query:
        until = parse_moment("created_at__lte", query["created_at__lte"], end_of_day=True)
        conditions.append(model.created_at <= until)
    if term := query.get("search", "").strip():
        if len(term) > SEARCH_MAX:
            raise ApiError(400, {"search": f"At most {SEARCH_MAX} characters."})
        expression = search_expression(model, spec.search)
        pattern = folded(like_pattern(term))
        conditions.append(folded(expression).like(pattern, escape="\\"))

    cf_params = [key for key in query if key.startswith(CUSTOM_FIELD_PREFIX)]
    if cf_params:
        fields = {f.key: f for f in await definitions(session, principal, spec.singular)}
        for param in cf_params:
            field = fields.get(param.removeprefix(CUSTOM_FIELD_PREFIX))
            if field is None:
                raise ApiError(400, {param: "No such custom field."})
            if not field.filterable:
                raise ApiError(400, {param: "This custom field is not filterable."})
            value = filter_value(field, query[param], param)
            conditions.append(custom_field_condition(model, field.key, value, dialect))
    return conditions


def parse_filter_id(param: str, raw: str) -> Any:
    try:
        return parse_id(raw)
    except ApiError:
        raise ApiError(400, {param: "Must be an id."}) from None


def exact_match(spec: EntitySpec, principal: Principal, name: str, raw: str) -> ColumnElement[bool]:
    """`<field>=value` for an enum field or a link."""
    model = spec.model
    link = spec.link(name)
    if link is None:
        choices = enum_choices(spec, name)
        if choices and raw not in choices:
            raise ApiError(400, {name: f"Must be one of: {', '.join(choices)}."})
        return getattr(model, name) == raw
    column = getattr(model, link.column)
    target = link.target
    by = getattr(target, link.by)
    value = by == parse_filter_id(name, raw) if link.by == "id" else folded(by) == folded(raw)
    # A link to a deleted record reads as null, so it matches no id either.
    matching = select(target.id).where(target.org_id == principal.org_id, value, *alive(target))
    return column.in_(matching)


def enum_choices(spec: EntitySpec, name: str) -> tuple[str, ...]:
    """The values a filterable field may take, from its model column's declared choices."""
    choices: tuple[str, ...] = spec.choices.get(name, ())
    return choices


async def list_records(
    session: AsyncSession, spec: EntitySpec, principal: Principal, request: Request
) -> tuple[PageParams, int, list[dict[str, Any]]]:
    params = page_params(request)
    dialect = session.get_bind().dialect.name
    conditions = [
        *scope(spec, principal),
        *await filter_conditions(session, spec, principal, request, dialect),
    ]
    ordering = parse_ordering(spec, request.query_params.get("ordering"))
    count = int(
        await session.scalar(select(func.count()).select_from(spec.model).where(*conditions)) or 0
    )
    if params.offset >= count:
        # A page past the end: nothing to read (and an offset past what SQL takes is no error).
        return params, count, []
    rows = await session.execute(
        read_statement(spec)
        .where(*conditions)
        .order_by(*ordering)
        .limit(params.page_size)
        .offset(params.offset)
    )
    return params, count, await read_bodies(session, spec, list(rows))
