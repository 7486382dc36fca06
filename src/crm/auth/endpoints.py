"""/api/auth/: register, login, refresh, logout, me, password, invitations, and personal
tokens."""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from crm.auth.deps import CurrentPrincipal
from crm.auth.models import READ, WRITE, Token, TokenKind
from crm.auth.passwords import MIN_LENGTH, verify_password
from crm.auth.tokens import (
    Principal,
    issue_pair,
    issue_token,
    revoke_for_logout,
    revoke_with_descendants,
    use_refresh_token,
)
from crm.config import SettingsDep
from crm.db import SessionDep, utcnow
from crm.errors import ApiError, error_response, forbidden, not_found, unauthorized
from crm.ids import parse_id
from crm.orgs.models import Membership, Org, Profile, User
from crm.orgs.service import (
    answer_invitation,
    authenticate,
    invitations_of,
    register,
    set_name,
    set_password,
)
from crm.pagination import PageParams, no_query_params, page_of, plain_page_params
from crm.ratelimit import limit_per_email
from crm.responses import JSONResponse
from crm.schemas import (
    Invitation,
    LoginErrors,
    Me,
    NewPersonalToken,
    PersonalToken,
    Session,
    error_doc,
    list_of,
)
from crm.validation import Email, InputModel, RequiredName, UserName

router = APIRouter(prefix="/api/auth", tags=["auth"])
NO_PARAMS = [Depends(no_query_params)]

Password = Field(min_length=MIN_LENGTH, max_length=1024)


class Strict(InputModel):
    pass


class RegisterIn(Strict):
    org_name: RequiredName
    email: Email
    password: str = Password
    name: UserName = None


class LoginIn(Strict):
    # Any text: an address that does not exist is a 401, like a wrong password.
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    org_id: uuid.UUID | None = None


class RefreshIn(Strict):
    refresh_token: str = Field(max_length=200)


class MeIn(Strict):
    name: UserName = Field(description="The user's name; null clears it.")


class NewPasswordIn(Strict):
    new_password: str = Password


class PasswordIn(NewPasswordIn):
    current_password: str = Field(max_length=1024)


class TokenIn(Strict):
    name: RequiredName
    expires_at: datetime | None = None
    scopes: list[Literal["read", "write"]] = Field(
        default=["read", "write"],
        min_length=1,
        max_length=2,
        description='`["read"]`: GET and HEAD only; `["read", "write"]` (the default).',
    )

    @field_validator("scopes")
    @classmethod
    def read_with_write(cls, value: list[str]) -> list[str]:
        if READ not in value:
            raise ValueError('Give ["read"] or ["read", "write"].')
        return [scope for scope in (READ, WRITE) if scope in value]

    @field_validator("expires_at")
    @classmethod
    def in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Give a time zone, e.g. 2030-01-01T00:00:00Z.")
        if value <= utcnow():
            raise ValueError("Must be in the future.")
        try:
            return value.astimezone(UTC)  # stored and shown in UTC, as the list shows it
        except OverflowError:  # 9999-12-31T23:59:59-05:00 is in the year 10000 in UTC
            raise ValueError("Out of range: the UTC time must be before year 10000.") from None


def session_body(pair: Any, user: User, org: Org, profile: Profile) -> dict[str, Any]:
    return {
        "access_token": pair.access,
        "refresh_token": pair.refresh,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "user": {"id": str(user.id), "email": user.email, "name": user.name},
        "org": {"id": str(org.id), "name": org.name},
        "profile": {"id": str(profile.id), "role": profile.role.value},
    }


def token_body(token: Token) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "scopes": token.scopes.split(),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    }


