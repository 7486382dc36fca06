"""Exception types and the two error envelopes: `/api/` ({"errors": {...}}) and the Base
envelope of the `/v2/` dialect."""

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
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


# --- What a person reads for each kind of problem the validation library finds ---------
#
# Every error type of Pydantic (pydantic_core.core_schema.ErrorType) has its sentence here,
# naming the rule; the library's own wording never reaches a body. A message is a string, or
# a function of the error's context (its bounds, its choices).

Context = Mapping[str, Any]
Message = str | Callable[[Context], str]

OBJECT = "Must be an object."
DATE = "Must be an ISO 8601 date, YYYY-MM-DD."
DATE_TIME = "Must be an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z."
TIME = "Must be an ISO 8601 time, e.g. 17:00:00."
DURATION = "Must be an ISO 8601 duration, e.g. PT1H."
WHOLE = "Must be a whole number."
NUMBER = "Must be a number."
STRING = "Must be a string."
LIST = "Must be a list."
URL = "Must be a URL, e.g. https://example.com."
UUID = "Must be a UUID."
INVALID = "Not a value this field takes."  # kinds a JSON body cannot meet
OBJECT_TYPES = (
    "model_type",
    "model_attributes_type",
    "dataclass_type",
    "dataclass_exact_type",
    "dict_type",
    "frozen_dict_type",
    "ordered_dict_type",
    "counter_type",
    "mapping_type",
)


def one_of(values: Sequence[str]) -> str:
    return f"Must be one of: {', '.join(values)}."


def choices(ctx: Context) -> str:
    """The values a choice takes, from the error's `expected` ("'a', 'b' or 'c'")."""
    values = re.findall(r"'([^']*)'|\"([^\"]*)\"", str(ctx.get("expected", "")))
    return one_of([single or double for single, double in values])


def at_least_characters(ctx: Context) -> str:
    least = ctx.get("min_length", 1)
    return "This field may not be blank." if least == 1 else f"At least {least} characters."


def items(count: Any) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


def filled(sentence: str) -> Callable[[Context], str]:
    """A message naming the rule's values from the error's context: `{max_length}`."""
    return lambda ctx: sentence.format_map(defaultdict(lambda: None, ctx))


def our_reason(ctx: Context) -> str:
    """A validator of ours raised ValueError: its text is already ours."""
    return str(ctx.get("error", INVALID)) or INVALID


