"""The outermost request pipeline: request id and security headers, CORS when configured, a
readable request target and an allowed Host, rate limit, body size limit, the 503 when the
database or Redis is away, and the 500 that never shows a stack trace. Pure ASGI, so that it
costs little on every request."""

import email.message
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm import db, ratelimit
from crm.config import Settings
from crm.errors import DETAIL, error_response, is_v2
from crm.logs import log_request
from crm.metrics import Metrics
from crm.ratelimit import RateLimiter, is_exempt
from crm.validation import BodyError, parse_json_body

logger = logging.getLogger("crm")

REQUEST_ID_MAX = 200
UPLOAD_SUFFIX = "/upload/"
JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})
UNSUPPORTED_MEDIA_TYPE = (
    "The body must be JSON in UTF-8, sent as Content-Type: application/json"
    " and without a Content-Encoding."
)
# Answered whatever the Host: a load balancer's probe and a metrics scraper name the node's
# own address.
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# On every answer. Every answer of the API is one caller's data (a session's tokens, records),
# so none is kept by a browser or a shared cache; no content-type sniffing; and no Referer
# carrying a URL's ids to wherever a page of the API links.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# What a browser page may send and read across origins (CRM_CORS_ORIGINS): bearer tokens, so
# no credentials (cookies) are involved.
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "X-Request-Id")
CORS_EXPOSED_HEADERS = (
    "X-Request-Id",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "WWW-Authenticate",
    "Allow",
)
# Seconds a client waits before trying again when the database or Redis does not answer.
UNAVAILABLE_RETRY_AFTER = "5"
BUSY_RETRY_AFTER = "1"


