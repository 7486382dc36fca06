"""/api/users/: the org's profiles. Members read; admins add and change them."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool
from sqlalchemy import func, select
from starlette.requests import Request

from crm.auth.deps import AdminPrincipal, CurrentPrincipal
from crm.auth.passwords import MIN_LENGTH
from crm.auth.tokens import revoke_profile_tokens
from crm.db import SessionDep
from crm.errors import ApiError, not_found
from crm.ids import parse_id
from crm.orgs.models import Profile, Role, User
from crm.orgs.service import (
    add_member,
    count_active_admins,
    lock_memberships,
)
from crm.pagination import PageParams, list_envelope, no_query_params, plain_page_params
from crm.responses import JSONResponse
from crm.schemas import Member, list_of
from crm.validation import InputModel

router = APIRouter(prefix="/api/users", tags=["users"])
NO_PARAMS = [Depends(no_query_params)]


class ProfileIn(InputModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=MIN_LENGTH, max_length=1024)
    role: Role


class ProfilePatch(InputModel):
    role: Role | None = None
    is_active: StrictBool | None = None  # "no" is refused, not read as false


def profile_body(profile: Profile, email: str) -> dict[str, Any]:
    return {
        "id": str(profile.id),
        "email": email,
        "role": profile.role.value,
        "is_active": profile.is_active,
    }


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
    in_org = Profile.org_id == principal.org_id
    count = await session.scalar(select(func.count()).select_from(Profile).where(in_org)) or 0
    rows = await session.execute(
        select(Profile, User.email)
        .join(User, User.id == Profile.user_id)
        .where(in_org)
        .order_by(User.email, Profile.id)
        .limit(params.page_size)
        .offset(params.offset)
    )
    results = [profile_body(profile, email) for profile, email in rows]
    return JSONResponse(list_envelope(request, params, count, results))


@router.post(
    "/",
    status_code=201,
    dependencies=NO_PARAMS,
    response_model=Member,
    summary="Add a member",
    description="Admins only. An existing user just gains the membership.",
)
async def add_user(body: ProfileIn, principal: AdminPrincipal, session: SessionDep) -> JSONResponse:
    user, profile = await add_member(
        session, principal.org_id, body.email, body.password, body.role
    )
    return JSONResponse(profile_body(profile, user.email), status_code=201)


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
    parsed = parse_id(profile_id)
    await lock_memberships(session, principal.org_id)
    row = (
        await session.execute(
            select(Profile, User.email)
            .join(User, User.id == Profile.user_id)
            .where(Profile.org_id == principal.org_id, Profile.id == parsed)
        )
    ).one_or_none()
    if row is None:
        raise not_found()
    profile, email = row
    if body.role is not None:
        profile.role = body.role
    if body.is_active is not None:
        profile.is_active = body.is_active
        if not body.is_active:
            await revoke_profile_tokens(session, principal.org_id, profile.id)
    await session.flush()
    if await count_active_admins(session, principal.org_id) == 0:
        raise ApiError(400, {"detail": "The org must keep at least one active admin."})
    return JSONResponse(profile_body(profile, email))
