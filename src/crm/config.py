"""Settings, read from CRM_* environment variables (a .env file may supply them)."""

from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends
from limits import parse
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.requests import Request

from crm.db import DEFAULT_POOL_SIZE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./crm.sqlite3"
    redis_url: str | None = None
    # PostgreSQL connections each worker keeps: a request holds one from its token's lookup
    # to its answer, so this many requests at once per worker; more wait for one.
    database_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1)
    rate_limit: str = "100/10seconds"
    # Requests whose bearer token is unknown, expired or revoked, per client address: far
    # fewer than CRM_RATE_LIMIT, so that raising that one for busy integrations never makes
    # guessing tokens cheap.
    auth_failure_limit: str = "20/minute"
    allow_signup: bool = True
    upload_max_bytes: int = 50 * 1024 * 1024
    # A JSON body never needs more than this; larger ones are refused with 413.
    body_max_bytes: int = 1024 * 1024
    access_token_seconds: int = 3600
    refresh_token_seconds: int = 14 * 24 * 3600
    # Where clients reach the API (https://crm.example.com): every absolute link in an
    # answer starts with it instead of the request's own Host header, which anyone can forge.
    public_url: str | None = None
    # Host names the API answers to (comma-separated); a request for another Host is 400.
    # Empty: any host.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Web origins (https://app.example.com) whose pages may call the API from a browser
    # (comma-separated; * for any). Empty: CORS is off, and browsers keep other sites out.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # A line per request (and what else the server says): readable text, or one JSON object.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Prometheus metrics at /metrics; off, /metrics is 404.
    metrics: bool = False
    # A record list counts its results exactly up to this many (an index-only count of
    # that many costs a few milliseconds); past it, PostgreSQL answers the planner's
    # estimate (`count_estimated: true`), so that no page costs a count of the whole org.
    exact_count_limit: int = Field(default=10_000, ge=1)

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip().lower() == "off":
            return value
        try:
            limit = parse(value)
        except ValueError:
            limit = None
        if limit is None or limit.amount < 1:
            raise ValueError("must be a limit such as 100/10seconds or 1000/minute, or off")
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            return tuple(str(host).strip().lower() for host in value if str(host).strip())
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, (list, tuple)):
            return value
        origins = tuple(str(origin).strip() for origin in value if str(origin).strip())
        if "*" in origins:
            if len(origins) > 1:
                raise ValueError("must be * alone, or a list of origins")
            return origins
        return tuple(_origin(origin) for origin in origins)


ORIGIN_FORM = "an origin is scheme://host[:port], such as https://app.example.com"


def _origin(value: str) -> str:
    """A web origin as browsers send it in `Origin` (scheme and host in lower case), or
    ValueError naming the problem."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has a bad port; {ORIGIN_FORM}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// origin; {ORIGIN_FORM}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} has more than an origin; {ORIGIN_FORM}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    """The settings the running app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def settings_dependency(request: Request) -> Settings:
    # Async: FastAPI would run a plain function in a worker thread.
    return app_settings(request)


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
