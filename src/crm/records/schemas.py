"""The response models of an entity, built from its spec: the record, the detail (with
`custom_field_definitions`) and the list envelope; an entity declared with a spec gets
them, and so its part of the OpenAPI document, for free."""

import types
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, create_model

from crm.records.read import PROFILE_LINKS
from crm.records.spec import EntitySpec
from crm.schemas import Answer, CustomFieldDefinition, ProfileRef, list_of


class Unseen(Answer):
    """A linked record the caller may not see, as a write's answer shows it: its id alone."""

    id: uuid.UUID


@dataclass(frozen=True)
class EntitySchemas:
    record: type[BaseModel]
    detail: type[BaseModel]
    list: type[BaseModel]


def read_type(annotation: Any) -> Any:
    """How a writable field's value reads back: as written, but an amount (a Decimal) is a
    JSON number."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return float if get_args(annotation)[0] is Decimal else annotation
    if origin in (Union, types.UnionType):
        return Union[tuple(read_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    return float if annotation is Decimal else annotation


def model_name(spec: EntitySpec) -> str:
    return "".join(part.capitalize() for part in spec.singular.split("_"))


NUMBER = (
    "Read-only: a positive integer unique server-wide and never reused, the record's id in "
    "the /v2/ dialect."
)


@cache
def schemas_of(spec: EntitySpec) -> EntitySchemas:
    written = spec.schema.model_fields
    fields: dict[str, Any] = {"id": uuid.UUID, "number": int}
    for name, info in written.items():
        fields[name] = read_type(info.rebuild_annotation())
    for link in spec.links:
        # An id (or a name), null while the linked record is deleted.
        fields[link.field] = (uuid.UUID if link.by == "id" else str) | None
    for many in spec.many:
        fields[many.field] = list[uuid.UUID]
    for name in PROFILE_LINKS:
        fields[name] = ProfileRef | None
    fields["tags"] = list[str]
    fields["custom_fields"] = dict[str, Any]
    columns = spec.model.__table__.columns  # type: ignore[attr-defined]
    for name in spec.read_only:
        if spec.link(name) is None:
            column = columns[name]
            kind = column.type.python_type
            fields[name] = kind | None if column.nullable else kind
    fields["created_at"] = fields["updated_at"] = datetime
    name = model_name(spec)
    # Every key is always present: required, whatever the body's defaults.
    described = {field: info.description for field, info in written.items()}
    described["number"] = NUMBER
    definitions: dict[str, Any] = {
        field: (kind, Field(description=described.get(field))) for field, kind in fields.items()
    }
    record = create_model(name, __base__=Answer, **definitions)
    detail = create_model(
        f"{name}Detail",
        __base__=record,
        custom_field_definitions=(list[CustomFieldDefinition], ...),
    )
    return EntitySchemas(record=record, detail=detail, list=list_of(record))
