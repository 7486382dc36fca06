"""Exception types and the two error envelopes: `/api/` ({"errors": {...}}) and the Base
envelope of the `/v2/` dialect."""

import functools
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from crm.responses import JSONResponse

DETAIL = "detail"

# The `code` of a Base error for each status, as Zendesk Sell names them.
V2_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    414: "request_target_too_long",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limit_exceeded",
    431: "request_headers_too_large",
    500: "server_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error answered to the client: `errors` maps a field (or `detail`) to a reason."""

    def __init__(
        self,
        status: int,
        errors: Mapping[str, str] | str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        self.status = status
        self.errors = {DETAIL: errors} if isinstance(errors, str) else dict(errors)
        self.headers = dict(headers or {})
        self.code = code
        super().__init__(f"{status}: {self.errors}")


def bad_request(field: str, reason: str) -> ApiError:
    return ApiError(400, {field: reason})


def not_found() -> ApiError:
    return ApiError(404, "Not found.")


def forbidden(reason: str = "You do not have permission to perform this action.") -> ApiError:
    return ApiError(403, reason)


def unauthorized(
    reason: str = "Authentication credentials were not provided or are invalid.",
) -> ApiError:
    return ApiError(401, reason, headers={"WWW-Authenticate": "Bearer"})


def request_id_of(scope: Mapping[str, Any]) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def error_body(
    path: str,
    status: int,
    errors: Mapping[str, str],
    request_id: str,
    code: str | None = None,
    resource: str | None = None,
) -> dict[str, Any]:
    """The error body for a request to `path`, in the envelope of its dialect."""
    if not is_v2(path):
        return {"errors": dict(errors)}
    items = []
    for field, message in errors.items():
        error: dict[str, Any] = {
            "code": code or V2_CODES.get(status, "error"),
            "message": message,
            "details": message if field == DETAIL else f"{field} {message}",
        }
        if resource:
            error["resource"] = resource
        if field != DETAIL:
            error["field"] = field
        items.append({"error": error, "meta": {"type": "error"}})
    phrase = HTTPStatus(status).phrase
    return {
        "errors": items,
        "meta": {"type": "errors", "http_status": f"{status} {phrase}", "logref": request_id},
    }


def error_response(
    scope: Mapping[str, Any],
    status: int,
    errors: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> Response:
    body = error_body(scope["path"], status, errors, request_id_of(scope), code)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def validation_errors(errors: list[Any]) -> dict[str, str]:
    """FastAPI/Pydantic validation errors as {"field": "reason"}, one reason a field."""
    result: dict[str, str] = {}
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        # A union or tagged type adds its own name to the location; the field is what counts.
        field = ".".join(part for part in loc if not part.startswith(("function-", "list[")))
        kind = err.get("type", "")
        if kind == "json_invalid":
            field, reason = DETAIL, "Malformed JSON: the body could not be parsed."
        elif kind == "extra_forbidden":
            reason = "Unknown field."
        elif kind == "missing":
            reason = "This field is required."
        else:
            reason = str(err.get("msg", "Invalid value."))
            reason = reason.removeprefix("Value error, ")
        result.setdefault(field or DETAIL, reason)
    return result


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette's router names only those of the first
    route that matches the path, and a path often has one route per method; included
    routers hide their routes, so each method is tried against the whole table."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in PROBED_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    # A path that a route spells out (`/api/leads/upload/`) also matches the routes with a
    # parameter in its place (`/api/leads/{record_id}/`), which answer it 404: an id is
    # never a word. Of the documented paths it matches, those with the fewest parameters
    # are the path's.
    paths = request.app.openapi()["paths"]
    templates = [
        template for template in paths if path_pattern(template).fullmatch(request.url.path)
    ]
    if templates:
        fewest = min(template.count("{") for template in templates)
        spelled = {
            method.upper()
            for template in templates
            if template.count("{") == fewest
            for method in paths[template]
        }
        allowed = [method for method in allowed if method in spelled]
    return ", ".join(allowed)


@functools.cache
def path_pattern(template: str) -> re.Pattern[str]:
    """The paths a documented path template (`/api/leads/{record_id}/`) matches."""
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile("[^/]+".join(map(re.escape, parts)))


def install_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request.scope, exc.status, exc.errors, exc.headers, exc.code)

    async def request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status = 422 if is_v2(request.url.path) else 400
        return error_response(request.scope, status, validation_errors(list(exc.errors())))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        reasons = {
            404: "Not found.",
            405: f"Method {request.method} not allowed.",
        }
        reason = reasons.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return error_response(request.scope, exc.status_code, {DETAIL: reason}, headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