MESSAGES: dict[str, Message] = {
    # Presence and shape
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "no_such_attribute": "Unknown field.",
    "json_invalid": "Malformed JSON: the body could not be parsed.",
    "json_type": "Must be JSON text.",
    "none_required": "Must be null.",
    "frozen_field": "Cannot be changed.",
    "frozen_instance": "Cannot be changed.",
    **dict.fromkeys(OBJECT_TYPES, OBJECT),
    "invalid_key": "Every key must be a string.",
    "union_tag_invalid": lambda ctx: (
        f"Must have {ctx.get('discriminator', 'a type')} one of: {ctx.get('expected_tags', '')}."
    ),
    "union_tag_not_found": lambda ctx: f"Must have {ctx.get('discriminator', 'a type')}.",
    "recursion_loop": "Nested too deeply.",
    "recursion_depth_exceeded": "Nested too deeply.",
    # Lists
    "list_type": LIST,
    "tuple_type": LIST,
    "set_type": LIST,
    "frozen_set_type": LIST,
    "deque_type": LIST,
    "iterable_type": LIST,
    "named_tuple_type": LIST,
    "iteration_error": LIST,
    "set_item_not_hashable": "Every item must be a string or a number.",
    "too_short": lambda ctx: f"At least {items(ctx.get('min_length'))}.",
    "too_long": lambda ctx: f"At most {items(ctx.get('max_length'))}.",
    # Text
    "string_type": STRING,
    "string_unicode": STRING,
    "string_not_ascii": "Must be ASCII text.",
    "string_too_short": at_least_characters,
    "string_too_long": filled("At most {max_length} characters."),
    "string_pattern_mismatch": filled("Must match the pattern {pattern}."),
    "bytes_type": STRING,
    "bytes_too_short": at_least_characters,
    "bytes_too_long": filled("At most {max_length} characters."),
    "bytes_invalid_encoding": STRING,
    # Choices
    "literal_error": choices,
    "enum": choices,
    # Numbers
    "int_type": WHOLE,
    "int_parsing": WHOLE,
    "int_parsing_size": "A whole number too large to be held.",
    "int_from_float": WHOLE,
    "float_type": NUMBER,
    "float_parsing": NUMBER,
    "finite_number": "Must be a finite number.",
    "decimal_type": NUMBER,
    "decimal_parsing": NUMBER,
    "decimal_max_digits": filled("At most {max_digits} digits."),
    "decimal_max_places": filled("At most {decimal_places} decimals."),
    "decimal_whole_digits": filled("At most {whole_digits} digits before the decimal point."),
    "fraction_type": NUMBER,
    "fraction_parsing": NUMBER,
    "complex_type": NUMBER,
    "complex_str_parsing": NUMBER,
    "greater_than": filled("Must be greater than {gt}."),
    "greater_than_equal": filled("Must be at least {ge}."),
    "less_than": filled("Must be less than {lt}."),
    "less_than_equal": filled("Must be at most {le}."),
    "multiple_of": filled("Must be a multiple of {multiple_of}."),
    "bool_type": "Must be true or false.",
    "bool_parsing": "Must be true or false.",
    # Times
    "date_type": DATE,
    "date_parsing": DATE,
    "date_from_datetime_parsing": DATE,
    "date_from_datetime_inexact": "Must be a date, without a time of day.",
    "date_past": "Must be a date in the past.",
    "date_future": "Must be a date in the future.",
    "time_type": TIME,
    "time_parsing": TIME,
    "datetime_type": DATE_TIME,
    "datetime_parsing": DATE_TIME,
    "datetime_object_invalid": DATE_TIME,
    "datetime_from_date_parsing": DATE_TIME,
    "datetime_past": "Must be in the past.",
    "datetime_future": "Must be in the future.",
    "timezone_naive": "Must not have a time zone.",
    "timezone_aware": "Give a time zone, e.g. 2030-01-01T00:00:00Z.",
    "timezone_offset": "Give the time zone the field asks for.",
    "time_delta_type": DURATION,
    "time_delta_parsing": DURATION,
    # Identifiers and addresses
    "uuid_type": UUID,
    "uuid_parsing": UUID,
    "uuid_version": UUID,
    "url_type": URL,
    "url_parsing": URL,
    "url_syntax_violation": URL,
    "url_too_long": filled("A URL of at most {max_length} characters."),
    "url_scheme": filled("A URL starting with {expected_schemes}."),
    # Our own validators
    "value_error": our_reason,
    "assertion_error": our_reason,
    # What only Python code, never a JSON body, can give
    **dict.fromkeys(
        (
            "needs_python_object",
            "get_attribute_error",
            "default_factory_not_called",
            "missing_sentinel_error",
            "ellipsis_error",
            "is_instance_of",
            "is_subclass_of",
            "callable_type",
            "arguments_type",
            "missing_argument",
            "unexpected_keyword_argument",
            "missing_keyword_only_argument",
            "unexpected_positional_argument",
            "missing_positional_only_argument",
            "multiple_argument_values",
        ),
        INVALID,
    ),
}

BODY_NOT_OBJECT = "The body must be a JSON object."


def message_for(error: Mapping[str, Any]) -> str:
    """Our sentence for one error of the library."""
    message = MESSAGES.get(str(error.get("type", "")), INVALID)
    return message if isinstance(message, str) else message(error.get("ctx") or {})


CHOICE_TYPES = ("literal_error", "enum")


def validation_errors(
    errors: list[Any], writable: Mapping[str, Sequence[str]] | None = None
) -> dict[str, str]:
    """FastAPI/Pydantic validation errors as {"field": "reason"}, one reason a field, each
    in our words (MESSAGES). `writable`: for a choice that holds values no body may write
    (set only by the server), the values a body may, which a refusal offers instead."""
    result: dict[str, str] = {}
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        # A union or tagged type adds its own name to the location; the field is what counts.
        field = ".".join(part for part in loc if not part.startswith(("function-", "list[")))
        kind = err.get("type", "")
        if kind == "json_invalid":
            field, reason = DETAIL, message_for(err)
        elif not field and kind in ("missing", *OBJECT_TYPES):
            reason = BODY_NOT_OBJECT  # the body itself: absent, or not an object
        elif kind in CHOICE_TYPES and writable and field in writable:
            reason = one_of(writable[field])
        else:
            reason = message_for(err)
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
