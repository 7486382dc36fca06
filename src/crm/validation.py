"""What every request body and parameter is held to, whatever the endpoint."""

import json
import re
from collections.abc import Callable, Coroutine
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi.routing import APIRoute
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from starlette.requests import Request
from starlette.responses import Response

from crm.errors import DETAIL

# Neither PostgreSQL text nor JSONB can hold a NUL character: a value with one is refused.
NUL_REASON = "May not contain a NUL character."

# How deep a JSON body may nest (the top-level object is 1). No body of the API needs more
# than a few levels; the bound keeps every walk of a body, the library ones included, far
# from the recursion limit.
MAX_DEPTH = 32
MALFORMED = "Malformed JSON: the body could not be parsed."
TOO_DEEP = f"The body is nested more than {MAX_DEPTH} levels deep."
NOT_UTF8 = "The body must be UTF-8."
DUPLICATE_KEY = "Given more than once in the same object."
TOO_MANY_DIGITS = "A number in the body has too many digits."
DIGITS = re.compile(r"[0-9]+")


class BodyError(Exception):
    """A request body that is not acceptable JSON; `errors` maps a field (or `detail`)
    to a reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.errors = {field: reason}
        super().__init__(f"{field}: {reason}")


def contains_nul(value: Any) -> bool:
    """Whether a JSON value (or a query value) holds a NUL character anywhere. Iterative,
    so that no nesting overflows the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return False


def parse_digits(raw: str, maximum: int) -> int | None:
    """ASCII digits (no sign, blank or underscore) as a number, or None for anything else.
    A number above `maximum` is read as maximum + 1 without converting its digits, so that
    int() never meets a long string (Python refuses more than 4,300 digits)."""
    if not DIGITS.fullmatch(raw):
        return None
    significant = raw.lstrip("0")
    if len(significant) > len(str(maximum)):
        return maximum + 1
    return int(significant or "0")


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether a JSON value has arrays or objects more than `limit` levels deep; one level
    at a time, without recursion."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        below: list[Any] = []
        for item in level:
            below.extend(item.values() if isinstance(item, dict) else item)
        level = [item for item in below if isinstance(item, dict | list)]
        if not level:
            return False
    return True


def path_to(root: Any, target: Any) -> list[str]:
    """The keys and indexes from `root` to the container `target` (identity), found
    without recursion."""
    stack: list[tuple[Any, list[str]]] = [(root, [])]
    while stack:
        item, path = stack.pop()
        if item is target:
            return path
        if isinstance(item, dict):
            stack.extend((value, [*path, str(key)]) for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, [*path, str(index)]) for index, value in enumerate(item))
    return []


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, or BodyError: UTF-8 only, no key twice in one object (which
    of the two was meant cannot be told), nested at most MAX_DEPTH levels deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(DETAIL, NOT_UTF8) from None
    duplicates: list[tuple[dict[str, Any], str]] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    duplicates.append((obj, key))
                    break
                seen.add(key)
        return obj

    try:
        value = json.loads(text, object_pairs_hook=unique_keys)
    except RecursionError:
        raise BodyError(DETAIL, TOO_DEEP) from None
    except json.JSONDecodeError:
        raise BodyError(DETAIL, MALFORMED) from None
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        raise BodyError(DETAIL, TOO_MANY_DIGITS) from None
    if nests_deeper_than(value, MAX_DEPTH):
        raise BodyError(DETAIL, TOO_DEEP)
    if duplicates:
        obj, key = duplicates[0]
        raise BodyError(".".join([*path_to(value, obj), key]), DUPLICATE_KEY)
    return value


class InputModel(BaseModel):
    """A request body: a field it does not have is refused, and so is a NUL character."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def refuse_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError(NUL_REASON)
        return value


# A name a body must give: trimmed, so that blanks alone are "This field may not be blank.".
RequiredName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


# A user's name: optional, trimmed as a required name is; null clears it.
UserName = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    Field(description="The user's name (optional)."),
]


# --- Email addresses: one rule for records and members ----------------------------------

EMAIL_REASON = "Enter a valid email address, like name@example.com."
# name@host.tld: a name, and a host of at least two dot-separated labels; no blanks, one @.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _email(value: str) -> str:
    if not EMAIL_PATTERN.fullmatch(value):
        raise ValueError(EMAIL_REASON)
    return value


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "maxLength": 254, "pattern": f"^{EMAIL_PATTERN.pattern}$"}),
]


# --- Numbers read exactly ---------------------------------------------------------------

# The furthest exponent a Decimal holds: a number written beyond it stands as this far out,
# on its side, so that it stays out of every range a field has rather than failing to parse.
EDGE_EXPONENT = 999_999_999_999_999_999


def exact_number(text: str) -> Decimal:
    """A JSON (or CSV) number with a fraction or an exponent, exactly as written: a float
    would turn 1e-400 into 0 and 0.1000000000000000055 into 0.1."""
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what a Decimal holds
        mantissa, _, exponent = text.lower().partition("e")
        sign = "-" if mantissa.startswith("-") else ""
        side = "-" if exponent.startswith("-") else ""
        return Decimal(f"{sign}1e{side}{EDGE_EXPONENT}")


class ExactNumbersRequest(Request):
    """A request whose JSON body reads numbers with a fraction or an exponent as Decimals
    (crm.validation.exact_number); whole numbers stay ints."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=exact_number)
        return self._json


class ExactNumbersRoute(APIRoute):
    """The route of an endpoint whose body holds amounts, which must be read exactly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactNumbersRequest(request.scope, request.receive))

        return exact
