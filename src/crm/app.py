"""create_app(): routers, middleware and error handlers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from starlette.responses import Response

from crm import VERSION, logs
from crm.accounts.spec import ACCOUNTS
from crm.auth.endpoints import router as auth_router
from crm.config import Settings, get_settings
from crm.contacts.spec import CONTACTS
from crm.customfields.endpoints import router as custom_fields_router
from crm.db import Database
from crm.errors import ApiError, install_handlers, request_id_of
from crm.lead_sources.v2 import router as lead_sources_v2_router
from crm.leads.convert import router as convert_router
from crm.leads.spec import LEADS
from crm.metrics import CONTENT_TYPE, Metrics
from crm.middleware import Pipeline
from crm.opportunities.spec import OPPORTUNITIES
from crm.orgs.endpoints import router as users_router
from crm.ratelimit import DOCS_ASSETS, RateLimiter
from crm.records.router import build_router
from crm.records.spec import EntitySpec
from crm.responses import JSONResponse
from crm.schemas import Status, install
from crm.tasks.spec import TASKS

logger = logging.getLogger("crm")

# Each entity's spec (importing it registers it), in the order of the API reference.
ENTITIES: tuple[EntitySpec, ...] = (LEADS, CONTACTS, ACCOUNTS, OPPORTUNITIES, TASKS)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = Database(settings.database_url, settings.database_pool_size)
    limiter = RateLimiter(settings)
    metrics = Metrics(database.engines) if settings.metrics else None

    logs.configure(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up made (modules, the app and its routes) lives as long as the process:
        # frozen, it is left out of every full garbage collection, which a bulk upload's
        # many objects would otherwise trigger again and again over all of it.
        gc.freeze()
        logger.info(
            "crm %s: database %s, rate limits %s",
            VERSION,
            database.dialect,
            limiter.storage_kind,
        )
        yield
        await database.dispose()

    # /docs with Swagger UI's script, style and icon served from the package under
    # DOCS_ASSETS, not from a CDN: the page works offline and names no other host.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="CRM API",
        version=VERSION,
        description="Leads, contacts, accounts, opportunities and tasks for sales teams.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        redoc_url=None,
        # Operation ids are the routes' names (create_leads), as generated clients name them.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.limiter = limiter
    install_handlers(app)
    app.add_middleware(Pipeline, settings=settings, limiter=limiter, metrics=metrics)

    @app.get("/healthz", tags=["health"], response_model=Status, summary="The process is up")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Status,
        summary="The database and Redis answer",
        description="200 only when the database (and Redis, when rate limits are kept there)"
        " answers; 503 otherwise, each service away named: `database`, `redis`.",
    )
    async def readyz(request: Request) -> JSONResponse:
        database_up, redis_up = await asyncio.gather(database.ping(), limiter.ping())
        # Each reason names the request id, as every other 503 does.
        quoted = f"(request id {request_id_of(request.scope)})"
        away = {}
        if not database_up:
            away["database"] = f"The database does not answer {quoted}."
        if not redis_up:
            away["redis"] = f"Redis, which keeps the rate limits, does not answer {quoted}."
        if away:
            raise ApiError(503, away)
        return JSONResponse({"status": "ok"})

    if metrics is not None:
        # Not in the API's document: it is the operator's, and Prometheus text, not JSON.
        @app.get("/metrics", include_in_schema=False)
        async def metrics_scrape() -> Response:
            return Response(metrics.render(), media_type=CONTENT_TYPE)

    for router in (auth_router, users_router, custom_fields_router, convert_router):
        app.include_router(router)
    for spec in ENTITIES:
        app.include_router(build_router(spec))
    app.include_router(lead_sources_v2_router)
    install(app)
    return app
