"""POST /api/leads/<id>/convert/: the lead becomes an account, a contact and perhaps an
opportunity, linked, in the request's one transaction (any failure rolls all of it back)."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.accounts.spec import ACCOUNTS
from crm.auth.deps import CurrentPrincipal
from crm.auth.tokens import Principal
from crm.contacts.spec import CONTACTS
from crm.customfields.service import definitions
from crm.db import SessionDep, folded, utcnow
from crm.errors import DETAIL, ApiError
from crm.lead_sources.models import LeadSource
from crm.leads.spec import LEADS
from crm.opportunities.spec import OPPORTUNITIES
from crm.pagination import no_query_params
from crm.records import service
from crm.records.fields import Amount, Required255
from crm.records.read import alive
from crm.records.schemas import Unseen, schemas_of
from crm.records.scope import fetch_for_change
from crm.records.spec import EntitySpec
from crm.responses import JSONResponse
from crm.schemas import Answer
from crm.validation import ExactNumbersRoute, InputModel

router = APIRouter(prefix="/api/leads", tags=["leads"], route_class=ExactNumbersRoute)


def object_field(entity: str) -> Any:
    return Field(
        default=None,
        description=f"Fields of the {entity} the convert makes, as its create body takes them"
        " (custom fields included): they are set on it, over what it takes from the lead.",
    )


class ConvertIn(InputModel):
    model_config = {
        **InputModel.model_config,
        "json_schema_extra": {
            "examples": [
                {
                    "account_name": "Acme Corp",
                    "create_opportunity": True,
                    "opportunity_name": "Acme \u2014 Annual 2026",
                    "amount": 24000,
                }
            ]
        },
    }
    account_name: Required255 | None = None
    account_id: uuid.UUID | None = None
    create_opportunity: StrictBool = False
    opportunity_name: Required255 | None = None
    amount: Amount | None = None
    # Validated as the entity's own create body, when the record is made.
    account: dict[str, Any] | None = object_field("account")
    contact: dict[str, Any] | None = object_field("contact")
    opportunity: dict[str, Any] | None = object_field("opportunity")

    @model_validator(mode="after")
    def one_account(self) -> "ConvertIn":
        if (self.account_name is None) == (self.account_id is None):
            raise ValueError("Give exactly one of account_name and account_id.")
        if not self.create_opportunity and (self.opportunity_name or self.amount is not None):
            raise ValueError("opportunity_name and amount need create_opportunity: true.")
        return self


class Converted(Answer):
    lead: schemas_of(LEADS).record  # type: ignore[valid-type]
    account: schemas_of(ACCOUNTS).record | Unseen  # type: ignore[valid-type]
    contact: schemas_of(CONTACTS).record | Unseen  # type: ignore[valid-type]
    opportunity: schemas_of(OPPORTUNITIES).record | None  # type: ignore[valid-type]


def check_objects(body: ConvertIn) -> None:
    """The objects name only fields the convert does not set itself, and only records it
    makes: one for a record it links instead would be lost."""
    errors: dict[str, str] = {}
    if body.account is not None and body.account_id is not None:
        errors["account"] = "The account account_id names is linked as it is: leave out account."
    if body.opportunity is not None and not body.create_opportunity:
        errors["opportunity"] = "opportunity needs create_opportunity: true."
    # The fields that tie the records together, and those the convert's own fields give.
    taken = {
        "account": {"name": "account_name"},
        "contact": {"account": "the convert's account"},
        "opportunity": {
            "account": "the convert's account",
            "contacts": "the convert's contact",
            **({"name": "opportunity_name"} if body.opportunity_name is not None else {}),
            **({"amount": "amount"} if body.amount is not None else {}),
        },
    }
    for kind, fields in taken.items():
        given = getattr(body, kind) or {}
        for name, setter in fields.items():
            if name in given:
                errors[f"{kind}.{name}"] = f"Set by {setter}: leave it out here."
    if errors:
        raise ApiError(400, errors)


async def carried(
    session: AsyncSession,
    principal: Principal,
    spec: EntitySpec,
    lead: Any,
    given: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a record the convert makes takes from the lead (its assignee, tags, description
    and the custom fields its entity defines too), with the fields `given` for it over it."""
    keys = {field.key for field in await definitions(session, principal, spec.singular)}
    custom = {key: value for key, value in (lead.custom_fields or {}).items() if key in keys}
    body: dict[str, Any] = {
        "assigned_to": lead.assigned_to_id,
        "tags": lead.tags or [],
        "description": lead.description,
        "custom_fields": custom,
    }
    given = given or {}
    body.update(given)
    if isinstance(given.get("custom_fields"), dict):
        body["custom_fields"] = {**custom, **given["custom_fields"]}
    return body


