"""The endpoints of an entity, built from its spec: list, create, CSV upload, retrieve,
PATCH, PUT, soft DELETE and restore."""

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.db import SessionDep
from crm.errors import ApiError
from crm.pagination import list_envelope, no_query_params, refuse_unknown_params
from crm.records import importer, service
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


UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


def dry_run_param(request: Request) -> bool:
    """`?dry_run=true`: the upload's answer, with nothing committed."""
    refuse_unknown_params(request, ("dry_run",))
    value = request.query_params.get("dry_run", "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, {"dry_run": "Must be true or false."})
    return value in ("true", "1")


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

    @router.post("/upload/", name=f"upload_{spec.name}", openapi_extra=UPLOAD_DOC)
    async def upload_endpoint(
        request: Request, principal: CurrentPrincipal, session: SessionDep
    ) -> JSONResponse:
        dry_run = dry_run_param(request)
        form = await request.form()
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(400, {"file": "Send the CSV file as the multipart field `file`."})
            report = await importer.import_csv(
                session, spec, principal, upload.file, dry_run=dry_run
            )
        finally:
            await form.close()
        return JSONResponse(report)

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
