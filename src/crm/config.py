"""Settings, read from CRM_* environment variables (a .env file may supply them)."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from pydantic_settings import BaseSettings, SettingsConfigDict
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


@lru_cache
def get_settings() -> Settings:
    return Settings()


def app_settings(request: Request) -> Settings:
    """The settings the running app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