async def create_as(
    session: SessionDep,
    spec: EntitySpec,
    principal: Principal,
    body: dict[str, Any],
    renamed: dict[str, str],
) -> dict[str, Any]:
    """Create through the entity's own validation; its errors name the convert's fields:
    those in `renamed` by the convert's own field, the others under the entity's object
    (`contact.custom_fields.<key>`)."""
    try:
        return await service.create(session, spec, principal, body)
    except ApiError as error:
        errors = {
            renamed.get(field, field if field == DETAIL else f"{spec.singular}.{field}"): reason
            for field, reason in error.errors.items()
        }
        raise ApiError(error.status, errors) from None


async def live_account(session: SessionDep, principal: Principal, account_id: uuid.UUID) -> Any:
    model: Any = ACCOUNTS.model
    found = await session.scalar(
        select(model.id)
        .where(model.org_id == principal.org_id, model.id == account_id, *alive(model))
        .with_for_update(read=True)
    )
    if found is None:
        raise ApiError(400, {"account_id": "No live account with this id in this org."})
    return found


async def contact_with_email(session: SessionDep, principal: Principal, email: str | None) -> Any:
    if email is None:
        return None
    model: Any = CONTACTS.model
    return await session.scalar(
        select(model.id).where(
            model.org_id == principal.org_id,
            folded(model.email) == folded(email),
            *alive(model),
        )
    )


async def source_name(
    session: AsyncSession, principal: Principal, source_id: int | None
) -> str | None:
    """The name of the lead's source, as the opportunity's body names it."""
    if source_id is None:
        return None
    return await session.scalar(
        select(LeadSource.name).where(
            LeadSource.org_id == principal.org_id, LeadSource.id == source_id
        )
    )


@router.post(
    "/{record_id}/convert/",
    name="convert_leads",
    dependencies=[Depends(no_query_params)],
    response_model=Converted,
    summary="Convert a lead",
    description="In one transaction: an account (created, or the one given), a contact, an"
    " opportunity when asked, and the lead becomes `converted`, linked to them.",
)
async def convert(
    record_id: str, body: ConvertIn, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    # The lead's row stays locked until the transaction ends: of two converts at once, the
    # second waits, then finds the lead converted.
    lead = await fetch_for_change(session, LEADS, principal, record_id)
    if lead.status == "converted":
        raise ApiError(400, {"detail": "This lead is already converted."})
    check_objects(body)

    if body.account_id is not None:
        account_id = await live_account(session, principal, body.account_id)
    else:
        account_body = {
            **await carried(session, principal, ACCOUNTS, lead, body.account),
            "name": body.account_name,
        }
        renamed = {"name": "account_name"}
        account_id = (await create_as(session, ACCOUNTS, principal, account_body, renamed))["id"]

    contact_id = await contact_with_email(session, principal, lead.email)
    if contact_id is not None and body.contact is not None:
        reason = "A contact with the lead's email exists and is linked as it is: leave out contact."
        raise ApiError(400, {"contact": reason})
    if contact_id is None:
        contact_body = {
            "first_name": lead.first_name or lead.title,
            "last_name": lead.last_name,
            "email": lead.email,
            "phone": lead.phone,
            **await carried(session, principal, CONTACTS, lead, body.contact),
            "account": account_id,
        }
        contact_id = (await create_as(session, CONTACTS, principal, contact_body, {}))["id"]

    opportunity_id = None
    if body.create_opportunity:
        opportunity_body = {
            "name": body.opportunity_name or lead.title,
            "amount": body.amount,
            "source": await source_name(session, principal, lead.source_id),
            **await carried(session, principal, OPPORTUNITIES, lead, body.opportunity),
            "account": account_id,
            "contacts": [contact_id],
        }
        renamed = {
            name: own
            for name, own, value in (
                ("name", "opportunity_name", body.opportunity_name),
                ("amount", "amount", body.amount),
            )
            if value is not None
        }
        opportunity = await create_as(session, OPPORTUNITIES, principal, opportunity_body, renamed)
        opportunity_id = opportunity["id"]

    now = utcnow()
    converted = {
        "status": "converted",
        "converted_at": now,
        "updated_at": now,
        "converted_account_id": account_id,
        "converted_contact_id": contact_id,
        "converted_opportunity_id": opportunity_id,
    }
    await service.update_record(session, LEADS, lead, converted)

    # A linked account or contact the caller may not see reads as its id alone.
    return JSONResponse(
        {
            "lead": await service.read_for(session, LEADS, principal, lead.id),
            "account": await service.read_for(session, ACCOUNTS, principal, account_id),
            "contact": await service.read_for(session, CONTACTS, principal, contact_id),
            "opportunity": (
                await service.read_for(session, OPPORTUNITIES, principal, opportunity_id)
                if opportunity_id is not None
                else None
            ),
        }
    )
