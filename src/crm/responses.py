"""The JSON response every endpoint answers with, serialised by orjson."""

from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


def json_default(value: Any) -> Any:
    """What orjson does not know: an amount (Decimal) is a JSON number, 24000 or 1234.5
    (exact: amounts have at most 15 significant digits); asyncpg's own UUID a string."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


class JSONResponse(StarletteJSONResponse):
    """A JSON response (a subclass of Starlette's, so that the OpenAPI document types its
    body), serialised by orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(
            content, default=json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
        )
