"""Rate limits with the `limits` library: per token (per client address before login), per
client address for failed authentications, and per email on login and register. In process
by default; in Redis, shared by every worker and node, when CRM_REDIS_URL is set."""

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.requests import Request

from crm.config import Settings
from crm.errors import ApiError

EMAIL_LIMIT = "10/minute"
# Bounds on waiting for Redis: a server that is away or hung costs a request at most this
# long before it is answered 503, instead of hanging.
REDIS_CONNECT_SECONDS = 5
REDIS_COMMAND_SECONDS = 5
ADDRESS_PREFIX = "addr:"
FAILURE_PREFIX = "authfail:"
# Never limited: probes, the metrics scrape and the API's own documentation: its page and
# the Swagger UI assets it loads, served under DOCS_ASSETS.
EXEMPT_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
DOCS_ASSETS = "/docs/assets"


def is_exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith(f"{DOCS_ASSETS}/")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.storage: Storage = (
            storage_from_string(  # type: ignore[assignment]
                f"async+{settings.redis_url}",
                # Every failure of Redis as one kind, StorageError: a request answers 503.
                wrap_exceptions=True,
                connect_timeout=REDIS_CONNECT_SECONDS,
                stream_timeout=REDIS_COMMAND_SECONDS,
            )
            if settings.redis_url
            else MemoryStorage()
        )
        self.strategy = FixedWindowRateLimiter(self.storage)
        off = settings.rate_limit.strip().lower() == "off"
        self.request_limit: RateLimitItem | None = None if off else parse(settings.rate_limit)
        # CRM_RATE_LIMIT=off turns off every limit per token and per address, this one too.
        failures_off = off or settings.auth_failure_limit.strip().lower() == "off"
        self.failure_limit = None if failures_off else parse(settings.auth_failure_limit)
        self.email_limit = parse(EMAIL_LIMIT)
        # For the start-up line: where counters live (never the URL, which may hold a password).
        self.storage_kind = "in Redis" if settings.redis_url else "in process"
        if off:
            self.storage_kind += " (per-token limit off)"

    async def ping(self) -> bool:
        """Whether the counters' storage answers (in process, it always does)."""
        return await self.storage.check()

    async def hit(self, item: RateLimitItem, key: str) -> Decision:
        allowed = await self.strategy.hit(item, key)
        stats = await self.strategy.get_window_stats(item, key)
        return Decision(
            allowed=allowed,
            limit=item.amount,
            remaining=stats.remaining,
            reset_seconds=max(0, math.ceil(stats.reset_time - time.time())),
        )

    async def hit_request(self, authorization: str | None, client: str) -> Decision | None:
        """Count one request against its token, or its client address without one."""
        if self.request_limit is None:
            return None
        if authorization and authorization[:7].lower() == "bearer ":
            secret = authorization[7:].strip()
            key = "token:" + hashlib.sha256(secret.encode()).hexdigest()
        else:
            key = ADDRESS_PREFIX + client
        return await self.hit(self.request_limit, key)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says Redis is away or too slow: answered 503, not 500."""
    return isinstance(error, StorageError)


async def limit_unknown_token(request: Request) -> None:
    """A token that turned out to be unknown counts against the client's address twice: as
    a request without one would (made-up tokens cannot dodge CRM_RATE_LIMIT), and as a failed
    authentication (CRM_AUTH_FAILURE_LIMIT), so that guessing tokens stays slow however high
    CRM_RATE_LIMIT is. The answer's headers tell the budget that is nearer its end."""
    limiter: RateLimiter = request.app.state.limiter
    if limiter.request_limit is None:
        return
    client = request.client.host if request.client else ""
    decisions = [await limiter.hit(limiter.request_limit, ADDRESS_PREFIX + client)]
    if limiter.failure_limit is not None:
        decisions.append(await limiter.hit(limiter.failure_limit, FAILURE_PREFIX + client))
    # A refusal first, else the fewest remaining.
    decision = min(decisions, key=lambda each: (each.allowed, each.remaining))
    if not decision.allowed:
        raise ApiError(429, "Rate limit exceeded; slow down.", decision.headers())
    # In place of the headers of the made-up token's own count (Pipeline.handle).
    request.state.response_headers.update(decision.headers())


async def limit_per_email(request: Request, email: str) -> None:
    """Login, register and password change: at most 10 a minute per email, whatever
    CRM_RATE_LIMIT says."""
    limiter: RateLimiter = request.app.state.limiter
    decision = await limiter.hit(limiter.email_limit, "email:" + email.strip().lower())
    if not decision.allowed:
        raise ApiError(
            429, "Too many attempts for this email; try again later.", decision.headers()
        )
