"""Separately configured app instances for the foundation tests (signup off, small limits,
a route that raises), each with its own client address so that rate-limit keys never
collide with another test's, nor with an earlier run's in a shared Redis."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from crm.app import create_app
from tests.conftest import make_settings
from tests.openapi_check import hooks


def fresh_address() -> str:
    """A client address no other test (or earlier run) uses."""
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


def fresh_app(database_url: str, **overrides: Any) -> FastAPI:
    return create_app(make_settings(database_url, **overrides))


@asynccontextmanager
async def client_of(app: FastAPI, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `app` that comes from `address` (a fresh one unless given); the
    app's database engine is closed afterwards."""
    transport = httpx.ASGITransport(app=app, client=(address or fresh_address(), 50000))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", event_hooks=hooks()
        ) as client:
            yield client
    finally:
        await app.state.db.dispose()
