"""/api/users/: the org's profiles. Members read; admins add, change, remove them and hand
their records to another."""

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.auth.passwords import MIN_LENGTH
from crm.auth.tokens import revoke_profile_tokens
from crm.db import SessionDep
from crm.errors import ApiError, not_found
from crm.ids import parse_id
from crm.orgs.models import Membership, Profile, Role, User
from crm.orgs.service import (
    add_member,
    lock_memberships,
    remove_member,
    require_an_active_admin,
)
from crm.pagination import PageParams, no_query_params, page_of, plain_page_params
from crm.records.service import reassign_records
from crm.responses import JSONResponse
from crm.schemas import Member, Reassigned, list_of
from crm.validation import Email, InputModel, UserName

router = APIRouter(prefix="/api/users", tags=["users"])
NO_PARAMS = [Depends(no_query_params)]


class ProfileIn(InputModel):
    email: Email
    password: str | None = Field(
        default=None,
        min_length=MIN_LENGTH,
        max_length=1024,
        description="A new user's; refused for an email that already has a user (invited).",
    )
    role: Role
    name: UserName = None


class ProfilePatch(InputModel):
    role: Role | None = None
    is_active: StrictBool | None = None  # "no" is refused, not read as false


class ReassignIn(InputModel):
    to: uuid.UUID = Field(description="The active member who takes the records.")


def member_status(profile: Profile) -> str:
    if profile.membership is Membership.invited:
        return "invited"
    return "active" if profile.is_active else "inactive"


def profile_body(profile: Profile, user: User) -> dict[str, Any]:
    return {
        "id": str(profile.id),
        "email": user.email,
        "name": user.name,
        "role": profile.role.value,
        "is_active": profile.is_active,
        "status": member_status(profile),
    }


# The profiles /api/users/ shows: its members and those invited, not the removed.
IN_ORG = Profile.membership != Membership.removed


async def org_profile(
    session: AsyncSession, org_id: uuid.UUID, profile_id: str
) -> tuple[Profile, User]:
    """A profile of the org and its user; 404 for any other id, a removed one included."""
    row = (
        await session.execute(
            select(Profile, User)
            .join(User, User.id == Profile.user_id)
            .where(Profile.org_id == org_id, Profile.id == parse_id(profile_id), IN_ORG)
        )
    ).one_or_none()
    if row is None:
        raise not_found()
    return row[0], row[1]


@router.get(
    "/",
    response_model=list_of(Member),
    summary="List the org's members",
    description="Every member reads. `page` and `page_size`.",
)
async def list_users(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    params: PageParams = Depends(plain_page_params),
) -> JSONResponse:
    members = (
        select(Profile, User)
        .join(User, User.id == Profile.user_id)
        .where(Profile.org_id == principal.org_id, IN_ORG)
        .order_by(User.email, Profile.id)
    )
    return JSONResponse(await page_of(session, request, params, members, profile_body))


@router.post(
    "/",
    status_code=201,
    dependencies=NO_PARAMS,
    response_model=Member,
    summary="Add a member, or invite an existing user",
    description="Admins only. A new email becomes a user and a member at once (`password`"
    " needed); an email that already has a user is invited (`status: invited`, no"
    " `password` or `name`): no access until that user accepts.",
)
async def add_user(body: ProfileIn, principal: AdminPrincipal, session: SessionDep) -> JSONResponse:
    user, profile = await add_member(
        session, principal.org_id, body.email, body.password, body.role, body.name
    )
    return JSONResponse(profile_body(profile, user), status_code=201)


@router.patch(
    "/{profile_id}/",
    dependencies=NO_PARAMS,
    response_model=Member,
    summary="Change a member's role or deactivate it",
    description="Admins only. A deactivated member's tokens stop working.",
)
async def change_user(
    profile_id: str, body: ProfilePatch, principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    await lock_memberships(session, principal.org_id)
    profile, user = await org_profile(session, principal.org_id, profile_id)
    if body.role is not None:
        profile.role = body.role
    if body.is_active is not None:
        if profile.membership is Membership.invited and body.is_active:
            raise ApiError(
                400, {"is_active": "An invited user becomes active by accepting the invitation."}
            )
        profile.is_active = body.is_active
        if not body.is_active:
            await revoke_profile_tokens(session, principal.org_id, profile.id)
    await session.flush()
    await require_an_active_admin(session, principal.org_id)
    return JSONResponse(profile_body(profile, user))


@router.delete(
    "/{profile_id}/",
    status_code=204,
    dependencies=NO_PARAMS,
    response_class=Response,
    summary="Remove a member",
    description="Admins only. The membership ends (an invitation is withdrawn) and its tokens"
    " stop; its records keep it as creator and assignee, shown with `is_active: false`. The"
    " last active admin cannot be removed (400).",
)
async def delete_user(profile_id: str, principal: AdminPrincipal, session: SessionDep) -> Response:
    await remove_member(session, principal.org_id, parse_id(profile_id))
    return Response(status_code=204)


@router.post(
    "/{profile_id}/reassign/",
    dependencies=NO_PARAMS,
    response_model=Reassigned,
    summary="Hand a member's records to another",
    description="Admins only. Every live record of every entity assigned to the profile (a"
    " removed one too) is assigned to `to`, an active member, in one transaction. The answer"
    " counts the records moved, by entity.",
)
async def reassign_user(
    profile_id: str, body: ReassignIn, principal: AdminPrincipal, session: SessionDep
) -> JSONResponse:
    parsed = parse_id(profile_id)
    await lock_memberships(session, principal.org_id)
    known = await session.scalar(
        select(Profile.id).where(Profile.org_id == principal.org_id, Profile.id == parsed)
    )
    if known is None:
        raise not_found()
    return JSONResponse(await reassign_records(session, principal.org_id, parsed, body.to))
