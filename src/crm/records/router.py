"""The endpoints of an entity, built from its spec: list, create, retrieve, PATCH, PUT,
soft DELETE and restore."""

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.db import SessionDep
from crm.pagination import list_envelope, no_query_params
from crm.records import service
from crm.records.query import list_records
from crm.records.scope import fetch
from crm.records.spec import EntitySpec
from crm.responses import JSONResponse

JSONBody = Body(default=None)
NO_PARAMS = [Depends(no_query_params)]  # only lists take query parameters


def body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    """The request body's schema for the OpenAPI document (the body is validated by the
    service, which knows which fields are server-derived)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def build_router(spec: EntitySpec) -> APIRouter:
    router = APIRouter(prefix=f"/api/{spec.name}", tags=[spec.name])
    full = body_doc(spec.schema.model_json_schema())
    partial = body_doc(service.patch_schema(spec.schema).model_json_schema())

    @router.get("/", name=f"list_{spec.name}")
    async def list_endpoint(
        request: Request, principal: CurrentPrincipal, session: SessionDep
    ) -> JSONResponse:
        params, count, results = await list_records(session, spec, principal, request)
        return JSONResponse(list_envelope(request, params, count, results))

    @router.post(
        "/", status_code=201, name=f"create_{spec.name}", dependencies=NO_PARAMS, openapi_extra=full
    )
    async def create_endpoint(
        principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        return JSONResponse(await service.create(session, spec, principal, body), status_code=201)

    @router.get("/{record_id}/", name=f"retrieve_{spec.name}", dependencies=NO_PARAMS)
    async def retrieve_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep
    ) -> JSONResponse:
        row = await fetch(session, spec, principal, record_id)
        return JSONResponse(await service.detail(session, spec, row))

    @router.patch(
        "/{record_id}/", name=f"patch_{spec.name}", dependencies=NO_PARAMS, openapi_extra=partial
    )
    async def patch_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        changed = await service.change(session, spec, principal, record_id, body, partial=True)
        return JSONResponse(changed)

    @router.put(
        "/{record_id}/", name=f"put_{spec.name}", dependencies=NO_PARAMS, openapi_extra=full
    )
    async def put_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        changed = await service.change(session, spec, principal, record_id, body, partial=False)
        return JSONResponse(changed)

    @router.delete(
        "/{record_id}/", status_code=204, name=f"delete_{spec.name}", dependencies=NO_PARAMS
    )
    async def delete_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep
    ) -> Response:
        await service.soft_delete(session, spec, principal, record_id)
        return Response(status_code=204)

    @router.post("/{record_id}/restore/", name=f"restore_{spec.name}", dependencies=NO_PARAMS)
    async def restore_endpoint(
        record_id: str, principal: AdminPrincipal, session: SessionDep
    ) -> JSONResponse:
        return JSONResponse(await service.restore(session, spec, principal, record_id))

    return router
