"""Page parameters and the list envelope {"count", "count_estimated", "next", "previous",
"results"}."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from crm.errors import ApiError
from crm.links import absolute_url
from crm.validation import parse_digits

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
MAX_OFFSET = 2**62


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        # Capped to what a 64-bit SQL OFFSET takes: any page that far is past the end.
        return min((self.page - 1) * self.page_size, MAX_OFFSET)


def positive_int(name: str, raw: str, maximum: int | None = None) -> int:
    """ASCII digits; without a maximum, a number too long to convert is read as one past
    MAX_OFFSET: a page that far is past the end, as any other."""
    value = parse_digits(raw, maximum or MAX_OFFSET)
    if value is None:
        raise ApiError(400, {name: "A whole number is required."})
    if value < 1 or (maximum is not None and value > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ApiError(400, {name: f"Must be at least 1{bound}."})
    return value


def refuse_unknown_params(request: Request, allowed: Iterable[str]) -> None:
    known = set(allowed)
    unknown = [key for key in request.query_params if key not in known]
    if unknown:
        raise ApiError(400, {key: "Unknown parameter." for key in unknown})


async def no_query_params(request: Request) -> None:
    """For endpoints that take no query parameter: every one is unknown (400). Async, as
    every dependency: FastAPI runs a plain function in a worker thread, a costly hop."""
    refuse_unknown_params(request, ())


def page_params(request: Request) -> PageParams:
    """The page parameters of a list; every list passes here, so a parameter given twice
    is refused here (which of the two was meant cannot be told)."""
    query = request.query_params
    repeated = [key for key in query if len(query.getlist(key)) > 1]
    if repeated:
        raise ApiError(400, dict.fromkeys(repeated, "Given more than once."))
    page = positive_int("page", query["page"]) if "page" in query else 1
    size = query.get("page_size")
    page_size = positive_int("page_size", size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE
    return PageParams(page, page_size)


async def plain_page_params(request: Request) -> PageParams:
    """For lists that take nothing but the page parameters."""
    refuse_unknown_params(request, ("page", "page_size"))
    return page_params(request)


def list_envelope(
    request: Request,
    params: PageParams,
    count: int,
    results: Sequence[Any],
    *,
    count_estimated: bool = False,
    has_next: bool | None = None,
) -> dict[str, Any]:
    """A page by `page`. `has_next` is what the list read past the page, where `count` (an
    estimate) cannot tell."""
    last_page = max(1, -(-count // params.page_size))
    if has_next is None:
        has_next = params.page < last_page
    has_previous = params.page > 1
    return {
        "count": count,
        "count_estimated": count_estimated,
        "next": absolute_url(request, page=params.page + 1) if has_next else None,
        "previous": (
            absolute_url(request, page=min(params.page - 1, last_page)) if has_previous else None
        ),
        "results": list(results),
    }


async def page_of(
    session: AsyncSession,
    request: Request,
    params: PageParams,
    statement: Select[*tuple[Any, ...]],
    result: Callable[..., Any],
) -> dict[str, Any]:
    """A page by `page` of what `statement` selects, in its order, as the list envelope:
    `result` makes each row's item from the row's columns; the count is of the same rows."""
    chosen = statement.order_by(None).subquery()
    count = await session.scalar(select(func.count()).select_from(chosen)) or 0
    rows = await session.execute(statement.limit(params.page_size).offset(params.offset))
    return list_envelope(request, params, count, [result(*row) for row in rows])


def cursor_envelope(
    request: Request,
    count: int,
    results: Sequence[Any],
    *,
    count_estimated: bool,
    next_cursor: str | None,
    previous_cursor: str | None,
) -> dict[str, Any]:
    """A page by `cursor`: the links carry the cursors of the pages beside it."""
    return {
        "count": count,
        "count_estimated": count_estimated,
        "next": absolute_url(request, cursor=next_cursor) if next_cursor else None,
        "previous": absolute_url(request, cursor=previous_cursor) if previous_cursor else None,
        "results": list(results),
    }
