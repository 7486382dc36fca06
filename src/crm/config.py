"""Settings, read from CRM_* environment variables (a .env file may supply them)."""

from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends
from limits import parse
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.requests import Request


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./crm.sqlite3"
    redis_url: str | None = None
    rate_limit: str = "100/10seconds"
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
    # A line per request (and what else the server says): readable text, or one JSON object.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A record list counts its results exactly up to this many; past it, PostgreSQL
    # answers the planner's estimate (`count_estimated: true`), so that no page costs a
    # count of the whole org.
    exact_count_limit: int = Field(default=1_000, ge=1)

    @field_validator("rate_limit")
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


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    """The settings the running app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
