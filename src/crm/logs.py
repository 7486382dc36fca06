"""Logging: one line per request (request id, org, method, route template, status,
duration; never a token, a password or a body), readable or JSON (CRM_LOG_FORMAT), at
CRM_LOG_LEVEL."""

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from crm.config import Settings

# The attributes a request's line carries, as JSON keys.
REQUEST_FIELDS = ("request_id", "org_id", "method", "route", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

requests_logger = logging.getLogger("crm.requests")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """The `crm` loggers write to `stream` (standard error) in the configured format; calling
    it again replaces the handler, so each app instance (and worker) sets it once."""
    handler = logging.StreamHandler(stream or sys.stderr)
    json = settings.log_format == "json"
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    logger = logging.getLogger("crm")
    logger.handlers = [handler]
    logger.setLevel(settings.log_level)
    logger.propagate = False
    return handler


def log_request(
    request_id: str,
    org_id: Any,
    method: str,
    route: str | None,
    status: int,
    duration_ms: float,
) -> None:
    if not requests_logger.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": request_id,
        "org_id": str(org_id) if org_id else None,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(duration_ms, 2),
    }
    requests_logger.info(
        "%s %s %s %.1fms request=%s org=%s",
        method,
        route or "-",
        status,
        duration_ms,
        request_id,
        fields["org_id"] or "-",
        extra=fields,
    )
