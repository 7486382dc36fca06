"""The JSON response every endpoint answers with, serialised by orjson."""

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # `default=str` covers asyncpg's own UUID type, which orjson does not know.
        return orjson.dumps(content, default=str, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