def pick_request_id(raw: bytes | None) -> str:
    """The client's own id when it is at most 200 printable characters, else a new one."""
    if raw and len(raw) <= REQUEST_ID_MAX:
        value = raw.decode("latin-1")
        if value.isascii() and value.isprintable() and value.strip():
            return value
    return uuid.uuid4().hex


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def unreadable_target(scope: Scope) -> str | None:
    """Why the path or the query string is not UTF-8 once percent-decoded, if it is not:
    the framework would put U+FFFD in place of the bytes and answer for what nobody sent."""
    if not is_utf8(unquote_to_bytes(scope.get("raw_path") or b"")):
        return "The path is not valid UTF-8 once percent-decoded."
    if not is_utf8(unquote_to_bytes(scope.get("query_string") or b"")):
        return "The query string is not valid UTF-8 once percent-decoded."
    return None


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it was raised from, a group's members too. Not what it was raised
    while handling: a bug in an `except` block is a 500."""
    pending = [error]
    while pending:
        current = pending.pop()
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__cause__ is not None:
            pending.append(current.__cause__)


def unavailable(error: BaseException) -> str | None:
    """Which service `error` (or what it was raised from) says is away, if any."""
    for current in causes(error):
        if db.is_unavailable(current):
            return "The database"
        if ratelimit.is_unavailable(current):
            return "Redis, which keeps the rate limits,"
    return None


def waited_for_writers(error: BaseException) -> bool:
    """Whether `error`, or what it was raised from, is a wait for another transaction's
    writes that ran out (db.waited_too_long_for_writers)."""
    return any(db.waited_too_long_for_writers(current) for current in causes(error))


def host_name(raw: bytes | None) -> str:
    """The host of a Host header, in lower case and without its port."""
    host = (raw or b"").decode("latin-1").strip().lower()
    if host.startswith("["):  # an IPv6 address
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


class Pipeline:
    def __init__(
        self, app: ASGIApp, settings: Settings, limiter: RateLimiter, metrics: Metrics | None
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        # CORS inside the request id and the headers, around the rest: a preflight is answered
        # with a request id, and what the pipeline refuses (429, 413, 503) carries the CORS
        # headers a browser needs to let its page read the answer.
        self.guarded: ASGIApp = self.guard
        if settings.cors_origins:
            self.guarded = CORSMiddleware(
                self.guard,
                allow_origins=settings.cors_origins,
                allow_methods=CORS_METHODS,
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
            )
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = pick_request_id(headers.get(b"x-request-id"))
        state = scope.setdefault("state", {})
        state["request_headers"] = headers
        state["request_id"] = request_id
        # Added to every response: the request id, the security headers, and the rate-limit
        # headers once known (handle() adds them here).
        extra = {"X-Request-Id": request_id, **SECURITY_HEADERS}
        state["response_headers"] = extra
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    # An endpoint's own limit answer (a 429 by email or address) wins.
                    response_headers.setdefault(name, value)
            await send(message)

        try:
            await self.guarded(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - began
            principal = state.get("principal")
            route = getattr(scope.get("route"), "path", None)  # the template, not the raw path
            log_request(
                request_id,
                principal.org_id if principal is not None else None,
                scope["method"],
                route,
                status,
                seconds * 1000,
            )
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, seconds)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, with what it raises answered: 503 when the database or Redis is away
        (a client retries), else 500; never a stack trace."""
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        state = scope["state"]
        request_id = state["request_id"]
        try:
            await self.handle(scope, receive, tracked, state["request_headers"], state)
        except Exception as error:
            # Anything: the app, and the rate-limit storage before it.
            if started:
                raise
            service = unavailable(error)
            if service is None and waited_for_writers(error):
                logger.warning(
                    "request %s waited too long for other writers: %r", request_id, error
                )
                status = 409
                detail = (
                    "Another request is writing the same records; try again shortly"
                    f" (request id {request_id})."
                )
                headers = {"Retry-After": BUSY_RETRY_AFTER}
            elif service is None:
                logger.exception("unhandled error in request %s", request_id)
                status = 500
                detail = f"Internal server error; quote request id {request_id} when reporting it."
                headers = {}
            else:
                # Expected while a service is away: one line, no stack trace.
                logger.warning("request %s: %s does not answer: %r", request_id, service, error)
                status = 503
                detail = f"{service} does not answer; try again shortly (request id {request_id})."
                headers = {"Retry-After": UNAVAILABLE_RETRY_AFTER}
            await error_response(scope, status, {DETAIL: detail}, headers)(scope, receive, tracked)

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        state: dict[str, Any],
    ) -> None:
        extra: dict[str, str] = state["response_headers"]

        async def reply(status: int, errors: dict[str, str]) -> None:
            await error_response(scope, status, errors)(scope, receive, send)

        if not is_exempt(scope["path"]):
            auth = headers.get(b"authorization")
            client = scope.get("client") or ("", 0)
            decision = await self.limiter.hit_request(
                auth.decode("latin-1") if auth else None, client[0]
            )
            if decision is not None:
                extra.update(decision.headers())
                if not decision.allowed:
                    await reply(429, {DETAIL: "Rate limit exceeded; slow down."})
                    return

        unreadable = unreadable_target(scope)
        if unreadable:
            await reply(400, {DETAIL: unreadable})
            return
        if self.settings.allowed_hosts and scope["path"] not in HEALTH_PATHS:
            host = host_name(headers.get(b"host"))
            if host not in self.settings.allowed_hosts:
                await reply(400, {DETAIL: f"This server does not serve the host {host!r}."})
                return

        upload = scope["path"].endswith(UPLOAD_SUFFIX)
        limit = self.settings.upload_max_bytes if upload else self.settings.body_max_bytes
        too_large = {DETAIL: f"The request body is larger than the limit of {limit} bytes."}
        length = headers.get(b"content-length")
        size = None
        if length is not None:
            # Digits and no more of them than the limit has: int() never meets a long string.
            if not length.isdigit() or len(length) > len(str(limit)) or int(length) > limit:
                await reply(413, too_large)
                return
            size = int(length)
        chunked = size is None and bool(headers.get(b"transfer-encoding"))
        # Every body but an upload's is JSON, checked here once for both dialects.
        json_body = scope["method"] in JSON_METHODS and not upload
        if chunked or (json_body and size):
            body = await read_body(receive, limit)
            if body is None:
                await reply(413, too_large)
                return
            if json_body and body:
                if not is_json_media_type(headers):
                    await reply(415, {DETAIL: UNSUPPORTED_MEDIA_TYPE})
                    return
                try:
                    parse_json_body(body)
                except BodyError as error:
                    await reply(422 if is_v2(scope["path"]) else 400, error.errors)
                    return
            receive = replay(body, receive)

        if scope["method"] == "HEAD":
            # HEAD is GET without the body, on every path that answers GET.
            as_get = {**scope, "method": "GET"}
            await self.app(as_get, receive, without_body(send))
            scope["route"] = as_get.get("route")  # for the request's log line
            return
        await self.app(scope, receive, send)


def is_json_media_type(headers: dict[bytes, bytes]) -> bool:
    """Whether the request says its body is JSON (application/json or application/*+json)
    in UTF-8 (no charset, or utf-8), and not compressed."""
    encoding = headers.get(b"content-encoding", b"identity").strip().lower()
    raw = headers.get(b"content-type")
    if raw is None or encoding != b"identity":
        return False
    message = email.message.Message()
    message["content-type"] = raw.decode("latin-1")
    kind = message.get_content_type()  # lower-cased; text/plain when malformed
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        return False
    return message.get_content_charset() in (None, "utf-8", "utf8")


def without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body of a request sent without a length, or None past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """Hands the buffered body to the app once, then the client's own messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