@router.post(
    "/register/",
    status_code=201,
    dependencies=NO_PARAMS,
    response_model=Session,
    summary="Sign up: a new org and its first admin",
    description="403 when signup is off; 400 when the email is taken.",
)
async def register_endpoint(
    body: RegisterIn, request: Request, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    if not settings.allow_signup:
        raise forbidden("Signup is disabled on this server.")
    await limit_per_email(request, body.email)
    org, user, profile = await register(
        session, body.org_name, body.email, body.password, body.name
    )
    pair = await issue_pair(session, settings, org.id, profile.id)
    return JSONResponse(session_body(pair, user, org, profile), status_code=201)


@router.post(
    "/login/",
    dependencies=NO_PARAMS,
    response_model=Session,
    responses={
        **error_doc(401),
        400: {"model": LoginErrors, "description": "Validation failed, or `org_id` is needed."},
    },
    summary="Log in",
    description="`org_id` is needed only by a member of several orgs: without it, once the"
    " password is verified, the answer is 400 with the `orgs` to choose from.",
)
async def login(
    body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    await limit_per_email(request, body.email)
    user = await authenticate(request.app.state.db, body.email, body.password)
    if user is None:
        raise unauthorized("Invalid email or password.")
    memberships: list[Any] = list(
        await session.execute(
            select(Profile, Org)
            .join(Org, Org.id == Profile.org_id)
            .where(Profile.user_id == user.id, Profile.membership == Membership.member)
            .order_by(Org.name, Org.id)
        )
    )
    if body.org_id is not None:
        memberships = [(p, o) for p, o in memberships if o.id == body.org_id]
        if not memberships:
            raise ApiError(400, {"org_id": "You are not a member of this org."})
    elif len(memberships) > 1:
        # The orgs that a login may choose: those of the active memberships (a deactivated
        # one would answer 403); with only one, it is the login's.
        active = [(p, o) for p, o in memberships if p.is_active]
        if len(active) != 1:
            choice = [{"id": str(org.id), "name": org.name} for _, org in active or memberships]
            reason = {"org_id": "You belong to several orgs: say which one."}
            return JSONResponse({"errors": reason, "orgs": choice}, status_code=400)
        memberships = active
    if not memberships:
        raise unauthorized("Invalid email or password.")
    profile, org = memberships[0]
    if not profile.is_active:
        raise forbidden("Your membership of this org is deactivated.")
    pair = await issue_pair(session, settings, org.id, profile.id)
    return JSONResponse(session_body(pair, user, org, profile))


@router.post(
    "/refresh/",
    dependencies=NO_PARAMS,
    response_model=Session,
    responses=error_doc(401),
    summary="A new token pair for a refresh token",
    description="The refresh token is used up: a second use is refused (401).",
)
async def refresh(
    body: RefreshIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    token = await use_refresh_token(session, body.refresh_token)
    row = None
    if token is not None:
        row = (
            await session.execute(
                select(Profile, User, Org)
                .join(User, User.id == Profile.user_id)
                .join(Org, Org.id == Profile.org_id)
                .where(Profile.org_id == token.org_id, Profile.id == token.profile_id)
            )
        ).one()
    if token is None or row is None or not row[0].is_active:
        refused = unauthorized("The refresh token is unknown, used, revoked or expired.")
        # Answered, not raised: raising rolls the request back, and a replay's revocation
        # of its chain must be committed.
        return error_response(request.scope, refused.status, refused.errors, refused.headers)
    profile, user, org = row
    pair = await issue_pair(session, settings, org.id, profile.id, token.chain_id)
    return JSONResponse(session_body(pair, user, org, profile))


@router.post(
    "/logout/",
    status_code=204,
    dependencies=NO_PARAMS,
    response_class=Response,
    summary="Log out",
    description="The access token used and its refresh token stop working at once.",
)
async def logout(principal: CurrentPrincipal, session: SessionDep) -> Response:
    await revoke_for_logout(session, principal)
    return Response(status_code=204)


def me_body(principal: Principal, name: str | None) -> dict[str, Any]:
    return {
        "user": {"id": str(principal.user_id), "email": principal.email, "name": name},
        "org": {"id": str(principal.org_id), "name": principal.org_name},
        "profile": {"id": str(principal.profile_id), "role": principal.role.value},
    }


@router.get(
    "/me/", dependencies=NO_PARAMS, response_model=Me, summary="The caller's user, org and role"
)
async def me(principal: CurrentPrincipal) -> JSONResponse:
    return JSONResponse(me_body(principal, principal.user_name))


@router.patch(
    "/me/",
    dependencies=NO_PARAMS,
    response_model=Me,
    summary="Change the caller's name",
    description="The user's, in every org it belongs to.",
)
async def change_me(body: MeIn, principal: CurrentPrincipal, session: SessionDep) -> JSONResponse:
    await set_name(session, principal.user_id, body.name)
    return JSONResponse(me_body(principal, body.name))


@router.post(
    "/password/",
    status_code=204,
    dependencies=NO_PARAMS,
    response_class=Response,
    summary="Change the caller's password",
    description="Every other token of the user, in every org, stops working at once; the"
    " token used keeps working until it expires. A wrong `current_password` is 400.",
)
async def change_password(
    body: PasswordIn, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    # Counted as a login is: a stolen token must not be a way to guess the password.
    await limit_per_email(request, principal.email)
    password_hash = await session.scalar(
        select(User.password_hash).where(User.id == principal.user_id)
    )
    if not await verify_password(password_hash, body.current_password):
        raise ApiError(400, {"current_password": "This is not your password."})
    await set_password(session, principal.user_id, body.new_password, keep=principal.token_id)
    return Response(status_code=204)


def invitation_body(profile: Profile, org: Org) -> dict[str, Any]:
    return {
        "id": str(profile.id),
        "org": {"id": str(org.id), "name": org.name},
        "role": profile.role.value,
        "status": "invited" if profile.membership is Membership.invited else "active",
        "created_at": profile.created_at,
    }


@router.get(
    "/invitations/",
    response_model=list_of(Invitation),
    summary="The caller's invitations to other orgs",
    description="Those of the caller's user, whichever org its token is of. `page` and"
    " `page_size`.",
)
async def list_invitations(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    params: PageParams = Depends(plain_page_params),
) -> JSONResponse:
    invitations = (
        select(Profile, Org)
        .join(Org, Org.id == Profile.org_id)
        .where(*invitations_of(principal.user_id))
        .order_by(Profile.created_at.desc(), Profile.id)
    )
    return JSONResponse(await page_of(session, request, params, invitations, invitation_body))


@router.post(
    "/invitations/{invitation_id}/accept/",
    dependencies=NO_PARAMS,
    response_model=Invitation,
    summary="Accept an invitation",
    description="The profile becomes an active member of the org: log in with its `org_id`."
    " Any id but one of the caller's open invitations is 404.",
)
async def accept_invitation(
    invitation_id: str, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    profile = await answer_invitation(
        session, principal.user_id, parse_id(invitation_id), accept=True
    )
    org = await session.get_one(Org, profile.org_id)
    return JSONResponse(invitation_body(profile, org))


@router.post(
    "/invitations/{invitation_id}/decline/",
    status_code=204,
    dependencies=NO_PARAMS,
    response_class=Response,
    summary="Decline an invitation",
    description="The profile is removed; the org's admins may invite again. Any id but one"
    " of the caller's open invitations is 404.",
)
async def decline_invitation(
    invitation_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await answer_invitation(session, principal.user_id, parse_id(invitation_id), accept=False)
    return Response(status_code=204)


@router.post(
    "/tokens/",
    status_code=201,
    dependencies=NO_PARAMS,
    response_model=NewPersonalToken,
    summary="Create a personal token",
    description="The answer is the only time the token is shown. One created with a"
    " personal token is bound to it: it expires no later (by default when it does) and is"
    " revoked with it.",
)
async def create_personal_token(
    body: TokenIn, principal: CurrentPrincipal, session: SessionDep
) -> JSONResponse:
    expires_at, parent_id = body.expires_at, None
    if principal.token_kind is TokenKind.personal:
        parent_id, limit = principal.token_id, principal.token_expires_at
        if limit is not None and expires_at is not None and expires_at > limit:
            raise ApiError(
                400,
                {
                    "expires_at": "Must be no later than the token used to create it, which"
                    f" expires at {limit.isoformat()}."
                },
            )
        expires_at = expires_at or limit
    token, secret = await issue_token(
        session,
        principal.org_id,
        principal.profile_id,
        TokenKind.personal,
        expires_at,
        name=body.name,
        parent_id=parent_id,
        scopes=" ".join(body.scopes),
    )
    return JSONResponse({**token_body(token), "token": secret}, status_code=201)


def own_personal_tokens(principal: Principal) -> Any:
    return (
        Token.org_id == principal.org_id,
        Token.profile_id == principal.profile_id,
        Token.kind == TokenKind.personal,
        Token.revoked_at.is_(None),
    )


@router.get(
    "/tokens/",
    response_model=list_of(PersonalToken),
    summary="List the caller's personal tokens",
    description="Never the secrets. `page` and `page_size`.",
)
async def list_personal_tokens(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    params: PageParams = Depends(plain_page_params),
) -> JSONResponse:
    tokens = (
        select(Token)
        .where(*own_personal_tokens(principal))
        .order_by(Token.created_at.desc(), Token.id)
    )
    return JSONResponse(await page_of(session, request, params, tokens, token_body))


@router.delete(
    "/tokens/{token_id}/",
    status_code=204,
    dependencies=NO_PARAMS,
    response_class=Response,
    summary="Revoke a personal token",
    description="Only the caller's own tokens: any other id is 404.",
)
async def delete_personal_token(
    token_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    revoked = await revoke_with_descendants(
        session,
        principal.org_id,
        *own_personal_tokens(principal),
        Token.id == parse_id(token_id),
    )
    if revoked != 1:
        raise not_found()
    return Response(status_code=204)
