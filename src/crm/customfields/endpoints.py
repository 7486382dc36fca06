"""/api/custom-fields/: definitions per entity. Members read; admins write."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.auth.tokens import Principal
from crm.customfields.models import ENTITIES, CustomField, FieldType
from crm.customfields.service import definition_body, definitions_changed
from crm.db import SessionDep, new_uuid, utcnow
from crm.errors import ApiError, not_found, validation_errors
from crm.ids import parse_id
from crm.pagination import PageParams, page_of, page_params, refuse_unknown_params
from crm.records.service import remove_custom_field
from crm.records.spec import registered
from crm.responses import JSONResponse
from crm.schemas import CustomFieldDefinition, body_doc, list_of
from crm.validation import InputModel

router = APIRouter(prefix="/api/custom-fields", tags=["custom fields"])

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class CustomFieldIn(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    entity: str
    # Not trimmed: " abc " is refused by key_shape rather than silently stored as "abc".
    key: Annotated[str, StringConstraints(strip_whitespace=False)]
    label: str = Field(min_length=1, max_length=200)
    type: FieldType
    options: list[str] | None = None
    required: StrictBool = False
    filterable: StrictBool = False

    @field_validator("entity")
    @classmethod
    def known_entity(cls, value: str) -> str:
        if value not in ENTITIES:
            raise ValueError(f"Must be one of: {', '.join(ENTITIES)}.")
        return value

    @field_validator("key")
    @classmethod
    def key_shape(cls, value: str) -> str:
        if not KEY_PATTERN.fullmatch(value):
            raise ValueError("Must match [a-z][a-z0-9_]{0,62}.")
        return value


class CustomFieldPatch(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    label: str | None = Field(default=None, min_length=1, max_length=200)
    options: list[str] | None = None
    required: StrictBool | None = None
    filterable: StrictBool | None = None


FIXED = ("entity", "key", "type", "id")


def check_options(kind: FieldType, options: list[str] | None) -> None:
    if kind is FieldType.dropdown:
        if not options:
            raise ApiError(400, {"options": "A dropdown needs a non-empty list of options."})
        if any(not option or len(option) > 200 for option in options):
            raise ApiError(400, {"options": "Each option is 1 to 200 characters."})
        if len(set(options)) != len(options):
            raise ApiError(400, {"options": "Options must be distinct."})
    elif options is not None:
        raise ApiError(400, {"options": "Only a dropdown has options."})


async def find(session: SessionDep, principal: Principal, raw_id: str) -> CustomField:
    field = await session.scalar(
        select(CustomField).where(
            CustomField.org_id == principal.org_id, CustomField.id == parse_id(raw_id)
        )
    )
    if field is None:
        raise not_found()
    return field


async def entity_filter(request: Request) -> PageParams:
    refuse_unknown_params(request, ("page", "page_size", "entity"))
    return page_params(request)


@router.get(
    "/",
    response_model=list_of(CustomFieldDefinition),
    summary="List custom field definitions",
    description="Every member reads. `entity` (singular), `page` and `page_size`.",
)
async def list_fields(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    params: PageParams = Depends(entity_filter),
) -> JSONResponse:
    conditions = [CustomField.org_id == principal.org_id]
    if entity := request.query_params.get("entity"):
        if entity not in ENTITIES:
            raise ApiError(400, {"entity": f"Must be one of: {', '.join(ENTITIES)}."})
        conditions.append(CustomField.entity == entity)
    fields = (
        select(CustomField)
        .where(*conditions)
        .order_by(CustomField.entity, CustomField.key, CustomField.id)
    )
    return JSONResponse(await page_of(session, request, params, fields, definition_body))


@router.post(
    "/",
    status_code=201,
    response_model=CustomFieldDefinition,
    summary="Define a custom field",
    description="Admins only. `key` is unique per entity; a dropdown needs `options`.",
)
async def create_field(
    body: CustomFieldIn, principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    check_options(body.type, body.options)
    field = CustomField(
        org_id=principal.org_id,
        id=new_uuid(),
        entity=body.entity,
        key=body.key,
        label=body.label,
        type=body.type,
        options=body.options,
        required=body.required,
        filterable=body.filterable,
        created_at=utcnow(),
    )
    session.add(field)
    try:
        await session.flush()
    except IntegrityError:
        raise ApiError(400, {"key": f"The {body.entity} entity already has this key."}) from None
    await definitions_changed(session, principal.org_id)
    return JSONResponse(definition_body(field), status_code=201)


@router.get(
    "/{field_id}/",
    response_model=CustomFieldDefinition,
    summary="Retrieve a custom field definition",
)
async def retrieve_field(
    field_id: str, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    return JSONResponse(definition_body(await find(session, principal, field_id)))


@router.patch(
    "/{field_id}/",
    response_model=CustomFieldDefinition,
    openapi_extra=body_doc(CustomFieldPatch),
    summary="Change a custom field definition",
    description="Admins only. `entity`, `key` and `type` are fixed (400).",
)
async def change_field(
    field_id: str, body: dict[str, Any], principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    fixed = {name: "Cannot be changed." for name in FIXED if name in body}
    if fixed:
        raise ApiError(400, fixed)
    try:
        patch = CustomFieldPatch.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, validation_errors(list(exc.errors()))) from None
    field = await find(session, principal, field_id)
    if "options" in patch.model_fields_set:
        check_options(FieldType(field.type), patch.options)
        field.options = patch.options
    for name in ("label", "required", "filterable"):
        value = getattr(patch, name)
        if name in patch.model_fields_set:
            if value is None:
                raise ApiError(400, {name: "May not be null."})
            setattr(field, name, value)
    await session.flush()
    await definitions_changed(session, principal.org_id)
    return JSONResponse(definition_body(field))


@router.delete(
    "/{field_id}/",
    status_code=204,
    response_class=Response,
    summary="Delete a custom field definition",
    description="Admins only. The key leaves every record of the entity.",
)
async def delete_field(field_id: str, principal: AdminPrincipal, session: SessionDep) -> Response:
    field = await find(session, principal, field_id)
    spec = registered(field.entity)
    if spec is not None:
        await remove_custom_field(session, spec, principal.org_id, field.key)
    await session.delete(field)
    await session.flush()
    await definitions_changed(session, principal.org_id)
    return Response(status_code=204)
