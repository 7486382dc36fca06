"""The endpoints of an entity, built from its spec: list, create, CSV upload and export,
retrieve, PATCH, PUT, soft DELETE and restore."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.config import app_settings
from crm.db import ListSessionDep, SessionDep
from crm.errors import ApiError
from crm.pagination import (
    cursor_envelope,
    list_envelope,
    no_query_params,
    refuse_unknown_params,
)
from crm.records import exporter, importer, service
from crm.records.query import list_records
from crm.records.schemas import schemas_of
from crm.records.scope import fetch
from crm.records.spec import EntitySpec
from crm.responses import JSONResponse
from crm.schemas import UploadReport, body_doc, error_doc
from crm.validation import ExactNumbersRoute

JSONBody = Body(default=None)
NO_PARAMS = [Depends(no_query_params)]  # only lists take query parameters


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
    # The body is validated by the service, which knows which fields are server-derived;
    # the models only document it.
    # Bodies read their numbers exactly: an amount of 1e-400 or 1.005 is refused, not rounded.
    router = APIRouter(prefix=f"/api/{spec.name}", tags=[spec.name], route_class=ExactNumbersRoute)
    full = body_doc(spec.schema, spec.example)
    partial = body_doc(service.patch_schema(spec.schema))
    models = schemas_of(spec)
    name = spec.name

    @router.get(
        "/",
        name=f"list_{name}",
        response_model=models.list,
        summary=f"List {name}",
        description="A page of the records the caller sees: `page`, `page_size`, `search`,"
        " `ordering`, `tags`, `assigned_to`, `created_at__gte`/`__lte`, the entity's exact-match"
        " filters and `cf_<key>` for filterable custom fields; any other parameter is 400."
        " `cursor` pages by keyset instead of `page` (never both): `cursor=` (empty) is the"
        " first page, and `next`/`previous` then carry the cursor of the page beside it;"
        " a cursor holds its ordering, and used with another is 400. However deep, a page by"
        " cursor costs what the first does. `count` is exact up to CRM_EXACT_COUNT_LIMIT"
        " (10,000 by default) results; past that PostgreSQL answers an estimate, with"
        " `count_estimated: true`.",
    )
    async def list_endpoint(
        request: Request, principal: CurrentPrincipal, session: ListSessionDep
    ) -> JSONResponse:
        limit = app_settings(request).exact_count_limit
        page = await list_records(session, spec, principal, request, limit)
        if page.cursor is None:
            envelope = list_envelope(
                request,
                page.params,
                page.count,
                page.results,
                count_estimated=page.count_estimated,
                has_next=page.has_next,
            )
        else:
            envelope = cursor_envelope(
                request,
                page.count,
                page.results,
                count_estimated=page.count_estimated,
                next_cursor=page.next_cursor,
                previous_cursor=page.previous_cursor,
            )
        return JSONResponse(envelope)

    @router.post(
        "/",
        status_code=201,
        name=f"create_{name}",
        dependencies=NO_PARAMS,
        openapi_extra=full,
        response_model=models.record,
        summary=f"Create a record of {name}",
        description="Answers the full record. Server-derived fields in the body are 400.",
    )
    async def create_endpoint(
        principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        return JSONResponse(await service.create(session, spec, principal, body), status_code=201)

    @router.post(
        "/upload/",
        name=f"upload_{name}",
        openapi_extra=UPLOAD_DOC,
        response_model=UploadReport,
        responses=error_doc(409),
        summary=f"Upload {name} from a CSV file",
        description="Multipart field `file`: a row per record, de-duplicated on the entity's"
        " natural key; one entry per data row in `created`, `updated`, `errors` or"
        " `skipped` (a row without a natural key that an earlier upload of the same file"
        " created a record from)."
        " `?dry_run=true` answers the same and writes nothing.",
    )
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

    @router.get(
        "/export/",
        name=f"export_{name}",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}, "description": "The CSV file."}},
        summary=f"Export {name} as a CSV file",
        description="Admins only. The records the list with the same parameters has (any but"
        " `page`, `page_size` and `cursor`), in its order, as the CSV file the upload takes:"
        " its columns, then `id` (which the upload matches by) and the read-only fields"
        " (which it ignores), so that the file uploads back changing nothing. Cells a"
        " spreadsheet would run as a formula begin with an apostrophe, which the upload"
        " takes away.",
    )
    async def export_endpoint(
        request: Request, principal: AdminPrincipal, session: SessionDep
    ) -> StreamingResponse:
        filters, ordering = await exporter.export_query(session, spec, principal, request)
        database = request.app.state.db

        async def chunks() -> AsyncIterator[bytes]:
            # A session of its own: the request's ends when the endpoint returns.
            async with exporter.snapshot(database) as reading:
                exported = exporter.export_csv(reading, spec, principal.org_id, filters, ordering)
                async for chunk, _ in exported:
                    yield chunk.encode()

        disposition = f'attachment; filename="{name}.csv"'
        return StreamingResponse(
            chunks(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )

    @router.get(
        "/{record_id}/",
        name=f"retrieve_{name}",
        dependencies=NO_PARAMS,
        response_model=models.detail,
        summary=f"Retrieve a record of {name}",
        description="The record with the custom field definitions of its entity, for forms.",
    )
    async def retrieve_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep
    ) -> JSONResponse:
        row = await fetch(session, spec, principal, record_id)
        return JSONResponse(await service.detail(session, spec, principal, row))

    @router.patch(
        "/{record_id}/",
        name=f"patch_{name}",
        dependencies=NO_PARAMS,
        openapi_extra=partial,
        response_model=models.record,
        summary=f"Change a record of {name}",
        description="Only the fields in the body change; a custom field set to null is removed.",
    )
    async def patch_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        changed = await service.change(session, spec, principal, record_id, body, partial=True)
        return JSONResponse(changed)

    @router.put(
        "/{record_id}/",
        name=f"put_{name}",
        dependencies=NO_PARAMS,
        openapi_extra=full,
        response_model=models.record,
        summary=f"Replace a record of {name}",
        description="A writable field left out returns to its default.",
    )
    async def put_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep, body: Any = JSONBody
    ) -> JSONResponse:
        changed = await service.change(session, spec, principal, record_id, body, partial=False)
        return JSONResponse(changed)

    @router.delete(
        "/{record_id}/",
        status_code=204,
        name=f"delete_{name}",
        dependencies=NO_PARAMS,
        response_class=Response,
        summary=f"Delete a record of {name}",
        description="A soft delete: afterwards the record is 404 and out of lists.",
    )
    async def delete_endpoint(
        record_id: str, principal: CurrentPrincipal, session: SessionDep
    ) -> Response:
        await service.soft_delete(session, spec, principal, record_id)
        return Response(status_code=204)

    @router.post(
        "/{record_id}/restore/",
        name=f"restore_{name}",
        dependencies=NO_PARAMS,
        response_model=models.detail,
        summary=f"Restore a deleted record of {name}",
        description="Admins only: undoes a soft delete.",
    )
    async def restore_endpoint(
        record_id: str, principal: AdminPrincipal, session: SessionDep
    ) -> JSONResponse:
        return JSONResponse(await service.restore(session, spec, principal, record_id))

    return router
