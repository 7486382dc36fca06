"""Custom field definitions, and the validation of a record's custom_fields against them."""

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.tokens import Principal
from crm.customfields.models import CustomField, FieldType
from crm.errors import DATE, ApiError
from crm.orgs.models import Org
from crm.validation import exact_number

TEXT_MAX = 10_000
# A number is finite and within a signed 64-bit range: json.loads reads NaN, Infinity and
# 1e999 as floats that SQLite corrupts and PostgreSQL refuses, and orjson cannot write an int
# beyond 64 bits (PostgreSQL's jsonb also gives back an integral float such as 1e300 as an
# int, digit by digit).
INT_LIMIT = 2**63
# A `cf_<key>` number: plain decimal notation, ASCII digits only (float() would also take
# "nan", "inf", "1_000" and non-ASCII digits).
NUMBER_PATTERN = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Definition:
    """A custom field definition as the records read it: a value kept between requests."""

    id: uuid.UUID
    entity: str
    key: str
    label: str
    type: str
    options: tuple[str, ...] | None
    required: bool
    filterable: bool


_fields = CustomField.__table__
DEFINITIONS_STATEMENT = (
    select(_fields)
    .where(_fields.c.org_id == bindparam("org_id"), _fields.c.entity == bindparam("entity"))
    .order_by(_fields.c.key)
)

# Per process, by (org, entity): the definitions and the org's custom_fields_version they
# were read at. They are read at or after that version, never before it, so they hold every
# change the version counts; a request of a later version reads them again.
_kept: dict[tuple[uuid.UUID, str], tuple[int, tuple[Definition, ...]]] = {}
KEPT_MAX = 10_000


async def read_definitions(
    session: AsyncSession, org_id: uuid.UUID, entity: str
) -> tuple[Definition, ...]:
    """The org's definitions for `entity`, by key, as the database holds them now."""
    rows = await session.execute(DEFINITIONS_STATEMENT, {"org_id": org_id, "entity": entity})
    return tuple(
        Definition(
            id=row.id,
            entity=row.entity,
            key=row.key,
            label=row.label,
            type=row.type,
            options=tuple(row.options) if row.options is not None else None,
            required=row.required,
            filterable=row.filterable,
        )
        for row in rows
    )


async def definitions(
    session: AsyncSession, principal: Principal, entity: str
) -> tuple[Definition, ...]:
    """The org's definitions for `entity`, by key: kept in the process while the org's
    custom_fields_version (read with the request's token) says they are current."""
    key = (principal.org_id, entity)
    kept = _kept.get(key)
    if kept is not None and kept[0] == principal.custom_fields_version:
        return kept[1]
    fields = await read_definitions(session, principal.org_id, entity)
    if len(_kept) >= KEPT_MAX and key not in _kept:
        del _kept[next(iter(_kept))]  # the oldest
    _kept[key] = (principal.custom_fields_version, fields)
    return fields


async def definitions_changed(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Count a change of the org's definitions, in the transaction that makes it: every
    process reads them again from the next request on."""
    await session.execute(
        update(Org)
        .where(Org.id == org_id)
        .values(custom_fields_version=Org.custom_fields_version + 1)
        .execution_options(synchronize_session=False)
    )


def definition_body(field: CustomField | Definition) -> dict[str, Any]:
    return {
        "id": str(field.id),
        "entity": field.entity,
        "key": field.key,
        "label": field.label,
        "type": str(field.type),
        "options": list(field.options) if field.options is not None else None,
        "required": field.required,
        "filterable": field.filterable,
    }


def is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_storable_number(value: int | float | Decimal) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return -INT_LIMIT < value < INT_LIMIT


def parse_number(raw: str) -> int | Decimal | None:
    """A number in text (a `cf_<key>` value, a CSV cell) as the JSON value it matches (72.0
    as 72), exactly as written (a Decimal when it is not whole), or None when it is no
    storable number. Read as a Decimal, so that an integer is exact and no length overflows."""
    if raw.isdigit() and raw.isascii() and len(raw) < 19:
        return int(raw)  # the common case, a whole number well within range: no Decimal
    if NUMBER_PATTERN.fullmatch(raw) is None:
        return None
    number = exact_number(raw)
    if not is_storable_number(number):
        return None
    return int(number) if number == number.to_integral_value() else number


def stored_number(value: int | float | Decimal) -> int | float | None:
    """A custom field's number as it is kept (a JSON number: an int, or a double), or None
    when keeping it would lose it: a number other than 0 that a double holds only as 0."""
    if isinstance(value, Decimal):
        number = float(value)
        return None if number == 0 and value != 0 else number
    return value


TOO_CLOSE_TO_ZERO = "Too close to 0 to be kept; give 0 or a larger number."


def value_error(field: Definition, value: Any) -> str | None:
    """Why `value` does not fit `field`, or None when it does."""
    kind = field.type  # a FieldType's value: FieldType is a StrEnum
    if kind == FieldType.text:
        if not isinstance(value, str):
            return "Must be a string."
        if len(value) > TEXT_MAX:
            return f"At most {TEXT_MAX} characters."
    elif kind == FieldType.number:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return "Must be a number."
        if not is_storable_number(value):
            return "Must be a finite number between -2**63 and 2**63."
        if stored_number(value) is None:
            return TOO_CLOSE_TO_ZERO
    elif kind == FieldType.checkbox:
        if not isinstance(value, bool):
            return "Must be true or false."
    elif kind == FieldType.date and not is_iso_date(value):
        return DATE
    elif kind == FieldType.dropdown and value not in (field.options or []):
        return f"Must be one of: {', '.join(field.options or [])}."
    return None


def validate_values(
    fields: Sequence[Definition],
    current: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    replace: bool,
) -> dict[str, Any]:
    """The record's new custom_fields. `replace` (create, PUT): `given` is the whole set and
    every required field must be in it. Otherwise (PATCH) the given keys replace the current
    ones and a key set to null is removed."""
    by_key = {field.key: field for field in fields}
    errors: dict[str, str] = {}
    result: dict[str, Any] = {} if replace else {k: v for k, v in current.items() if k in by_key}
    for key, value in given.items():
        field = by_key.get(key)
        if field is None:
            errors[f"custom_fields.{key}"] = "Unknown custom field."
        elif value is None:
            result.pop(key, None)
            if field.required:
                errors[f"custom_fields.{key}"] = "This field is required."
        elif (reason := value_error(field, value)) is not None:
            errors[f"custom_fields.{key}"] = reason
        elif isinstance(value, Decimal):  # a number read exactly, kept as a JSON number
            result[key] = stored_number(value)
        else:
            result[key] = value
    if replace:
        for field in fields:
            if field.required and field.key not in result:
                errors.setdefault(f"custom_fields.{field.key}", "This field is required.")
    if errors:
        raise ApiError(400, errors)
    return result


def filter_value(field: Definition, raw: str, param: str) -> Any:
    """A `cf_<key>` query value as the JSON value stored for that field."""
    kind = FieldType(field.type)
    if kind is FieldType.number:
        number = parse_number(raw)
        kept = None if number is None else stored_number(number)
        if kept is None:
            raise ApiError(400, {param: "Must be a number between -2**63 and 2**63, e.g. -1.5e3."})
        return kept
    if kind is FieldType.checkbox:
        if raw.lower() not in ("true", "false"):
            raise ApiError(400, {param: "Must be true or false."})
        return raw.lower() == "true"
    return raw
