"""List queries: filters, search, ordering and pagination (by `page` or by `cursor`), from
the query string. One statement for the page with its count; past the count's exact bound,
on PostgreSQL, the planner's estimate (see counted)."""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ClauseElement,
    ColumnElement,
    Executable,
    Integer,
    ScalarSelect,
    Select,
    String,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.visitors import InternalTraversal
from starlette.requests import Request

from crm.auth.tokens import Principal
from crm.customfields.service import definitions, filter_value
from crm.db import folded
from crm.errors import ApiError
from crm.ids import parse_id
from crm.pagination import PageParams, page_params
from crm.records.models import SEARCH_COLUMN
from crm.records.read import alive, read_bodies, read_chosen
from crm.records.scope import org_conditions, scope, visible_to
from crm.records.spec import EntitySpec
from crm.validation import NUL_REASON, contains_nul

COMMON_PARAMS = (
    "page",
    "page_size",
    "cursor",
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


def search_expression(table: Any, fields: tuple[str, ...]) -> ColumnElement[str]:
    """The searched text: the fields joined by spaces (on PostgreSQL the table stores it,
    folded, as migration 0008 joins them)."""
    empty: Any = literal_column("''")
    space: Any = literal_column("' '")
    parts = [func.coalesce(table.c[name], empty) for name in fields]
    expression: Any = parts[0]
    for part in parts[1:]:
        expression = expression.op("||")(space).op("||")(part)
    return type_coerce(expression, String)


def searched_text(spec: EntitySpec, dialect: str) -> ColumnElement[str]:
    """The folded text `search` looks in: on PostgreSQL the column the table stores it in,
    elsewhere the expression itself."""
    if dialect == "postgresql":
        return literal_column(f"{spec.name}.{SEARCH_COLUMN}", String)
    return folded(search_expression(spec.table, spec.search))


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


@dataclass(frozen=True)
class SortKey:
    """One expression of an ORDER BY. `field` names the record attribute whose value the
    key compares; `nulls` marks the key `field IS NULL` that goes before a nullable field."""

    field: str
    expression: Any  # a column, or `column IS NULL`
    descending: bool
    nulls: bool = False


@dataclass(frozen=True)
class Ordering:
    """A list's order, from `ordering`: the fields as given (normalised, e.g. `-title`) and
    the sort keys, the id last. A nullable field sorts by (field IS NULL, field): its nulls
    come last ascending and first descending on both databases, and a cursor compares keys
    that are never null. The id follows the direction of the last field, so that one index
    (org, field, id) serves a single-field ordering both ways."""

    text: str
    keys: tuple[SortKey, ...]

    @cached_property
    def clauses(self) -> list[UnaryExpression[Any]]:
        return [
            key.expression.desc() if key.descending else key.expression.asc() for key in self.keys
        ]

    @property
    def fields(self) -> list[str]:
        """The attributes a cursor holds, in key order: each ordered field, then the id."""
        return [key.field for key in self.keys if not key.nulls]

    def reversed(self) -> "Ordering":
        flipped = (
            SortKey(key.field, key.expression, not key.descending, key.nulls) for key in self.keys
        )
        return Ordering(self.text, tuple(flipped))


@lru_cache(maxsize=1024)  # an Ordering never changes; most lists ask for a few
def parse_ordering(spec: EntitySpec, raw: str | None) -> Ordering:
    columns = spec.table.c
    allowed = set(spec.ordering) | set(ALWAYS_ORDERABLE)
    terms = [term.strip() for term in (raw or DEFAULT_ORDERING).split(",") if term.strip()]
    if not terms:
        raise ApiError(400, {"ordering": "Name at least one field."})
    # Each field at most once, so never more terms than fields (SQLite takes at most 2,000).
    if len(terms) > len(allowed):
        raise ApiError(400, {"ordering": f"At most {len(allowed)} fields, each once."})
    keys: list[SortKey] = []
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
        field = columns[name]
        descending = term.startswith("-")
        if field.nullable:
            keys.append(SortKey(name, field.is_(None), descending, nulls=True))
        keys.append(SortKey(name, field, descending))
    # Ties broken by id, so that pages never overlap.
    keys.append(SortKey("id", columns.id, keys[-1].descending))
    return Ordering(",".join(terms), tuple(keys))


# --- Cursors -----------------------------------------------------------------------------


def cursor_value(value: Any) -> Any:
    """A sort key's value as JSON."""
    if isinstance(value, datetime | date | uuid.UUID | Decimal):
        return value.isoformat() if isinstance(value, datetime | date) else str(value)
    return value


def make_cursor(ordering: Ordering, record: Any, *, before: bool = False) -> str:
    """The opaque cursor of the page after (or before) `record` in this ordering."""
    values = [cursor_value(getattr(record, name)) for name in ordering.fields]
    return encode_cursor(ordering, values, before=before)


def encode_cursor(ordering: Ordering, values: list[Any], *, before: bool) -> str:
    body = {"o": ordering.text, "b": before, "v": values}
    packed = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


@dataclass(frozen=True)
class Cursor:
    before: bool  # the page before the record, else the page after it
    values: list[Any]  # the record's value of each of the ordering's fields (as JSON)


# Any number a record holds is below this (amounts, probabilities); a larger one is no cursor.
CURSOR_INT_BOUND = 2**62
BAD_CURSOR = {"cursor": "Not a cursor of this list: use a `next` or `previous` link as given."}


def parse_cursor(spec: EntitySpec, ordering: Ordering, raw: str) -> Cursor:
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        before, values, text = body["b"], body["v"], body["o"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise ApiError(400, BAD_CURSOR) from None
    if text != ordering.text:
        raise ApiError(400, {"cursor": f"This cursor is of the ordering '{text}'."})
    if not isinstance(before, bool) or not isinstance(values, list):
        raise ApiError(400, BAD_CURSOR)
    if len(values) != len(ordering.fields):
        raise ApiError(400, BAD_CURSOR)
    columns = spec.table.c
    try:
        typed = [
            read_cursor_value(columns[name], value)
            for name, value in zip(ordering.fields, values, strict=True)
        ]
    except (ValueError, TypeError, ArithmeticError):
        raise ApiError(400, BAD_CURSOR) from None
    return Cursor(before, typed)


def read_cursor_value(column: Any, value: Any) -> Any:
    """A cursor's value for `column`, typed as the column binds it; ValueError or TypeError
    for one that no record of the list could have given."""
    if value is None:
        if not column.nullable:
            raise ValueError("null")
        return None
    kind = column.type.python_type
    if isinstance(value, str) and contains_nul(value):
        raise ValueError("NUL")
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is Decimal and isinstance(value, str):
        number = Decimal(value)
        if number.is_finite() and abs(number) < CURSOR_INT_BOUND:
            return number
    if kind is int and type(value) is int and abs(value) < CURSOR_INT_BOUND:
        return value
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(kind)


def past(ordering: Ordering, values: list[Any]) -> ColumnElement[bool]:
    """Records after the one whose field values are `values`, in `ordering`. A nullable
    field's null is compared by its `IS NULL` key alone (the field is null throughout that
    group). One row comparison when every key goes one way: PostgreSQL then starts its
    index scan at the record."""
    by_field = dict(zip(ordering.fields, values, strict=True))
    keys: list[tuple[SortKey, Any]] = []
    for key in ordering.keys:
        value = by_field[key.field]
        if key.nulls:
            keys.append((key, value is None))
        elif value is not None or key.field == "id":
            keys.append((key, value))
    bound = [bindparam(None, value, type_=key.expression.type) for key, value in keys]
    if len({key.descending for key, _ in keys}) == 1:
        left = tuple_(*(key.expression for key, _ in keys))
        right = tuple_(*bound)
        return left < right if keys[0][0].descending else left > right
    branches = []
    for n, (key, _) in enumerate(keys):
        equal = [k.expression == b for (k, _), b in zip(keys[:n], bound[:n], strict=True)]
        beyond = key.expression < bound[n] if key.descending else key.expression > bound[n]
        branches.append(and_(*equal, beyond))
    return or_(*branches)


# --- Counts ------------------------------------------------------------------------------


class explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, on PostgreSQL: its plan, not its rows. Cached
    like the statement it explains (compiled once per shape of query); its one column is
    read by position."""

    inherit_cache = True
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]

    @property
    def _all_selected_columns(self) -> list[Any]:
        return []

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(explain, "postgresql")
def _explain(element: explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


TOTAL_LABEL = "total_count"
STATISTICS_LABEL = "table_statistics"


def table_statistics(table: Any) -> ColumnElement[Any]:
    """On PostgreSQL, a column of the page's own statement (evaluated once, not per row):
    the table's pages now, and its pages and rows when last analyzed or vacuumed
    (pg_class), from which the planner estimates its rows."""
    return literal_column(
        "(SELECT ARRAY[pg_relation_size(oid) / current_setting('block_size')::int,"
        f" relpages, reltuples]::float8[] FROM pg_class WHERE oid = '{table.name}'::regclass)"
    ).label(STATISTICS_LABEL)


def count_column(
    table: Any, conditions: list[ColumnElement[bool]], dialect: str, limit: int
) -> ScalarSelect[Any]:
    """The number of matching records as a column of the page's own statement (one round
    trip for both). PostgreSQL counts at most `limit` + 1 of them, so that a count never
    reads more (see counted); SQLite counts them all."""
    matching = select(literal(1)).select_from(table).where(*conditions)
    if dialect == "postgresql":
        matching = matching.limit(limit + 1)
    return select(func.count()).select_from(matching.subquery()).correlate(None).scalar_subquery()


class ListQuery:
    """The statements of one list: its page with the count (`page`), the count alone for a
    page past the end, and the planner's estimate of the count. `counting` are the
    conditions counted, `choosing` those that choose the page (a cursor's as well)."""

    def __init__(
        self,
        spec: EntitySpec,
        ordering: Ordering,
        counting: list[ColumnElement[bool]],
        choosing: list[ColumnElement[bool]],
        dialect: str,
        count_limit: int,
        limit: Any,
        offset: Any = None,
        *,
        shared: bool = False,
    ) -> None:
        """`shared`: built once for many requests (plain_query), whose estimates are kept."""
        self.shared = shared
        self.spec = spec
        self.ordering = ordering
        self.counting = counting
        self.choosing = choosing
        self.dialect = dialect
        self.count_limit = count_limit
        self.limit = limit
        self.offset = offset

    @cached_property
    def page(self) -> Select[Any]:
        """The page's records with what they read of linked rows, each with the count (as
        TOTAL_LABEL). The records are chosen on their table alone, then read with their
        links: the rows an offset skips are never joined, and an unfiltered page is an
        index-only scan of the ordering's index."""
        # Plain named columns: a proxy of the table's own would copy their foreign keys.
        clauses = self.ordering.clauses
        chosen: Select[Any, Any] = (
            select(column("org_id"), column("id"))
            .select_from(self.spec.table)
            .where(*self.choosing)
            .order_by(*clauses)
            .limit(self.limit)
            .offset(self.offset)
        )
        count = count_column(self.spec.table, self.counting, self.dialect, self.count_limit)
        statement = read_chosen(self.spec, chosen.subquery("chosen"))
        statement = statement.add_columns(count.label(TOTAL_LABEL), *self.statistics)
        return statement.order_by(*clauses)

    @cached_property
    def count_alone(self) -> Select[Any]:
        count = count_column(self.spec.table, self.counting, self.dialect, self.count_limit)
        return select(count.label(TOTAL_LABEL), *self.statistics)

    @property
    def statistics(self) -> list[ColumnElement[Any]]:
        """What says whether an estimate of the count is still good (PostgreSQL only)."""
        return [table_statistics(self.spec.table)] if self.dialect == "postgresql" else []

    @cached_property
    def estimate(self) -> explain:
        return explain(select(literal(1)).select_from(self.spec.table).where(*self.counting))


@lru_cache(maxsize=256)
def plain_query(
    spec: EntitySpec,
    ordering: Ordering,
    *,
    admin: bool,
    offset: bool,
    dialect: str,
    count_limit: int,
) -> ListQuery:
    """The statements of a list by `page` without filters, the most asked of all, built once
    per shape: what a request gives (its org, its profile, the page's bounds) are parameters
    (plain_parameters), so that SQLAlchemy neither builds the statements nor computes their
    cache keys again. `offset`: whether the page skips records."""
    conditions = org_conditions(spec, bindparam("org_id"), deleted=False)
    if not admin:
        conditions += visible_to(spec, bindparam("profile_id"))
    return ListQuery(
        spec,
        ordering,
        conditions,
        conditions,
        dialect,
        count_limit,
        bindparam("page_limit", type_=Integer),
        bindparam("page_offset", type_=BigInteger) if offset else None,
        shared=True,
    )


def plain_parameters(principal: Principal, limit: int, offset: int | None) -> dict[str, Any]:
    """The values of a plain_query's parameters, for one request."""
    parameters = {"org_id": principal.org_id, "page_limit": limit}
    if not principal.is_admin:
        parameters["profile_id"] = principal.profile_id
    if offset is not None:
        parameters["page_offset"] = offset
    return parameters


async def counted(
    session: AsyncSession,
    query: ListQuery,
    parameters: dict[str, Any],
    rows: list[Row[Any]],
) -> tuple[int, bool]:
    """The count read with the page `rows` (or alone, for a page past the end), and whether
    it is an estimate: past the exact bound PostgreSQL answers the planner's estimate of
    the rows, at least the bound + 1. The planner scales the rows of the table's last
    ANALYZE by its pages now, but takes the share of an org (and of a user's records) from
    that ANALYZE: a table grown by more than a tenth since is analyzed first, by whichever
    process lists it next, so that the estimate follows an upload wherever it was written."""
    row = rows[0] if rows else (await session.execute(query.count_alone, parameters)).one()
    number = int(row._mapping[TOTAL_LABEL] or 0)
    if query.dialect != "postgresql" or number <= query.count_limit:
        return number, False
    pages, analyzed_pages, analyzed_rows = row._mapping[STATISTICS_LABEL]
    statistics = (analyzed_pages, analyzed_rows)
    key = None
    if pages > analyzed_pages * STALE_GROWTH:
        # Skipped while another session analyzes the table (its statistics come with it).
        await session.execute(text(f"ANALYZE (SKIP_LOCKED) {query.spec.table.name}"))
    elif query.shared:  # the same conditions for every page of this caller's list
        key = (query.spec.name, parameters["org_id"], parameters.get("profile_id"))
        kept = ESTIMATES.get(key)
        if kept is not None and kept.statistics == statistics:
            # What the planner would answer on the same statistics: scaled by the pages.
            return max(round(kept.rows * pages / max(kept.pages, 1)), number), True
    plan = await session.scalar(query.estimate, parameters)
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if key is not None:
        if len(ESTIMATES) >= ESTIMATES_KEPT:
            ESTIMATES.clear()
        ESTIMATES[key] = KeptEstimate(statistics, pages, estimate)
    return max(estimate, number), True


# A table whose pages outgrew those of its last ANALYZE by more than a tenth is analyzed
# again before its rows are estimated (as autovacuum would, in its own time).
STALE_GROWTH = 1.1


@dataclass(frozen=True)
class KeptEstimate:
    """The planner's estimate of a list without filters, kept per process by entity, org
    and (for a user) profile, for as long as the table's statistics are the same: an
    EXPLAIN on every page would cost a statement for an answer that only the table's pages
    change."""

    statistics: tuple[float, float]  # the table's pages and rows of its last ANALYZE
    pages: float  # the table's pages when estimated
    rows: int


ESTIMATES_KEPT = 4096
ESTIMATES: dict[tuple[Any, ...], KeptEstimate] = {}


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
        pattern = folded(like_pattern(term))
        conditions.append(searched_text(spec, dialect).like(pattern, escape="\\"))

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


@dataclass(frozen=True)
class ListPage:
    """One page of a list, by `page` (`params.page`) or by `cursor` (`cursor` is not None:
    the links carry `next_cursor` and `previous_cursor`)."""

    params: PageParams
    count: int
    count_estimated: bool
    results: list[dict[str, Any]]
    has_next: bool
    cursor: str | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None


async def list_records(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    request: Request,
    count_limit: int,
) -> ListPage:
    """`count_limit`: how many results are counted exactly (CRM_EXACT_COUNT_LIMIT)."""
    params = page_params(request)
    query = request.query_params
    raw_cursor = query.get("cursor")
    if raw_cursor is not None and "page" in query:
        raise ApiError(400, {"cursor": "Give either `page` or `cursor`, not both."})
    dialect = session.get_bind().dialect.name
    filters = await filter_conditions(session, spec, principal, request, dialect)
    offset = params.offset or None  # no OFFSET 0, which would keep a subquery apart
    ordering = parse_ordering(spec, query.get("ordering"))
    cursor = parse_cursor(spec, ordering, raw_cursor) if raw_cursor else None
    size = params.page_size
    if raw_cursor is None:
        # One record more than the page: whether a next page exists, whatever the count.
        if filters:
            conditions = [*scope(spec, principal), *filters]
            list_query = ListQuery(
                spec, ordering, conditions, conditions, dialect, count_limit, size + 1, offset
            )
            parameters: dict[str, Any] = {}
        else:
            shape = {"admin": principal.is_admin, "offset": offset is not None}
            list_query = plain_query(
                spec, ordering, **shape, dialect=dialect, count_limit=count_limit
            )
            parameters = plain_parameters(principal, size + 1, offset)
        rows = list(await session.execute(list_query.page, parameters))
        total, estimated = await counted(session, list_query, parameters, rows)
        bodies = read_bodies(spec, rows[:size])
        return ListPage(params, total, estimated, bodies, has_next=len(rows) > size)

    # By cursor: the records past the cursor's, in the ordering or (for the page before
    # it) against it, read from where an index on the ordering starts.
    conditions = [*scope(spec, principal), *filters]
    before = cursor is not None and cursor.before
    scan = ordering.reversed() if before else ordering
    scanned = [*conditions, past(scan, cursor.values)] if cursor is not None else conditions
    list_query = ListQuery(spec, scan, conditions, scanned, dialect, count_limit, size + 1)
    rows = list(await session.execute(list_query.page))
    total, estimated = await counted(session, list_query, {}, rows)
    more = len(rows) > size
    records = rows[:size]
    page = rows[:size][::-1] if before else rows[:size]
    if before:
        records.reverse()
    first, last = (records[0], records[-1]) if records else (None, None)
    has_next = more if not before else cursor is not None
    has_previous = more if before else cursor is not None
    if cursor is not None and first is None:
        # Nothing past the cursor's record: the way back starts at it.
        at = encode_cursor(ordering, [cursor_value(v) for v in cursor.values], before=not before)
        next_cursor = at if before else None
        previous_cursor = None if before else at
    else:
        next_cursor = make_cursor(ordering, last) if has_next and last is not None else None
        previous_cursor = (
            make_cursor(ordering, first, before=True)
            if has_previous and first is not None
            else None
        )
    bodies = read_bodies(spec, page)
    return ListPage(
        params,
        total,
        estimated,
        bodies,
        has_next=next_cursor is not None,
        cursor=raw_cursor,
        next_cursor=next_cursor,
        previous_cursor=previous_cursor,
    )
